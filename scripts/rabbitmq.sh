#!/usr/bin/env bash
# A local message broker for the LIS delivery over AMQP 1.0 (the tests, .ci/run, make run-lis):
# with BRYGGA_BROKER_MARK=FILE, a node it starts is marked in FILE (scripts/stop.sh stops it then).
# Debian's rabbitmq-server, installed with apt-get when missing, its AMQP 1.0 plugin enabled, and
# started (node brygga@localhost, port 5672) unless one already answers there. Needs root for
# apt-get. Prints nothing but progress; `bash scripts/rabbitmq.sh stop` stops the node it started.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-brygga@localhost}"
if [ "${1:-}" = "stop" ]; then
  rabbitmqctl -q stop >/dev/null 2>&1 || true
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null; then
  echo "==> installing rabbitmq-server"
  apt-get update -qq
  apt-get install -y -qq rabbitmq-server >/dev/null
  # the package may have started its service's node (rabbit@host, without the AMQP 1.0 plugin)
  # on port 5672: stop it, Brygga runs its own node under a known name
  { service rabbitmq-server stop || invoke-rc.d rabbitmq-server stop; } >/dev/null 2>&1 || true
fi
rabbitmq-plugins -q enable --offline rabbitmq_amqp1_0 >/dev/null
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "==> starting RabbitMQ (AMQP 1.0) as $RABBITMQ_NODENAME"
  rabbitmq-server -detached >/dev/null 2>&1 || rabbitmq-server -detached
  # make run-lis: a mark that this node is ours, so scripts/stop.sh stops it (one found running is left alone)
  [ -n "${BRYGGA_BROKER_MARK:-}" ] && touch "$BRYGGA_BROKER_MARK"
fi
# the node registers with epmd a few seconds after -detached returns: wait for it, then for its apps
for _ in $(seq 120); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
timeout 120 rabbitmqctl -q await_startup >/dev/null
