#!/usr/bin/env bash
# Stop everything `make run` started: each process group recorded in var/run/*.pgid gets SIGTERM,
# and SIGKILL if anything of it is still there after the grace (BRYGGA_STOP_GRACE, 20 s).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${BRYGGA_VAR:-$ROOT/var}/run"
quiet=0; [ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "$@"; }
# Any process of the group left that is not a zombie (an orphan's zombie waits for whoever reaps
# orphans here, which may be slow; it holds nothing). Read from /proc: no procps needed.
alive() {
  local f line state pgrp
  for f in /proc/[0-9]*/stat; do
    read -r line < "$f" 2>/dev/null || continue
    read -r state _ pgrp _ <<< "${line##*) }"
    [ "$pgrp" = "$1" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

groups=()
for f in "$RUN"/*.pgid; do
  [ -f "$f" ] || continue
  pgid="$(cat "$f")"
  if [[ "$pgid" =~ ^[0-9]+$ ]] && alive "$pgid"; then
    say "    $(basename "$f" .pgid) (process group $pgid): SIGTERM"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    groups+=("$pgid")
  fi
  rm -f "$f"
done
[ "${#groups[@]}" -eq 0 ] && { say "    nothing running"; exit 0; }

deadline=$(( $(date +%s) + ${BRYGGA_STOP_GRACE:-20} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  left=0
  for g in "${groups[@]}"; do alive "$g" && left=1; done
  [ "$left" = 0 ] && { say "    stopped"; exit 0; }
  sleep 0.5
done
for g in "${groups[@]}"; do
  if alive "$g"; then
    say "    process group $g still running after the grace: SIGKILL"
    kill -KILL -- "-$g" 2>/dev/null || true
  fi
done
sleep 0.5
for g in "${groups[@]}"; do alive "$g" && { echo "process group $g survived SIGKILL" >&2; exit 1; }; done
say "    stopped"
