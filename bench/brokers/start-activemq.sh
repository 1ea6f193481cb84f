#!/usr/bin/env bash
# Start a PRIVATE ActiveMQ Classic broker (Debian package `activemq`, 5.17) for the head-to-head benchmark:
# STOMP over TCP only, bound to 127.0.0.1, config + data + logs in WORKDIR, running in the background.
#
# Usage:  bench/brokers/start-activemq.sh WORKDIR
#
# Prints the broker's coordinates as KEY=VALUE lines on stdout (and nothing else), e.g.
#   STOMP_PORT=40001
#   STOMP_URL=tcp://127.0.0.1:40001
#   PID=12345            the java process (the broker itself; RSS is read from it)
#   WORKDIR=/abs/workdir
# The same lines are kept in WORKDIR/ports.env. Diagnostics go to stderr; the broker log is
# WORKDIR/data/activemq.log, the JVM's stdout/stderr WORKDIR/log/console.log.
# It returns once a STOMP CONNECT (login guest, passcode guest) on STOMP_PORT is answered with CONNECTED.
#
# Idempotent: if the broker recorded in WORKDIR is up, the recorded values are printed again and nothing is
# started. A stale WORKDIR (broker dead) is reused; its port is reused when still free.
# Stop it with bench/brokers/stop-activemq.sh WORKDIR.
#
# What it runs (WORKDIR/conf/activemq.xml, regenerated on every start):
#   - one transport connector, STOMP, on 127.0.0.1 only; no OpenWire/AMQP/MQTT connector, no JMX
#     (useJmx=false), no web console (the Debian package has no Jetty, hence no WebSocket transport either);
#   - no authentication plugin: any login/passcode is accepted (the load tool sends guest/guest);
#   - persistent=false (messages only in memory; STOMP SENDs are non-persistent unless `persistent:true`),
#     or KahaDB under WORKDIR/data with ACTIVEMQ_PERSISTENT=true;
#   - producer flow control on (ActiveMQ's default) with a bounded systemUsage, so a fast producer is slowed
#     down (its connection is not read while memory is full) instead of failing;
#   - the process inherits the caller's open-files limit (no su; started as the calling user, root is fine).
#   - JVM: -Xmx$ACTIVEMQ_HEAP, -Dorg.apache.activemq.UseDedicatedTaskRunner=false (upstream's default; the Debian
#     init defaults set true, a thread per connection), the --add-opens of /usr/bin/activemq, java run directly
#     (`java -jar /usr/share/activemq/bin/activemq.jar start xbean:file:WORKDIR/conf/activemq.xml`).
# Readiness probe and the STOMP checks: bench/brokers/stomp_probe.py (stdlib python, also usable by hand).
#
# Optional environment overrides:
#   STOMP_PORT                 port of the STOMP connector (default: a free port on 127.0.0.1)
#   ACTIVEMQ_STOMP_SCHEME      stomp+nio (default: NIO selector, no thread per connection; what ActiveMQ
#                              recommends for many connections) or stomp (blocking, thread per connection)
#   ACTIVEMQ_MAX_CONNECTIONS   the connector's maximumConnections (default 20000; the real cap is the
#                              open-files limit of the process: `ulimit -n`)
#   ACTIVEMQ_MAX_FRAME_BYTES   wireFormat.maxFrameSize (default 104857600, as ActiveMQ's sample config)
#   ACTIVEMQ_CONNECTOR_OPTIONS extra connector URI options, '&'-separated, e.g. transport.closeAsync=false
#   ACTIVEMQ_HEAP              JVM -Xmx (default 2g)
#   ACTIVEMQ_MEMORY_LIMIT      systemUsage memoryUsage limit: messages held in memory before producer flow
#                              control blocks producers (default "512 mb")
#   ACTIVEMQ_PERSISTENT        false (default) or true (KahaDB in WORKDIR/data/kahadb)
#   ACTIVEMQ_ADVISORY          advisorySupport: true (ActiveMQ's default) or false
#   ACTIVEMQ_JAVA_OPTS         extra JVM options, appended
#   ACTIVEMQ_START_TIMEOUT     seconds to wait for the STOMP port to answer CONNECT (default 90)
#   JAVA                       java binary (default: java on PATH, else /usr/lib/jvm/default-java/bin/java)
#
# Needs the Debian packages activemq (5.17) and a JRE >= 11, and /usr/bin/python3 (port picking, probe).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 WORKDIR" >&2
  exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AMQ_HOME=/usr/share/activemq
