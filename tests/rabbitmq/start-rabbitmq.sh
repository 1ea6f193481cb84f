#!/usr/bin/env bash
# Start a PRIVATE RabbitMQ node (STOMP + Web-STOMP plugins) bound to 127.0.0.1 only,
# used as the reference broker for the interop scenarios and by the C# RabbitMQ-backend fixture.
#
# Usage:  tests/rabbitmq/start-rabbitmq.sh WORKDIR
#
# Prints the node's coordinates as KEY=VALUE lines on stdout (and nothing else), e.g.
#   RABBITMQ_NODENAME=interop-1a2b3c4d@localhost
#   AMQP_PORT=40001
#   STOMP_PORT=40002
#   WEB_STOMP_PORT=40003
#   WEB_STOMP_URL=ws://127.0.0.1:40003/ws
#   DIST_PORT=40004
#   EPMD_PORT=40005
#   PID=12345
#   WORKDIR=/abs/workdir
# The same lines are kept in WORKDIR/ports.env. Diagnostics go to stderr; logs to WORKDIR/log/.
#
# Idempotent: if the node recorded in WORKDIR is already up, the recorded values are printed
# again and nothing is started. A stale WORKDIR (node dead) is reused; its ports are reused when
# still free, otherwise new ones are picked.
#
# Optional environment overrides (each defaults to a free port picked at random on 127.0.0.1):
#   AMQP_PORT STOMP_PORT WEB_STOMP_PORT DIST_PORT EPMD_PORT
#   RABBITMQ_WS_FRAME   text|binary  WebSocket frame type Web-STOMP uses for server frames
#                       (default: binary; RabbitMQ's own default is text, which cannot carry
#                       non-UTF-8 bodies: see README.md)
#   RABBITMQ_START_TIMEOUT  seconds to wait for boot (default 120)
#
# Needs the Debian packages rabbitmq-server (3.10, ships rabbitmq_stomp/rabbitmq_web_stomp)
# and python3 (/usr/bin/python3, for picking free ports). As root, the node runs as the
# 'rabbitmq' user via setpriv (which, unlike su, keeps the environment and the open-files limit);
# as any other user it runs as that user.
# Stop it with tests/rabbitmq/stop-rabbitmq.sh WORKDIR.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 WORKDIR" >&2
  exit 2
fi

RMQ_BIN=/usr/lib/rabbitmq/bin
if [[ ! -x "$RMQ_BIN/rabbitmq-server" ]]; then
  echo "rabbitmq-server not installed (apt-get install -y rabbitmq-server)" >&2
  exit 3
fi

mkdir -p "$1"
W="$(cd "$1" && pwd -P)"
STATE="$W/ports.env"
case "$W" in *[[:space:]]*) echo "WORKDIR must not contain whitespace: $W" >&2; exit 2;; esac
TIMEOUT="${RABBITMQ_START_TIMEOUT:-120}"
WS_FRAME="${RABBITMQ_WS_FRAME:-binary}"
case "$WS_FRAME" in text|binary) ;; *) echo "RABBITMQ_WS_FRAME must be text or binary" >&2; exit 2;; esac

log() { echo "[start-rabbitmq] $*" >&2; }

RUN_USER="$(id -un)"
if [[ "$(id -u)" -eq 0 ]]; then
  RUN_USER=rabbitmq
  id rabbitmq >/dev/null 2>&1 || { echo "user 'rabbitmq' missing" >&2; exit 3; }
fi

# Run a command as the node's user with the node's private environment.
as_node_user() {
  if [[ "$(id -u)" -eq 0 ]]; then
    setpriv --reuid rabbitmq --regid rabbitmq --init-groups -- env "${NODE_ENV[@]}" "$@"
  else
    env "${NODE_ENV[@]}" "$@"
  fi
}

