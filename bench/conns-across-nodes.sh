#!/usr/bin/env bash
# bench/conns-across-nodes.sh: how many idle connections this machine holds with StompBroker when one process may
# not hold them all. A process's open files are capped by its hard RLIMIT_NOFILE (20,000 on the machines we have,
# and raising it needs CAP_SYS_RESOURCE), so CONNECTIONS are spread over NODES broker processes (in-memory backend,
# Release build), each loaded by its own `stompload run --scenario conns` (the load tool has the same cap). All run at
# once; while every node holds its share, the established connections are counted with `ss` and every node's VmRSS
# is read. Everything on 127.0.0.1, clients spread over 127.0.0.1–127.0.0.8; nothing stays running afterwards.
#
# The brokers give a connection 60 s (not 10) to send CONNECT: with a dozen processes opening connections on two
# cores, a load tool can fall that far behind, and this measures memory, not the CONNECT deadline.
#
# With BROKER_TRANSPORT=IoUring a node's connections are io_uring direct descriptors, which the open-files limit does
# not count, so NODES=1 holds them all in one broker; its load is then spread over CLIENTS load tools (each capped).
# Memory per connection is (the brokers' VmRSS while all connections are held - their VmRSS before any) / connections.
#
# Usage: [NODES=6] [CONNECTIONS=100000] [TRANSPORT=ws|tcp] [BROKER_TRANSPORT=Sockets|IoUring] [CLIENTS=per node, as
#        the limit needs] [HOLD=240] bench/conns-across-nodes.sh
# Writes one result JSON per load tool and summary.md to RESULTS (default artifacts/bench/nodes-<UTC timestamp>/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
NODES="${NODES:-6}"
CONNECTIONS="${CONNECTIONS:-100000}"
TRANSPORT="${TRANSPORT:-ws}"
BROKER_TRANSPORT="${BROKER_TRANSPORT:-Sockets}"
HOLD="${HOLD:-240}"
RESULTS="${RESULTS:-artifacts/bench/nodes-$(date -u +%Y%m%dT%H%M%SZ)}"
[[ "$NODES" =~ ^[0-9]+$ && "$NODES" -ge 1 ]] || { echo "NODES must be a positive integer" >&2; exit 2; }
[[ "$CONNECTIONS" =~ ^[0-9]+$ && "$CONNECTIONS" -ge 1 ]] || { echo "CONNECTIONS must be a positive integer" >&2; exit 2; }
[[ "$TRANSPORT" == ws || "$TRANSPORT" == tcp ]] || { echo "TRANSPORT is ws or tcp" >&2; exit 2; }
[[ "$BROKER_TRANSPORT" == Sockets || "$BROKER_TRANSPORT" == IoUring ]] || { echo "BROKER_TRANSPORT is Sockets or IoUring" >&2; exit 2; }
PER_NODE=$(((CONNECTIONS + NODES - 1) / NODES))
LIMIT="$(ulimit -Hn)"
if [[ "$BROKER_TRANSPORT" == Sockets ]] && ((PER_NODE + 200 > LIMIT)); then
  echo "$PER_NODE connections per node do not fit the open-files limit $LIMIT: raise NODES or use BROKER_TRANSPORT=IoUring" >&2
  exit 2