if [[ ! -f "$AMQ_HOME/bin/activemq.jar" ]]; then
  echo "activemq not installed (apt-get install -y activemq)" >&2
  exit 3
fi
JAVA="${JAVA:-$(command -v java || echo /usr/lib/jvm/default-java/bin/java)}"
[[ -x "$JAVA" ]] || { echo "no java found (set JAVA=...)" >&2; exit 3; }

mkdir -p "$1"
W="$(cd "$1" && pwd -P)"
STATE="$W/ports.env"
case "$W" in *[[:space:]]*) echo "WORKDIR must not contain whitespace: $W" >&2; exit 2;; esac

SCHEME="${ACTIVEMQ_STOMP_SCHEME:-stomp+nio}"
case "$SCHEME" in stomp|stomp+nio) ;; *) echo "ACTIVEMQ_STOMP_SCHEME must be stomp or stomp+nio" >&2; exit 2;; esac
MAX_CONN="${ACTIVEMQ_MAX_CONNECTIONS:-20000}"
MAX_FRAME="${ACTIVEMQ_MAX_FRAME_BYTES:-104857600}"
EXTRA_OPTS="${ACTIVEMQ_CONNECTOR_OPTIONS:-}"
HEAP="${ACTIVEMQ_HEAP:-2g}"
MEM_LIMIT="${ACTIVEMQ_MEMORY_LIMIT:-512 mb}"
PERSISTENT="${ACTIVEMQ_PERSISTENT:-false}"
ADVISORY="${ACTIVEMQ_ADVISORY:-true}"
TIMEOUT="${ACTIVEMQ_START_TIMEOUT:-90}"
case "$PERSISTENT" in true|false) ;; *) echo "ACTIVEMQ_PERSISTENT must be true or false" >&2; exit 2;; esac
case "$ADVISORY" in true|false) ;; *) echo "ACTIVEMQ_ADVISORY must be true or false" >&2; exit 2;; esac

log() { echo "[start-activemq] $*" >&2; }

port_free() {
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

pick_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

stomp_ok() { /usr/bin/python3 "$HERE/stomp_probe.py" connect "tcp://127.0.0.1:$1" --timeout 5 -q; }

# alive AND our broker (the pid was not recycled by an unrelated process)
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null &&
    tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF "xbean:file:$W/conf/activemq.xml"
}

print_state() { cat "$STATE"; }

write_state() {
  cat > "$STATE.tmp" <<EOF
STOMP_PORT=$STOMP_PORT
STOMP_URL=tcp://127.0.0.1:$STOMP_PORT
PID=$1
WORKDIR=$W
EOF
  mv "$STATE.tmp" "$STATE"
}

# ---- reuse a running broker -------------------------------------------------------------------
if [[ -f "$STATE" ]]; then
  env_port="${STOMP_PORT:-}"   # an explicit STOMP_PORT in the environment wins over the recorded one
  # shellcheck disable=SC1090
  source "$STATE"
  if pid_alive "$PID" && stomp_ok "$STOMP_PORT" 2>/dev/null; then
    log "broker already running (pid $PID)"
    print_state
    exit 0
  fi
  if pid_alive "$PID"; then
    log "an unresponsive broker process $PID is still alive; stop it first with stop-activemq.sh"
    exit 4
  fi
  log "stale state in $W, restarting the broker"
  [[ -n "$env_port" ]] && STOMP_PORT="$env_port"
  if [[ -n "${STOMP_PORT:-}" ]] && ! port_free "$STOMP_PORT"; then unset STOMP_PORT; fi
fi
STOMP_PORT="${STOMP_PORT:-$(pick_port)}"

# ---- config ------------------------------------------------------------------------------------
mkdir -p "$W/conf" "$W/data" "$W/tmp" "$W/log"
conn_opts="maximumConnections=$MAX_CONN&amp;wireFormat.maxFrameSize=$MAX_FRAME"
if [[ -n "$EXTRA_OPTS" ]]; then conn_opts="$conn_opts&amp;${EXTRA_OPTS//&/"&amp;"}"; fi
if [[ "$PERSISTENT" == true ]]; then
  persistence="<persistenceAdapter><kahaDB directory=\"$W/data/kahadb\"/></persistenceAdapter>"
else
  persistence="<!-- persistent=false: no store -->"
