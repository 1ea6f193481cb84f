#!/usr/bin/env bash
# Install what the interop scenarios need (Debian 12, as root):
#   - python3-stomp    (stomp.py for the SYSTEM interpreter /usr/bin/python3)
#   - rabbitmq-server  (3.10, reference broker; its system service is kept stopped and disabled,
#                       start-rabbitmq.sh runs a private node instead)
#   - node_modules     (npm ci from package-lock.json: @stomp/stompjs + ws)
# Idempotent; skips what is already there.
#
# Usage: tests/interop/install-deps.sh [--no-rabbitmq] [--no-npm]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WANT_RABBIT=1
WANT_NPM=1
for a in "$@"; do
  case "$a" in
    --no-rabbitmq) WANT_RABBIT=0 ;;
    --no-npm) WANT_NPM=0 ;;
    *) echo "usage: $0 [--no-rabbitmq] [--no-npm]" >&2; exit 2 ;;
  esac
done
log() { echo "[install-deps] $*" >&2; }

need=()
dpkg -s python3-stomp >/dev/null 2>&1 || need+=(python3-stomp)
if [[ $WANT_RABBIT -eq 1 ]]; then
  dpkg -s rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
fi

if [[ ${#need[@]} -gt 0 ]]; then
  [[ "$(id -u)" -eq 0 ]] || { log "need root to apt-get install ${need[*]}"; exit 1; }
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    # keep apt from auto-starting the system rabbitmq-server (it would grab 5672/61613/15674/4369)
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  log "apt-get install ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

if [[ $WANT_RABBIT -eq 1 && "$(id -u)" -eq 0 ]]; then
  # make sure the SYSTEM node is neither running nor enabled
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
    log "stopping system rabbitmq-server (systemd)"
    systemctl stop rabbitmq-server || true
  fi
  if [[ -s /var/run/rabbitmq/pid ]] && kill -0 "$(cat /var/run/rabbitmq/pid)" 2>/dev/null; then
    log "stopping system rabbitmq-server (init script)"
    service rabbitmq-server stop >/dev/null 2>&1 || true
  fi
  update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
  if command -v systemctl >/dev/null 2>&1; then systemctl disable rabbitmq-server >/dev/null 2>&1 || true; fi
fi

if [[ $WANT_NPM -eq 1 ]]; then
  if [[ ! -f "$HERE/node_modules/@stomp/stompjs/package.json" || ! -f "$HERE/node_modules/ws/package.json" \
        || "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    log "npm ci in $HERE"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi

/usr/bin/python3 -c 'import stomp' || { log "stomp.py not importable by /usr/bin/python3"; exit 1; }
log "ok"