fi
CLIENTS="${CLIENTS:-$(((PER_NODE + LIMIT - 201) / (LIMIT - 200)))}"
[[ "$CLIENTS" =~ ^[0-9]+$ && "$CLIENTS" -ge 1 ]] || { echo "CLIENTS must be a positive integer" >&2; exit 2; }
PER_CLIENT=$(((PER_NODE + CLIENTS - 1) / CLIENTS))
((PER_CLIENT + 200 <= LIMIT)) || { echo "$PER_CLIENT connections per load tool do not fit the open-files limit $LIMIT: raise CLIENTS" >&2; exit 2; }
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd -P)"
say() { printf '[nodes %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BROKER_DLL="$ROOT/src/Broker/bin/Release/net10.0/StompBroker.dll"
LOAD_DLL="$ROOT/bench/Broker.Load/bin/Release/net10.0/stompload.dll"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
for proj in src/Broker/Broker.csproj bench/Broker.Load/Broker.Load.csproj; do
  dotnet build -c Release "$proj" -nologo >>"$RESULTS/build.log" 2>&1 || { tail -n 30 "$RESULTS/build.log" >&2; exit 1; }
done

PIDS=() LOADS=()
cleanup() {
  trap '' INT TERM
  local p
  for p in "${LOADS[@]}" "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${LOADS[@]}" "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r -a PORTS < <(/usr/bin/python3 - "$((NODES * 2))" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
URLS=()
for ((i = 0; i < NODES; i++)); do
  tcp="${PORTS[i * 2]}" ws="${PORTS[i * 2 + 1]}"
  dotnet "$BROKER_DLL" --Broker:BindAddress=127.0.0.1 "--Broker:Tcp:Port=$tcp" "--Broker:WebSocket:Port=$ws" \
    --Broker:Security:Anonymous=true "--Broker:Transport=$BROKER_TRANSPORT" "--Broker:Limits:MaxConnections=$((PER_NODE + 100))" --Broker:Limits:MaxConnectionsPerAddress=0 \
    --Broker:Limits:ConnectTimeout=00:01:00 --Broker:ShutdownGracePeriod=00:00:02 --Logging:LogLevel:Default=Warning \
    >"$RESULTS/node$i.log" 2>&1 &
  PIDS+=($!)
  if [[ "$TRANSPORT" == ws ]]; then URLS+=("ws://127.0.0.1:$ws/ws"); else URLS+=("tcp://127.0.0.1:$tcp"); fi
done
for ((i = 0; i < NODES; i++)); do
  deadline=$((SECONDS + 60))
  until /usr/bin/python3 bench/brokers/stomp_probe.py roundtrip "${URLS[i]}" --dest /queue/nodes.probe --timeout 5 -q 2>/dev/null; do
    kill -0 "${PIDS[i]}" 2>/dev/null && ((SECONDS < deadline)) || { tail -n 20 "$RESULTS/node$i.log" >&2; exit 1; }
    sleep 0.5
  done
done
sleep 2 # the probes' connections gone
base_rss=0
for p in "${PIDS[@]}"; do base_rss=$((base_rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done
say "$NODES $BROKER_TRANSPORT nodes up (pids ${PIDS[*]}, VmRSS $((base_rss / 1024)) MiB in all); $PER_NODE idle $TRANSPORT connections each from $CLIENTS load tools, held $HOLD s"

for ((i = 0; i < NODES; i++)); do
  for ((j = 0; j < CLIENTS; j++)); do
    # A load tool reads the broker's memory itself only when it is the node's only client.
    pid_arg=() && ((CLIENTS == 1)) && pid_arg=(--pid "${PIDS[i]}")
    dotnet "$LOAD_DLL" run --scenario conns --url "${URLS[i]}" --connections "$PER_CLIENT" "${pid_arg[@]}" \
      --source-addresses 8 --connect-concurrency 16 --hold "$HOLD" --quiet --json "$RESULTS/node$i-client$j.json" >"$RESULTS/load$i-$j.log" 2>&1 &
    LOADS+=($!)
  done
done

# While they hold: the most connections established to the brokers at once (each counted once, on the broker's side),
# and the brokers' resident memory at that moment.
ports_filter="$(for u in "${URLS[@]}"; do p="${u##*:}"; p="${p%%/*}"; printf 'sport = :%s or ' "$p"; done)"
ports_filter="${ports_filter% or }"
best=0 best_rss=0
while :; do
  running=0
  for p in "${LOADS[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
  ((running == NODES * CLIENTS)) || break
  held=$(ss -Htn state established "( $ports_filter )" | wc -l)
  if ((held > best)); then
    best=$held best_rss=0
    for p in "${PIDS[@]}"; do best_rss=$((best_rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done
    say "held at once: $best (brokers' VmRSS $((best_rss / 1024)) MiB)"
  fi
  sleep 2
done
failed=0
for p in "${LOADS[@]}"; do wait "$p" || failed=$((failed + 1)); done
LOADS=()

/usr/bin/python3 - "$RESULTS" "$NODES" "$best" "$best_rss" "$failed" "$TRANSPORT" "$base_rss" "$BROKER_TRANSPORT" "$CLIENTS" <<'EOF' | tee "$RESULTS/summary.md"
import glob, json, sys
results, nodes, best, best_rss, failed, transport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
base_rss, broker_transport, clients = int(sys.argv[7]), sys.argv[8], int(sys.argv[9])
runs = [json.load(open(f)) for f in sorted(glob.glob(f"{results}/node*-client*.json"))]
opened = sum(r.get("connectionsOpened", 0) for r in runs)
print(f"- {transport}, {broker_transport} transport: {opened:,} idle connections opened over {nodes} broker process(es) "
      f"from {nodes * clients} load tools ({failed} load runs failed), {best:,} established at once; brokers' VmRSS "
      f"{base_rss / 1024:,.0f} MiB before, {best_rss / 1024:,.0f} MiB then: "
      f"{(best_rss - base_rss) / max(best, 1):.1f} KiB per connection.")
EOF
