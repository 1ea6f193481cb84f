#!/usr/bin/env bash
# bench/compare.sh: head-to-head benchmark of StompBroker against RabbitMQ 3.10 (STOMP + Web-STOMP plugins),
# ActiveMQ Classic 5.17 (STOMP over TCP) and a trivial sink server, with the load tool bench/Broker.Load
# (`stompload`). Everything runs on this machine, on 127.0.0.1 only, on free ports, in private temp folders.
#
# Usage:  bench/compare.sh [options]          (options may also be given as environment variables)
#
#   --runs N            RUNS        rounds; each round runs every case once against every broker (default 3)
#   --duration S        DURATION    measured seconds of each flow case (default 10)
#   --warmup S          WARMUP      warm-up seconds before each flow case (default 2)
#   --brokers LIST      BROKERS     comma/space separated, default all:
#                                   sink,stompbroker-memory,stompbroker-rabbitmq,rabbitmq,activemq
#   --scenarios LIST    SCENARIOS   cases or groups (p2p, fanout, latency, conns), default all:
#                                   p2p-1-1-100B p2p-1-1-4KiB p2p-4-4-100B p2p-4-4-4KiB fanout-10 fanout-100
#                                   latency-1k latency-10k conns
#   --transports LIST   TRANSPORTS  tcp,ws (default both; ActiveMQ has no WebSocket transport: TCP only)
#   --connections N     CONNECTIONS idle connections of the conns case (default 10000)
#   --conns-runs N      CONNS_RUNS  rounds that include the conns case: the last N (default 1; memory per idle
#                                   connection barely varies between runs, and each such run costs 10-35 s per
#                                   broker and transport plus settling)
#   --out FILE          OUT         markdown file whose `<!-- compare:begin -->`…`<!-- compare:end -->` section is
#                                   replaced (default docs/benchmarks.md; `none`: only RESULTS/report.md)
#   --results DIR       RESULTS     where every result JSON, the report and all logs go
#                                   (default artifacts/bench/<UTC timestamp>/)
#   --start-only        START_ONLY=1  start the selected brokers, print their URLs and pids (also written to
#                                   RESULTS/brokers.env), wait for Enter or ^C, stop them. For manual profiling.
#   --no-build          BUILD=0     use the existing Release builds
#   --keep-workdir      KEEP_WORKDIR=1  keep the brokers' temp data folders (default: deleted, logs are copied)
#   -h, --help
#   More environment knobs: SETTLE (seconds of quiet after a conns case, default 5), STOMPBROKER_ARGS (extra
#   --Key=Value arguments for both StompBroker processes), ACTIVEMQ_* (see bench/brokers/start-activemq.sh),
#   RABBITMQ_* (see tests/rabbitmq/start-rabbitmq.sh). Relative paths are taken from the repository root.
#
# Time: the default plan is 3 × 64 flow runs of WARMUP + DURATION + ~1 s each, plus 9 conns runs of 10-35 s (and a
# restart of the broker before each), about 48 minutes on the 2-core machine (it prints its estimate first);
# DURATION=8 makes it about 42.
#
# Order: for each round, for each case, for each transport, for each broker: one `stompload run` (brokers
# alternate, so drift on the machine spreads over all of them). The sink only gets the p2p, latency and conns cases
# (it delivers nothing in p2p, where it runs with no consumers, so fan-out would repeat p2p 1→1; in latency it relays
# each SEND to the one subscriber at once, which makes its row the floor of the tool and the machine).
#
# The brokers (started once, and again before each conns run, so that it measures a fresh process: resident memory
# does not shrink after earlier cases' connections close; stopped on exit, ^C or SIGTERM; nothing stays running):
#   sink                  `stompload sink --relay`: answers CONNECT and receipts, discards SENDs nobody subscribed
#                         to and relays the rest at once (the ceiling of the tool, and the latency floor)
#   stompbroker-memory    src/Broker Release build, in-memory backend, logging at Warning, limits raised
#   stompbroker-rabbitmq  the same on the RabbitMQ backend, pointed at the RabbitMQ node below
#   rabbitmq              tests/rabbitmq/start-rabbitmq.sh: a private node with rabbitmq_stomp + rabbitmq_web_stomp
#                         (login guest/guest); also the backend of stompbroker-rabbitmq
#   activemq              bench/brokers/start-activemq.sh: stomp+nio on TCP, persistent=false, flow control on
# conns passes --pid of the broker's own process: the dotnet process for StompBroker and the sink, beam.smp for
# RabbitMQ, java for ActiveMQ (for stompbroker-rabbitmq, RabbitMQ's memory is not counted).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shell-quote a word only when it needs it (printf %q would also escape commas)
q() { if [[ "$1" =~ ^[][A-Za-z0-9_./:=,+@%-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi; }
COMMAND_LINE="bench/compare.sh"
for a in "$@"; do COMMAND_LINE+=" $(q "$a")"; done
ENV_LINE=""
for v in RUNS DURATION WARMUP BROKERS SCENARIOS TRANSPORTS CONNECTIONS CONNS_RUNS OUT RESULTS START_ONLY BUILD SETTLE \
         STOMPBROKER_ARGS ACTIVEMQ_STOMP_SCHEME ACTIVEMQ_HEAP ACTIVEMQ_MEMORY_LIMIT ACTIVEMQ_PERSISTENT ACTIVEMQ_ADVISORY; do
  [[ -n "${!v:-}" ]] && ENV_LINE+="$v=$(q "${!v}") "
done
COMMAND_LINE="$ENV_LINE$COMMAND_LINE"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
BROKERS="${BROKERS:-all}"
SCENARIOS="${SCENARIOS:-all}"
TRANSPORTS="${TRANSPORTS:-tcp,ws}"
CONNECTIONS="${CONNECTIONS:-10000}"
CONNS_RUNS="${CONNS_RUNS:-1}"
OUT="${OUT:-docs/benchmarks.md}"
RESULTS="${RESULTS:-}"
START_ONLY="${START_ONLY:-0}"
BUILD="${BUILD:-1}"
SETTLE="${SETTLE:-5}"
KEEP_WORKDIR="${KEEP_WORKDIR:-0}"

while (($#)); do
  case "$1" in
    --runs) RUNS="$2"; shift 2;;
    --duration) DURATION="$2"; shift 2;;
    --warmup) WARMUP="$2"; shift 2;;
    --brokers) BROKERS="$2"; shift 2;;
    --scenarios) SCENARIOS="$2"; shift 2;;
    --transports) TRANSPORTS="$2"; shift 2;;
    --connections) CONNECTIONS="$2"; shift 2;;
    --conns-runs) CONNS_RUNS="$2"; shift 2;;
    --out) OUT="$2"; shift 2;;
    --results) RESULTS="$2"; shift 2;;
    --start-only) START_ONLY=1; shift;;
    --no-build) BUILD=0; shift;;
    --keep-workdir) KEEP_WORKDIR=1; shift;;
    -h|--help) usage; exit 0;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_num() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
{ is_uint "$RUNS" && ((RUNS >= 1)); } || { echo "RUNS must be a positive integer" >&2; exit 2; }
is_num "$DURATION" || { echo "DURATION must be a number of seconds" >&2; exit 2; }
is_num "$WARMUP" || { echo "WARMUP must be a number of seconds" >&2; exit 2; }
{ is_uint "$CONNECTIONS" && ((CONNECTIONS >= 1)); } || { echo "CONNECTIONS must be a positive integer" >&2; exit 2; }
is_uint "$CONNS_RUNS" || { echo "CONNS_RUNS must be a whole number" >&2; exit 2; }
((CONNS_RUNS <= RUNS)) || CONNS_RUNS=$RUNS
is_num "$SETTLE" || { echo "SETTLE must be a number of seconds" >&2; exit 2; }