fi
cat > "$W/conf/activemq.xml" <<EOF
<!-- generated by bench/brokers/start-activemq.sh: private benchmark broker, loopback only -->
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
       http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core"
          brokerName="bench" useJmx="false" persistent="$PERSISTENT" advisorySupport="$ADVISORY"
          schedulerSupport="false" dataDirectory="$W/data" tmpDataDirectory="$W/tmp">
    <destinationPolicy>
      <policyMap>
        <policyEntries>
          <policyEntry queue="&gt;" producerFlowControl="true"/>
          <policyEntry topic="&gt;" producerFlowControl="true"/>
        </policyEntries>
      </policyMap>
    </destinationPolicy>
    $persistence
    <systemUsage>
      <systemUsage sendFailIfNoSpace="false">
        <memoryUsage><memoryUsage limit="$MEM_LIMIT"/></memoryUsage>
        <storeUsage><storeUsage limit="2 gb"/></storeUsage>
        <tempUsage><tempUsage limit="2 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="$SCHEME://127.0.0.1:$STOMP_PORT?$conn_opts"/>
    </transportConnectors>
  </broker>
</beans>
EOF
# The Debian package logs through slf4j-log4j12 (log4j 1.2).
cat > "$W/conf/log4j.properties" <<EOF
log4j.rootLogger=INFO, logfile
log4j.logger.org.apache.activemq.spring=WARN
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.logfile=org.apache.log4j.RollingFileAppender
log4j.appender.logfile.file=$W/data/activemq.log
log4j.appender.logfile.maxFileSize=10MB
log4j.appender.logfile.maxBackupIndex=2
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
EOF

# ---- start -------------------------------------------------------------------------------------
JVM_OPTS=(
  "-Xmx$HEAP"
  -Djava.awt.headless=true
  -Dorg.apache.activemq.UseDedicatedTaskRunner=false
  "-Dlog4j.configuration=file:$W/conf/log4j.properties"
  --add-reads=java.xml=java.logging
  --add-opens java.base/java.security=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.naming/javax.naming.spi=ALL-UNNAMED
  --add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED
  --add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED
  --add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED
  --add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED
  --add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED
  "-Dactivemq.classpath=$W/conf:"
  "-Dactivemq.home=$AMQ_HOME"
  "-Dactivemq.base=$W"
  "-Dactivemq.conf=$W/conf"
  "-Dactivemq.data=$W/data"
  "-Djava.io.tmpdir=$W/tmp"
)
# shellcheck disable=SC2206
[[ -n "${ACTIVEMQ_JAVA_OPTS:-}" ]] && JVM_OPTS+=(${ACTIVEMQ_JAVA_OPTS})

rm -f "$W/activemq.pid"
write_state ""   # recorded before launch so stop-activemq.sh can also clean up a failed boot
log "starting ActiveMQ ($SCHEME://127.0.0.1:$STOMP_PORT, heap $HEAP, memoryUsage $MEM_LIMIT, persistent=$PERSISTENT, nofile $(ulimit -n))"
# setsid: own session, so a ^C in the caller's terminal reaches the caller (who stops us), not the JVM.
# sh records its own pid and execs java, so the pid file holds the java pid whether or not setsid forked.
# shellcheck disable=SC2016  # $$ and $@ belong to the inner sh
setsid /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$W/activemq.pid" \
  "$JAVA" "${JVM_OPTS[@]}" -jar "$AMQ_HOME/bin/activemq.jar" start "xbean:file:$W/conf/activemq.xml" \
  </dev/null >>"$W/log/console.log" 2>&1 &

deadline=$((SECONDS + TIMEOUT))
pid=""
while :; do
  [[ -z "$pid" && -s "$W/activemq.pid" ]] && { pid="$(cat "$W/activemq.pid")"; write_state "$pid"; }
  if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
    log "ActiveMQ exited during start; last log lines:"
    tail -n 30 "$W/log/console.log" >&2 || true
    tail -n 30 "$W/data/activemq.log" >&2 2>/dev/null || true
    exit 5
  fi
  if [[ -n "$pid" ]] && stomp_ok "$STOMP_PORT" 2>/dev/null; then
    break
  fi
  if (( SECONDS >= deadline )); then
    log "STOMP port $STOMP_PORT did not answer CONNECT within ${TIMEOUT}s; see $W/data/activemq.log and $W/log/console.log"
    exit 6
  fi
  sleep 0.5
done

write_state "$pid"
log "ActiveMQ is up (pid $pid)"
print_state
