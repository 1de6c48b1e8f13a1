#!/usr/bin/env bash
# Stop everything `make run` (or `make run-celery`) started. Each part was started as a session of its own (setsid),
# recorded in var/run/<part>.pgid as "<session id> <boot time>"; every process of those sessions
# gets SIGTERM, and SIGKILL if it is still there after the grace (BRYGGA_STOP_GRACE, 20 s). A
# session, not a process group: Airflow 3 runs each task in a process group of its own, inside the
# scheduler's session. A record from before the last boot is stale and only removed (btime read
# when it was made, a second of jitter allowed).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# BRYGGA_VAR: that run's parts; unset: both run modes' (make run: var/, make run-celery: var/celery/)
if [ -n "${BRYGGA_VAR:-}" ]; then RUNS=("$BRYGGA_VAR/run"); else RUNS=("$ROOT/var/run" "$ROOT/var/celery/run"); fi
quiet=0; part=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quiet) quiet=1 ;;
    --part) part="$2"; shift ;;  # only that part (make run-celery restarting a lost worker)
  esac
  shift
done
say() { [ "$quiet" = 1 ] || echo "$@"; }
boot="$(awk '/^btime/ {print $2}' /proc/stat)"

# The pids of session $1 that are not zombies (a zombie waits for its reaper and holds nothing),
# read from /proc (no procps needed). /proc/PID/stat after "comm) ": state ppid pgrp session ...
members() {
  local f line state sid pid
  for f in /proc/[0-9]*/stat; do
    { read -r line < "$f"; } 2>/dev/null || continue  # the process may be gone meanwhile
    read -r state _ _ sid _ <<< "${line##*) }"
    if [ "$sid" = "$1" ] && [ "$state" != Z ]; then
      pid="${f#/proc/}"; echo "${pid%/stat}"
    fi
  done
}
signal() {  # signal $1 to every process of session $2
  local p
  for p in $(members "$2"); do kill "-$1" "$p" 2>/dev/null || true; done
}

# the message broker make run-lis started (a daemon of its own, marked by scripts/rabbitmq.sh)
[ -z "$part" ] && for f in "${RUNS[0]}"/rabbitmq.started ${RUNS[1]:+"${RUNS[1]}"/rabbitmq.started}; do
  [ -f "$f" ] || continue
  rm -f "$f"
  say "    RabbitMQ (brygga@localhost): stop"
  bash "$ROOT/scripts/rabbitmq.sh" stop
done

sessions=()
for f in "${RUNS[0]}"/*.pgid ${RUNS[1]:+"${RUNS[1]}"/*.pgid}; do
  [ -f "$f" ] || continue
  [ -n "$part" ] && [ "$(basename "$f" .pgid)" != "$part" ] && continue
  read -r sid started < "$f" || true
  rm -f "$f"
  [[ "$sid" =~ ^[0-9]+$ ]] || continue
  # btime is derived from the clock and uptime: it can differ by a second between two reads
  if [[ "${started:-}" =~ ^[0-9]+$ ]] && (( started - boot > 2 || boot - started > 2 )); then
    say "    $(basename "$f" .pgid): recorded before the last boot, nothing to stop"
    continue
  fi
  if [ -n "$(members "$sid")" ]; then
    say "    $(basename "$f" .pgid) (session $sid): SIGTERM"
    signal TERM "$sid"
    sessions+=("$sid")
  fi
done
[ "${#sessions[@]}" -eq 0 ] && { say "    nothing running"; exit 0; }

deadline=$(( $(date +%s) + ${BRYGGA_STOP_GRACE:-20} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  left=""
  for s in "${sessions[@]}"; do left+="$(members "$s")"; done
  [ -z "$left" ] && { say "    stopped"; exit 0; }
  sleep 0.5
done
for s in "${sessions[@]}"; do
  if [ -n "$(members "$s")" ]; then
    say "    session $s still running after the grace: SIGKILL"
    signal KILL "$s"
  fi
done
sleep 0.5
for s in "${sessions[@]}"; do [ -n "$(members "$s")" ] && { echo "session $s survived SIGKILL" >&2; exit 1; }; done
say "    stopped"