# ---- the matrix --------------------------------------------------------------------------------------------
ALL_BROKERS=(sink stompbroker-memory stompbroker-rabbitmq rabbitmq activemq)
# id | stompload arguments
CASES=(
  "p2p-1-1-100B|--scenario p2p --producers 1 --consumers 1 --body 100"
  "p2p-1-1-4KiB|--scenario p2p --producers 1 --consumers 1 --body 4096"
  "p2p-4-4-100B|--scenario p2p --producers 4 --consumers 4 --body 100"
  "p2p-4-4-4KiB|--scenario p2p --producers 4 --consumers 4 --body 4096"
  "fanout-10|--scenario fanout --subscribers 10 --body 100"
  "fanout-100|--scenario fanout --subscribers 100 --body 100"
  "latency-1k|--scenario latency --rate 1000 --body 100"
  "latency-10k|--scenario latency --rate 10000 --body 100"
  "conns|--scenario conns --connections CONNECTIONS --source-addresses 8"
)

split_list() { tr ', ' '\n' <<<"$1" | sed '/^$/d'; }

SELECTED_BROKERS=()
if [[ "$BROKERS" == all ]]; then
  SELECTED_BROKERS=("${ALL_BROKERS[@]}")
else
  while read -r b; do
    [[ " ${ALL_BROKERS[*]} " == *" $b "* ]] || { echo "unknown broker '$b' (one of: ${ALL_BROKERS[*]})" >&2; exit 2; }
    SELECTED_BROKERS+=("$b")
  done < <(split_list "$BROKERS")
