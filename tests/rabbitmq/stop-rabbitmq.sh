#!/usr/bin/env bash
# Stop the private RabbitMQ node started by start-rabbitmq.sh WORKDIR, and its private epmd.
#
# Usage:  tests/rabbitmq/stop-rabbitmq.sh WORKDIR [--purge]
#   --purge  also delete WORKDIR afterwards (data, logs, cookie).
#
# Only the processes recorded for that WORKDIR are touched: the node's OS pid (WORKDIR/rabbitmq.pid)
# and the epmd listening on the node's private EPMD_PORT. Idempotent: exits 0 when nothing runs.
set -uo pipefail

if [[ $# -lt 1 || -z "$1" ]]; then
  echo "usage: $0 WORKDIR [--purge]" >&2
  exit 2
fi
PURGE=0
[[ "${2:-}" == "--purge" ]] && PURGE=1

log() { echo "[stop-rabbitmq] $*" >&2; }

if [[ ! -d "$1" ]]; then
  log "no such work dir: $1 (nothing to stop)"
  exit 0
fi
W="$(cd "$1" && pwd -P)"
STATE="$W/ports.env"
RMQ_BIN=/usr/lib/rabbitmq/bin

if [[ ! -f "$STATE" ]]; then
  log "no $STATE (nothing to stop)"
  [[ $PURGE -eq 1 ]] && rm -rf "$W"
  exit 0
fi
# shellcheck disable=SC1090
source "$STATE"

NODE_ENV=(
  "HOME=$W"
  "RABBITMQ_NODENAME=$RABBITMQ_NODENAME"
  "ERL_EPMD_PORT=$EPMD_PORT"
  "ERL_EPMD_ADDRESS=127.0.0.1"
  "RABBITMQ_CONF_ENV_FILE=$W/rabbitmq-env.conf"
  "RABBITMQ_CONFIG_FILE=$W/rabbitmq.conf"
  "RABBITMQ_ADVANCED_CONFIG_FILE=$W/advanced.config"
  "RABBITMQ_ENABLED_PLUGINS_FILE=$W/enabled_plugins"
  "RABBITMQ_MNESIA_BASE=$W/mnesia"
  "RABBITMQ_LOG_BASE=$W/log"
  "RABBITMQ_PID_FILE=$W/rabbitmq.pid"
  "PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "LANG=C.UTF-8"
  "LC_ALL=C.UTF-8"
)
as_node_user() {
  if [[ "$(id -u)" -eq 0 ]]; then
    setpriv --reuid rabbitmq --regid rabbitmq --init-groups -- env -i "${NODE_ENV[@]}" "$@"
  else
    env -i "${NODE_ENV[@]}" "$@"
  fi
}

pid="$(cat "$W/rabbitmq.pid" 2>/dev/null || true)"
[[ -z "$pid" ]] && pid="${PID:-}"

if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
  log "stopping $RABBITMQ_NODENAME (pid $pid)"
  # graceful: rabbitmqctl stop <pidfile> returns once the OS process has exited
  as_node_user timeout 60 "$RMQ_BIN/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" stop "$W/rabbitmq.pid" >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "node still alive, sending SIGTERM to $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  if kill -0 "$pid" 2>/dev/null; then
    log "node still alive, sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
else
  log "node $RABBITMQ_NODENAME not running"
fi

# The private epmd (started by the first Erlang VM that used EPMD_PORT) outlives the node.
if [[ -n "${EPMD_PORT:-}" ]]; then
  ERL_EPMD_PORT="$EPMD_PORT" timeout 10 epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
  sleep 0.2
  # still listening (e.g. another node registered)? end exactly the process owning that port
  epmd_pids="$(ss -Hltnp "sport = :$EPMD_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)"
  for p in $epmd_pids; do
    if [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "epmd" ]]; then
      log "killing private epmd pid $p on port $EPMD_PORT"
      kill -TERM "$p" 2>/dev/null || true
    fi
  done
fi

rm -f "$W/rabbitmq.pid"
if [[ $PURGE -eq 1 ]]; then
  rm -rf "$W"
  log "purged $W"
fi
log "stopped"
exit 0
