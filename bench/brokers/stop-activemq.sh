#!/usr/bin/env bash
# Stop the private ActiveMQ broker started by bench/brokers/start-activemq.sh WORKDIR.
#
# Usage:  bench/brokers/stop-activemq.sh WORKDIR [--purge]
#   --purge  also delete WORKDIR afterwards (config, data, logs).
#
# Only the java process recorded for that WORKDIR is touched (checked against its command line): SIGTERM
# (ActiveMQ's shutdown hook stops the broker cleanly), then SIGKILL after ACTIVEMQ_STOP_TIMEOUT seconds
# (default 30). Waits until the process is gone. Idempotent: exits 0 when nothing runs.
set -uo pipefail

if [[ $# -lt 1 || -z "$1" ]]; then
  echo "usage: $0 WORKDIR [--purge]" >&2
  exit 2
fi
PURGE=0
[[ "${2:-}" == "--purge" ]] && PURGE=1
TIMEOUT="${ACTIVEMQ_STOP_TIMEOUT:-30}"

log() { echo "[stop-activemq] $*" >&2; }

if [[ ! -d "$1" ]]; then
  log "no such work dir: $1 (nothing to stop)"
  exit 0
fi
W="$(cd "$1" && pwd -P)"

ours() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null &&
    tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF "xbean:file:$W/conf/activemq.xml"
}

pid="$(cat "$W/activemq.pid" 2>/dev/null || true)"
if [[ -z "$pid" && -f "$W/ports.env" ]]; then
  pid="$(sed -n 's/^PID=//p' "$W/ports.env")"
fi

if ours "$pid"; then
  log "stopping ActiveMQ (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((TIMEOUT * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after ${TIMEOUT}s, sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
else
  log "ActiveMQ not running"
fi

rm -f "$W/activemq.pid"
if [[ $PURGE -eq 1 ]]; then
  rm -rf "$W"
  log "purged $W"
fi
log "stopped"
exit 0