fi
((${#SELECTED_BROKERS[@]})) || { echo "no broker selected" >&2; exit 2; }

SELECTED_CASES=()
want_case() { # want_case ID: is it selected by SCENARIOS?
  [[ "$SCENARIOS" == all ]] && return 0
  local item
  while read -r item; do
    [[ "$item" == "$1" || "$item" == "${1%%-*}" ]] && return 0
  done < <(split_list "$SCENARIOS")
  return 1
}
if [[ "$SCENARIOS" != all ]]; then
  while read -r item; do
    found=0
    for c in "${CASES[@]}"; do id="${c%%|*}"; [[ "$item" == "$id" || "$item" == "${id%%-*}" ]] && found=1; done
    ((found)) || { echo "unknown scenario '$item' (cases: $(for c in "${CASES[@]}"; do printf '%s ' "${c%%|*}"; done)or p2p, fanout, latency, conns)" >&2; exit 2; }
  done < <(split_list "$SCENARIOS")
fi
for c in "${CASES[@]}"; do want_case "${c%%|*}" && SELECTED_CASES+=("$c"); done

SELECTED_TRANSPORTS=()
while read -r t; do
  case "$t" in tcp|ws) SELECTED_TRANSPORTS+=("$t");; *) echo "unknown transport '$t' (tcp, ws)" >&2; exit 2;; esac
done < <(split_list "$TRANSPORTS")

selected() { [[ " ${SELECTED_BROKERS[*]} " == *" $1 "* ]]; }
has_transport() { # has_transport BROKER TRANSPORT
  [[ " ${SELECTED_TRANSPORTS[*]} " == *" $2 "* ]] || return 1
  [[ "$1" == activemq && "$2" == ws ]] && return 1   # Debian's ActiveMQ has no WebSocket transport
  return 0
}
case_applies() { # case_applies BROKER CASE_ID
  [[ "$1" == sink ]] && [[ "$2" != p2p-* && "$2" != latency-* && "$2" != conns* ]] && return 1
  return 0
}

# ---- results folder, logging ------------------------------------------------------------------------------
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="${RESULTS:-artifacts/bench/$STAMP}"
mkdir -p "$RESULTS/json" "$RESULTS/logs/load"
RESULTS="$(cd "$RESULTS" && pwd -P)"
T0=$SECONDS
say() { printf '[compare %s] %s\n' "$(date -u -d "@$((SECONDS - T0))" +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ---- processes: started, recorded, always stopped -------------------------------------------------------
WORK=""
declare -A PID_OF=() URL_OF=() LOG_OF=()
DOTNET_PROCS=()      # "name pid" of processes we started with spawn
RMQ_DIR="" AMQ_DIR=""
RMQ_STARTS=0 AMQ_STARTS=0
LOAD_PID=""
WAIT_PID=""
CLEANED=0

stop_pid() { # stop_pid NAME PID: SIGTERM, wait up to 15 s, SIGKILL
  local name="$1" pid="$2"
  kill -0 "$pid" 2>/dev/null || return 0
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  say "$name still alive after 15 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
}

cleanup() {
  ((CLEANED)) && return 0
  CLEANED=1
  trap '' INT TERM
  set +e
  [[ -n "$WAIT_PID" ]] && kill "$WAIT_PID" 2>/dev/null
  [[ -n "$LOAD_PID" ]] && stop_pid "stompload" "$LOAD_PID"
  # StompBroker on RabbitMQ first (so it does not reconnect to a dying node), then the rest, RabbitMQ last.
  local i entry
  for ((i = ${#DOTNET_PROCS[@]} - 1; i >= 0; i--)); do
    entry="${DOTNET_PROCS[i]}"
    stop_pid "${entry%% *}" "${entry##* }"
  done
  if [[ -n "$AMQ_DIR" ]]; then stop_activemq; fi
  if [[ -n "$RMQ_DIR" ]]; then stop_rabbitmq; fi
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if [[ "$KEEP_WORKDIR" == 1 ]]; then say "kept the brokers' data in $WORK"; else rm -rf "$WORK"; fi
  fi
  say "all stopped; results in $RESULTS"
}
trap cleanup EXIT
set -E   # the ERR trap also in functions: say where `set -e` ended the script
trap 'say "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# spawn NAME LOGFILE CMD...: start CMD in its own session, record the pid of the process that runs CMD.
spawn() {
  local name="$1" logfile="$2"; shift 2
  local pidfile="$WORK/$name.pid"
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
  setsid /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
  for _ in $(seq 1 100); do [[ -s "$pidfile" ]] && break; sleep 0.05; done
  [[ -s "$pidfile" ]] || die "$name did not start"
  PID_OF[$name]="$(cat "$pidfile")"
  LOG_OF[$name]="$logfile"
  DOTNET_PROCS+=("$name ${PID_OF[$name]}")
}

PROBE=(/usr/bin/python3 "$ROOT/bench/brokers/stomp_probe.py")

# wait_ready NAME MODE URL...: poll until each URL answers (MODE connect: CONNECTED; roundtrip: a message goes
# through a queue), the process staying alive; 90 s at most.
wait_ready() {
  local name="$1" mode="$2"; shift 2
  local deadline=$((SECONDS + 90)) url
  for url in "$@"; do
    until "${PROBE[@]}" "$mode" "$url" --dest /queue/compare.probe --timeout 5 -q 2>/dev/null; do
      kill -0 "${PID_OF[$name]}" 2>/dev/null || { tail -n 30 "${LOG_OF[$name]}" >&2; die "$name exited during start (log: ${LOG_OF[$name]})"; }
      ((SECONDS < deadline)) || { tail -n 30 "${LOG_OF[$name]}" >&2; die "$name: $url not ready within 90 s"; }
      sleep 0.5
    done
  done
}

free_ports() { # free_ports N: N distinct free loopback ports
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

BROKER_DLL="$ROOT/src/Broker/bin/Release/net10.0/StompBroker.dll"
LOAD_DLL="$ROOT/bench/Broker.Load/bin/Release/net10.0/stompload.dll"

start_stompbroker() { # start_stompbroker NAME [extra --Key=Value...]
  local name="$1"; shift
  local tcp ws
  read -r tcp ws < <(free_ports 2)
  # Only our settings: drop inherited Broker__* variables and ASP.NET URL overrides.
  local unset_args=() v
  for v in ${!Broker__*} ASPNETCORE_URLS DOTNET_URLS ASPNETCORE_HTTP_PORTS; do unset_args+=(-u "$v"); done
  # shellcheck disable=SC2086
  spawn "$name" "$RESULTS/logs/$name.log" env "${unset_args[@]}" \
    ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
    dotnet "$BROKER_DLL" \
    --Broker:BindAddress=127.0.0.1 \
    "--Broker:Tcp:Port=$tcp" "--Broker:WebSocket:Port=$ws" --Broker:WebSocket:Path=/ws \
    --Broker:Security:Anonymous=true \
    --Broker:Limits:MaxConnections=100000 \
    --Broker:Limits:MaxConnectionsPerAddress=100000 \
    --Broker:Limits:RateLimit:FramesPerSecond=0 \
    --Broker:Limits:RateLimit:BytesPerSecond=0 \
    --Broker:ShutdownGracePeriod=00:00:02 \
    --Logging:LogLevel:Default=Warning \
    --Logging:LogLevel:Microsoft.AspNetCore=Warning \
    --Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning \
    --Logging:Console:FormatterName=simple \
    "$@" ${STOMPBROKER_ARGS:-}
  URL_OF[$name:tcp]="tcp://127.0.0.1:$tcp"
  URL_OF[$name:ws]="ws://127.0.0.1:$ws/ws"
  wait_ready "$name" roundtrip "${URL_OF[$name:tcp]}" "${URL_OF[$name:ws]}"
  say "$name up: ${URL_OF[$name:tcp]} ${URL_OF[$name:ws]} pid ${PID_OF[$name]}"
}

start_sink() {
  local tcp ws
  read -r tcp ws < <(free_ports 2)
  spawn sink "$RESULTS/logs/sink.log" env DOTNET_CLI_TELEMETRY_OPTOUT=1 dotnet "$LOAD_DLL" sink --tcp-port "$tcp" --ws-port "$ws" --relay
  URL_OF[sink:tcp]="tcp://127.0.0.1:$tcp"
  URL_OF[sink:ws]="ws://127.0.0.1:$ws/ws"
  wait_ready sink connect "${URL_OF[sink:tcp]}" "${URL_OF[sink:ws]}"
  say "sink up: ${URL_OF[sink:tcp]} ${URL_OF[sink:ws]} pid ${PID_OF[sink]}"
}

start_rabbitmq() { # a new node in a new folder (a restart gets new ports)
  RMQ_STARTS=$((RMQ_STARTS + 1))
  RMQ_DIR="$WORK/rabbitmq.$RMQ_STARTS"
  say "starting RabbitMQ (tests/rabbitmq/start-rabbitmq.sh)"
  tests/rabbitmq/start-rabbitmq.sh "$RMQ_DIR" >/dev/null 2>>"$RESULTS/logs/rabbitmq-start.log" ||
    { tail -n 20 "$RESULTS/logs/rabbitmq-start.log" >&2; die "RabbitMQ did not start"; }
  local STOMP_PORT WEB_STOMP_URL AMQP_PORT PID
  # shellcheck disable=SC1091
  source "$RMQ_DIR/ports.env"
  PID_OF[rabbitmq]="$PID"
  LOG_OF[rabbitmq]="$RMQ_DIR/log"
  URL_OF[rabbitmq:tcp]="tcp://127.0.0.1:$STOMP_PORT"
  URL_OF[rabbitmq:ws]="$WEB_STOMP_URL"
  RMQ_AMQP_URI="amqp://guest:guest@127.0.0.1:$AMQP_PORT/"
  "${PROBE[@]}" roundtrip "${URL_OF[rabbitmq:tcp]}" --dest /queue/compare.probe -q || die "RabbitMQ STOMP does not deliver"
  "${PROBE[@]}" roundtrip "${URL_OF[rabbitmq:ws]}" --dest /queue/compare.probe -q || die "RabbitMQ Web-STOMP does not deliver"
  say "rabbitmq up: ${URL_OF[rabbitmq:tcp]} ${URL_OF[rabbitmq:ws]} amqp $AMQP_PORT pid $PID (beam.smp)"
}

stop_rabbitmq() {
  say "stopping rabbitmq"
  tests/rabbitmq/stop-rabbitmq.sh "$RMQ_DIR" >/dev/null 2>&1
  mkdir -p "$RESULTS/logs/rabbitmq.$RMQ_STARTS"
  cp -p "$RMQ_DIR"/log/*.log "$RMQ_DIR/rabbitmq.conf" "$RESULTS/logs/rabbitmq.$RMQ_STARTS/" 2>/dev/null
  RMQ_DIR=""
}

start_activemq() {
  AMQ_STARTS=$((AMQ_STARTS + 1))
  AMQ_DIR="$WORK/activemq.$AMQ_STARTS"
  say "starting ActiveMQ (bench/brokers/start-activemq.sh)"
  bench/brokers/start-activemq.sh "$AMQ_DIR" >/dev/null 2>>"$RESULTS/logs/activemq-start.log" ||
    { tail -n 20 "$RESULTS/logs/activemq-start.log" >&2; die "ActiveMQ did not start"; }
  local STOMP_PORT PID
  # shellcheck disable=SC1091
  source "$AMQ_DIR/ports.env"
  PID_OF[activemq]="$PID"
  LOG_OF[activemq]="$AMQ_DIR/data/activemq.log"
  URL_OF[activemq:tcp]="tcp://127.0.0.1:$STOMP_PORT"
  "${PROBE[@]}" roundtrip "${URL_OF[activemq:tcp]}" --dest /queue/compare.probe -q || die "ActiveMQ does not deliver"
  say "activemq up: ${URL_OF[activemq:tcp]} pid $PID (java)"
}

stop_activemq() {
  say "stopping activemq"
  bench/brokers/stop-activemq.sh "$AMQ_DIR" >/dev/null 2>&1
  mkdir -p "$RESULTS/logs/activemq.$AMQ_STARTS"
  cp -p "$AMQ_DIR"/data/activemq.log* "$AMQ_DIR/log/console.log" "$AMQ_DIR/conf/activemq.xml" "$RESULTS/logs/activemq.$AMQ_STARTS/" 2>/dev/null
  AMQ_DIR=""
}

# restart_broker NAME: stop it and start it again, so that a conns case measures a fresh process (a process's
# resident memory does not shrink after the connections of earlier cases close, which would under-count). A new
# RabbitMQ node gets new ports: StompBroker on RabbitMQ is started again on it too.
restart_broker() {
  case "$1" in
    sink) stop_pid sink "${PID_OF[sink]}"; start_sink ;;
    stompbroker-memory) stop_pid stompbroker-memory "${PID_OF[stompbroker-memory]}"; start_stompbroker stompbroker-memory --Broker:Backend=InMemory ;;
    stompbroker-rabbitmq)
      stop_pid stompbroker-rabbitmq "${PID_OF[stompbroker-rabbitmq]}"
      start_stompbroker stompbroker-rabbitmq --Broker:Backend=RabbitMq "--Broker:RabbitMq:Uri=$RMQ_AMQP_URI" ;;
    rabbitmq)
      if selected stompbroker-rabbitmq; then stop_pid stompbroker-rabbitmq "${PID_OF[stompbroker-rabbitmq]}"; fi
      stop_rabbitmq
      start_rabbitmq
      if selected stompbroker-rabbitmq; then
        start_stompbroker stompbroker-rabbitmq --Broker:Backend=RabbitMq "--Broker:RabbitMq:Uri=$RMQ_AMQP_URI"
      fi ;;
    activemq) stop_activemq; start_activemq ;;
  esac
}

start_all() {
  WORK="$(mktemp -d /tmp/stomp-compare.XXXXXX)"
  chmod 755 "$WORK"   # the RabbitMQ node runs as user rabbitmq
  local need_rmq=0
  selected rabbitmq && need_rmq=1
  selected stompbroker-rabbitmq && need_rmq=1

  if selected sink; then
    start_sink
  fi
  if selected stompbroker-memory; then
    start_stompbroker stompbroker-memory --Broker:Backend=InMemory
  fi
  if ((need_rmq)); then
    start_rabbitmq
    if selected stompbroker-rabbitmq; then
      start_stompbroker stompbroker-rabbitmq --Broker:Backend=RabbitMq "--Broker:RabbitMq:Uri=$RMQ_AMQP_URI"
    fi
  fi
  if selected activemq; then
    start_activemq
  fi

  # coordinates for scripts and people
  {
    for b in "${ALL_BROKERS[@]}"; do
      selected "$b" || continue
      local key="${b^^}"; key="${key//-/_}"
      echo "${key}_PID=${PID_OF[$b]}"
      echo "${key}_TCP_URL=${URL_OF[$b:tcp]}"
      if [[ -n "${URL_OF[$b:ws]:-}" ]]; then echo "${key}_WS_URL=${URL_OF[$b:ws]}"; fi
    done
    if [[ -n "$RMQ_DIR" ]]; then echo "RABBITMQ_AMQP_URI=$RMQ_AMQP_URI"; fi
  } > "$RESULTS/brokers.env"
}

# ---- build ---------------------------------------------------------------------------------------------------
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# The commit measured is the one built now, not the one checked out when the (long) run ends.
BUILT_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n "$(git status --porcelain -- src bench 2>/dev/null)" ]] && BUILT_COMMIT="$BUILT_COMMIT (with uncommitted changes)"
if [[ "$BUILD" == 1 ]]; then
  say "building src/Broker and bench/Broker.Load (Release)"
  for proj in src/Broker/Broker.csproj bench/Broker.Load/Broker.Load.csproj; do
    dotnet build -c Release "$proj" -nologo >>"$RESULTS/logs/build.log" 2>&1 ||
      { tail -n 30 "$RESULTS/logs/build.log" >&2; die "build of $proj failed (log: $RESULTS/logs/build.log)"; }
  done
fi
[[ -f "$BROKER_DLL" ]] || die "no $BROKER_DLL (build first)"
[[ -f "$LOAD_DLL" ]] || die "no $LOAD_DLL (build first)"

# ---- start ---------------------------------------------------------------------------------------------------
say "starting: ${SELECTED_BROKERS[*]}; data in /tmp, results in $RESULTS"
start_all

if [[ "$START_ONLY" == 1 ]]; then
  echo
  printf '%-22s %-32s %-36s %s\n' broker tcp websocket pid
  for b in "${ALL_BROKERS[@]}"; do
    selected "$b" || continue
    ws="${URL_OF[$b:ws]:-n/a}"; [[ "$b" == activemq ]] && ws="n/a"
    printf '%-22s %-32s %-36s %s\n' "$b" "${URL_OF[$b:tcp]}" "$ws" "${PID_OF[$b]}"
  done
  echo
  echo "login guest / passcode guest; coordinates in $RESULTS/brokers.env; logs in $RESULTS/logs"
  echo "e.g.: dotnet $LOAD_DLL run --scenario p2p --url ${URL_OF[${SELECTED_BROKERS[0]}:tcp]} --login guest --passcode guest"
  if [[ -t 0 ]]; then
    echo "press Enter (or ^C) to stop them"
    read -r _ || true
  else
    echo "stdin is not a terminal: send SIGINT or SIGTERM to pid $$ to stop them"
    sleep infinity &
    WAIT_PID=$!
    wait "$WAIT_PID" || true
  fi
  exit 0
fi

# ---- the plan ------------------------------------------------------------------------------------------------
flow_runs=0 conns_runs=0
for c in "${SELECTED_CASES[@]}"; do
  id="${c%%|*}"
  for t in "${SELECTED_TRANSPORTS[@]}"; do
    for b in "${SELECTED_BROKERS[@]}"; do
      { has_transport "$b" "$t" && case_applies "$b" "$id"; } || continue
      if [[ "$id" == conns* ]]; then conns_runs=$((conns_runs + 1)); else flow_runs=$((flow_runs + 1)); fi
    done
  done
done
total=$(( flow_runs * RUNS + conns_runs * CONNS_RUNS ))
((total > 0)) || die "nothing to run for that selection"
est=$(/usr/bin/python3 -c "print(round(($flow_runs * ($DURATION + $WARMUP + 1) * $RUNS + $conns_runs * (40 + $SETTLE) * $CONNS_RUNS) / 60))")
say "plan: $RUNS rounds × $flow_runs flow runs + $CONNS_RUNS × $conns_runs conns runs = $total runs, about $est minutes"

summary() { # one line from a result JSON
  /usr/bin/python3 - "$1" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no result ({e.__class__.__name__})"); sys.exit()
ok = "ok" if r.get("ok") else "FAILED" + (f": {r['error']}" if r.get("error") else "")
if r.get("scenario") == "conns":
    per = r.get("rssPerConnectionBytes")
    print(f"{ok}, {per / 1024:.1f} KB/connection" if per is not None else ok)
elif r.get("scenario") == "latency":
    l = r.get("latency") or {}
    print(f"{ok}, p50 {l.get('p50', float('nan')):.2f} ms, p99 {l.get('p99', float('nan')):.2f} ms")
else:
    rate = r.get("sentPerSecond") if r.get("sink") else r.get("receivedPerSecond")
    print(f"{ok}, {rate or 0:,.0f} msg/s, lost {r.get('lost', 0)}, dup {r.get('duplicates', 0)}, reordered {r.get('reordered', 0)}")
EOF
}

# ---- run -----------------------------------------------------------------------------------------------------
n=0
failed=0
for ((run = 1; run <= RUNS; run++)); do
  for c in "${SELECTED_CASES[@]}"; do
    id="${c%%|*}"
    args="${c#*|}"
    args="${args//CONNECTIONS/$CONNECTIONS}"
    for t in "${SELECTED_TRANSPORTS[@]}"; do
      for b in "${SELECTED_BROKERS[@]}"; do
        { has_transport "$b" "$t" && case_applies "$b" "$id"; } || continue
        # conns only in the last CONNS_RUNS rounds (after the flow cases of the earlier rounds)
        [[ "$id" == conns* ]] && ((run <= RUNS - CONNS_RUNS)) && continue
        n=$((n + 1))
        name="$id.$t.$b.run$run"
        json="$RESULTS/json/$name.json"
        # A conns case measures a freshly started process (see restart_broker); its URL and pid change.
        [[ "$id" == conns* ]] && restart_broker "$b"
        # shellcheck disable=SC2206
        cmd=(dotnet "$LOAD_DLL" run $args --url "${URL_OF[$b:$t]}" --login guest --passcode guest --host /
             --broker "$b" --label "$b $t $id run $run" --json "$json")
        if [[ "$id" == conns* ]]; then
          cmd+=(--pid "${PID_OF[$b]}")
        else
          cmd+=(--duration "$DURATION" --warmup "$WARMUP")
        fi
        # p2p against the sink runs without consumers (it delivers nothing); latency subscribes, and the sink relays.
        [[ "$b" == sink && "$id" != latency-* ]] && cmd+=(--sink)
        say "[$n/$total] run $run/$RUNS  $id  $t  $b"
        { printf '$'; for a in "${cmd[@]}"; do printf ' %s' "$(q "$a")"; done; echo; } >"$RESULTS/logs/load/$name.log"
        "${cmd[@]}" >>"$RESULTS/logs/load/$name.log" 2>&1 </dev/null &
        LOAD_PID=$!
        rc=0
        wait "$LOAD_PID" || rc=$?
        LOAD_PID=""
        if ((rc == 2)); then   # bad usage: every further run would fail the same way
          tail -n 20 "$RESULTS/logs/load/$name.log" >&2
          die "stompload refused its arguments (exit 2); see $RESULTS/logs/load/$name.log"
        fi
        line="$(summary "$json")"
        if ((rc != 0)); then
          failed=$((failed + 1))
          line="$line (exit $rc; log: logs/load/$name.log)"
        fi
        say "        $line"
        for p in "${!PID_OF[@]}"; do
          kill -0 "${PID_OF[$p]}" 2>/dev/null || die "$p (pid ${PID_OF[$p]}) is gone; see its log"
        done
        if [[ "$id" == conns* ]]; then
          sleep "$SETTLE"   # let the closed connections' sockets go before the next case
        fi
      done
    done
  done
done
say "runs done: $total, $failed with a non-zero exit"

# ---- report --------------------------------------------------------------------------------------------------
shopt -s nullglob
jsons=("$RESULTS"/json/*.json)
shopt -u nullglob
((${#jsons[@]})) || die "no result files"
dotnet "$LOAD_DLL" report --runs "$RUNS" --out "$RESULTS/report.md" "${jsons[@]}" ||
  die "stompload report failed"

machine_block() {
  local model mem kernel os dotnet_sdk dotnet_rt rmq erl amq java_v commit
  model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  mem="$(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  kernel="$(uname -sr)"
  # shellcheck disable=SC1091
  os="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
  dotnet_sdk="$(dotnet --version 2>/dev/null || echo '?')"
  dotnet_rt="$(dotnet --list-runtimes 2>/dev/null | awk '/^Microsoft.NETCore.App / {v=$2} END {print v}')"
  rmq="$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo 'not installed')"
  erl="$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo '?')"
  amq="$(dpkg-query -W -f '${Version}' activemq 2>/dev/null || echo 'not installed')"
  java_v="$(java -version 2>&1 | head -n1)"
  commit="$BUILT_COMMIT"
  local conns_note=""
  for c in "${SELECTED_CASES[@]}"; do
    if [[ "${c%%|*}" == conns ]]; then conns_note=", the conns case ($CONNECTIONS idle connections, each run on a freshly started broker) in the last $CONNS_RUNS round(s)"; fi
  done
  echo "Measured with \`$COMMAND_LINE\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit: $RUNS round(s), each flow case ${WARMUP} s warm-up + ${DURATION} s measured$conns_note; the brokers alternate case by case; everything on 127.0.0.1, the load tool on the same machine."
  echo
  echo "- Machine: $model, $(nproc) cores (\`nproc\`), $mem RAM, $os, kernel $kernel, open-files limit $(ulimit -n)."
  if selected stompbroker-memory || selected stompbroker-rabbitmq; then
    echo "- StompBroker: Release build, .NET SDK $dotnet_sdk (runtime $dotnet_rt), \`ASPNETCORE_ENVIRONMENT=Production\`, logging at Warning, \`Broker:Limits:MaxConnections\` and \`MaxConnectionsPerAddress\` 100,000, rate limit off, everything else default${STOMPBROKER_ARGS:+ except \`$STOMPBROKER_ARGS\`}."
  fi
  if [[ -n "$RMQ_DIR" ]]; then
    echo "- RabbitMQ $rmq (Erlang $erl), Debian package, plugins rabbitmq_stomp and rabbitmq_web_stomp, started by \`tests/rabbitmq/start-rabbitmq.sh\` (defaults, except Web-STOMP sending binary frames)$(selected stompbroker-rabbitmq && echo "; it is also the backend of \"StompBroker, RabbitMQ backend\", whose conns figure leaves RabbitMQ's memory out")."
  fi
  if selected activemq; then
    echo "- ActiveMQ Classic $amq, Debian package, $java_v, started by \`bench/brokers/start-activemq.sh\`: \`${ACTIVEMQ_STOMP_SCHEME:-stomp+nio}\` connector, \`persistent=${ACTIVEMQ_PERSISTENT:-false}\`, producer flow control with ${ACTIVEMQ_MEMORY_LIMIT:-512 mb} of memoryUsage, -Xmx${ACTIVEMQ_HEAP:-2g}; TCP only (the Debian package has no WebSocket transport)."
  fi
  if selected sink; then
    echo "- Sink: \`stompload sink --relay\`, which answers CONNECT and receipts, discards SENDs nobody subscribed to and relays the rest to their subscriber at once: the ceiling of the load tool on this machine, and in the latency rows its floor (p2p, latency and conns cases)."
  fi
  return 0
}

machine_block > "$RESULTS/machine.md"
if [[ "$OUT" != none ]]; then
  [[ -f "$OUT" ]] || printf '# Benchmarks\n' > "$OUT"
  /usr/bin/python3 - "$OUT" "$RESULTS/report.md" "$RESULTS/machine.md" <<'EOF'
import sys
out, report, machine = sys.argv[1:4]
text = open(out, encoding="utf-8").read()
begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
section = begin + "\n\n" + open(report, encoding="utf-8").read().strip() + "\n\n" \
    + open(machine, encoding="utf-8").read().strip() + "\n\n" + end
if begin in text and end in text and text.index(begin) < text.index(end):
    text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n## Head-to-head (bench/compare.sh)\n\n" + section + "\n"
open(out, "w", encoding="utf-8").write(text)
EOF
  say "wrote the comparison into $OUT (between the <!-- compare:begin/end --> markers)"
fi
say "report: $RESULTS/report.md"
