#!/usr/bin/env bash
# A local message broker for the LIS delivery over AMQP 1.0 (the tests, .ci/run, make run-lis):
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
fi
# the packaged service may have started a node of its own: Brygga runs its own (a known name)
rabbitmq-plugins -q enable --offline rabbitmq_amqp1_0 >/dev/null
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "==> starting RabbitMQ (AMQP 1.0) as $RABBITMQ_NODENAME"
  rabbitmq-server -detached >/dev/null 2>&1 || rabbitmq-server -detached
fi
timeout 120 rabbitmqctl -q await_startup >/dev/null
rabbitmqctl -q status >/dev/null