port_free() {
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker's listeners do (TIME_WAIT is fine)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

pick_ports() { # prints N distinct free loopback ports
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
socks, ports = [], []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    ports.append(s.getsockname()[1])
for s in socks:
    s.close()
print(" ".join(map(str, ports)))
EOF
}

setup_env() {
  NODE_ENV=(
    "HOME=$W"
    "RABBITMQ_NODENAME=$RABBITMQ_NODENAME"
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
    "RABBITMQ_NODE_PORT=$AMQP_PORT"
    "RABBITMQ_DIST_PORT=$DIST_PORT"
    "ERL_EPMD_PORT=$EPMD_PORT"
    "ERL_EPMD_ADDRESS=127.0.0.1"
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
    "RABBITMQ_CONF_ENV_FILE=$W/rabbitmq-env.conf"
    "RABBITMQ_CONFIG_FILE=$W/rabbitmq.conf"
    "RABBITMQ_ADVANCED_CONFIG_FILE=$W/advanced.config"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$W/enabled_plugins"
    "RABBITMQ_MNESIA_BASE=$W/mnesia"
    "RABBITMQ_LOG_BASE=$W/log"
    "RABBITMQ_PID_FILE=$W/rabbitmq.pid"
    "RABBITMQ_PLUGINS_EXPAND_DIR=$W/plugins-expand"
    "PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "LANG=C.UTF-8"
    "LC_ALL=C.UTF-8"
  )
}

node_up() {
  [[ -f "$W/rabbitmq.pid" ]] || return 1
  local pid; pid="$(cat "$W/rabbitmq.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  as_node_user timeout 30 "$RMQ_BIN/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" await_startup --timeout 20 >/dev/null 2>&1
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

print_state() { cat "$STATE"; }

# ---- reuse a running node -------------------------------------------------------------------
if [[ -f "$STATE" ]]; then
  # shellcheck disable=SC1090
  source "$STATE"
  setup_env
  if node_up && tcp_open "$STOMP_PORT" && tcp_open "$WEB_STOMP_PORT"; then
    log "node $RABBITMQ_NODENAME already running"
    print_state
    exit 0
  fi
  log "stale state in $W, restarting the node"
  old_pid="$(cat "$W/rabbitmq.pid" 2>/dev/null || true)"
  if [[ -n "$old_pid" ]] && kill -0 "$old_pid" 2>/dev/null; then
    log "an unresponsive node process $old_pid is still alive; stop it first with stop-rabbitmq.sh" >&2
    exit 4
  fi
  for v in AMQP_PORT STOMP_PORT WEB_STOMP_PORT DIST_PORT; do
    # reuse if still free; EPMD_PORT may legitimately be held by our own leftover epmd
    port_free "${!v}" || unset "$v"
  done
fi

# ---- choose ports & write config ------------------------------------------------------------
read -r p1 p2 p3 p4 p5 < <(pick_ports 5)
AMQP_PORT="${AMQP_PORT:-$p1}"
STOMP_PORT="${STOMP_PORT:-$p2}"
WEB_STOMP_PORT="${WEB_STOMP_PORT:-$p3}"
DIST_PORT="${DIST_PORT:-$p4}"
EPMD_PORT="${EPMD_PORT:-$p5}"
hash="$(printf '%s' "$W" | md5sum | cut -c1-8)"
RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-interop-$hash@localhost}"
setup_env

mkdir -p "$W/mnesia" "$W/log" "$W/plugins-expand"
: > "$W/rabbitmq-env.conf"          # keep /etc/rabbitmq/rabbitmq-env.conf out of the picture
echo "[]." > "$W/advanced.config"
echo "[rabbitmq_stomp,rabbitmq_web_stomp]." > "$W/enabled_plugins"
cat > "$W/rabbitmq.conf" <<EOF
# generated by start-rabbitmq.sh: private interop node, loopback only
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
loopback_users = none
stomp.listeners.tcp.1 = 127.0.0.1:$STOMP_PORT
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $WEB_STOMP_PORT
web_stomp.ws_path = /ws
web_stomp.ws_frame = $WS_FRAME
log.console = false
log.file.level = info
EOF
if [[ "$(id -u)" -eq 0 ]]; then
  chown -R rabbitmq:rabbitmq "$W"
  if ! setpriv --reuid rabbitmq --regid rabbitmq --init-groups -- test -w "$W/mnesia"; then
    log "user rabbitmq cannot reach $W (a parent directory is not world-traversable); use e.g. a dir under /tmp"
    exit 3
  fi
fi

write_state() {
  cat > "$STATE.tmp" <<EOF
RABBITMQ_NODENAME=$RABBITMQ_NODENAME
AMQP_PORT=$AMQP_PORT
STOMP_PORT=$STOMP_PORT
WEB_STOMP_PORT=$WEB_STOMP_PORT
WEB_STOMP_URL=ws://127.0.0.1:$WEB_STOMP_PORT/ws
DIST_PORT=$DIST_PORT
EPMD_PORT=$EPMD_PORT
PID=$1
WORKDIR=$W
EOF
  mv "$STATE.tmp" "$STATE"
}

# ---- start ------------------------------------------------------------------------------------
rm -f "$W/rabbitmq.pid"
write_state ""   # recorded before launch so stop-rabbitmq.sh can also clean up a failed boot
log "starting $RABBITMQ_NODENAME as $RUN_USER (amqp=$AMQP_PORT stomp=$STOMP_PORT web-stomp=$WEB_STOMP_PORT dist=$DIST_PORT epmd=$EPMD_PORT)"
if [[ "$(id -u)" -eq 0 ]]; then
  setsid setpriv --reuid rabbitmq --regid rabbitmq --init-groups -- \
    env -i "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmq-server" \
    </dev/null >>"$W/log/startup.log" 2>&1 &
else
  setsid env -i "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmq-server" \
    </dev/null >>"$W/log/startup.log" 2>&1 &
fi
launcher_pid=$!

deadline=$((SECONDS + TIMEOUT))
while :; do
  if ! kill -0 "$launcher_pid" 2>/dev/null; then
    log "rabbitmq-server exited during boot; last log lines:"
    tail -n 40 "$W/log/startup.log" >&2 || true
    tail -n 40 "$W/log/$RABBITMQ_NODENAME.log" >&2 2>/dev/null || true
    exit 5
  fi
  if [[ -s "$W/rabbitmq.pid" ]] &&
     as_node_user timeout 30 "$RMQ_BIN/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" await_startup --timeout 10 >/dev/null 2>&1; then
    break
  fi
  if (( SECONDS >= deadline )); then
    log "node did not boot within ${TIMEOUT}s; see $W/log"
    exit 6
  fi
  sleep 1
done
while ! tcp_open "$STOMP_PORT" || ! tcp_open "$WEB_STOMP_PORT"; do
  if (( SECONDS >= deadline )); then
    log "STOMP/Web-STOMP listeners not up within ${TIMEOUT}s; see $W/log"
    exit 6
  fi
  sleep 0.5
done

write_state "$(cat "$W/rabbitmq.pid")"
log "node $RABBITMQ_NODENAME is up"
print_state
