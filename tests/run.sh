#!/usr/bin/env bash
# Runs every test of StompBroker. Idempotent: on a fresh Debian machine (as root) it first installs what is
# missing, then runs `dotnet test` on the whole solution, runs the broker's tests a second time on the io_uring transport,
# prints a summary and exits non-zero on any failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '\n==> %s\n' "$*"; }

# --- System packages ------------------------------------------------------------------------------
# Each entry: a command or file that proves the package is there, and the Debian package that provides it.
apt_needed=()
need_apt() { # need_apt <probe> <package>
  if [[ "$1" == /* ]]; then [[ -e "$1" ]] || apt_needed+=("$2"); else command -v "$1" >/dev/null 2>&1 || apt_needed+=("$2"); fi
}
need_apt /usr/bin/python3 python3
need_apt /usr/lib/python3/dist-packages/stomp python3-stomp      # stomp.py interop (system python)
need_apt /usr/lib/rabbitmq/bin/rabbitmq-server rabbitmq-server   # RabbitMQ backend tests (private node)
need_apt node nodejs
need_apt npm npm
need_apt /usr/bin/chromium chromium
need_apt /usr/sbin/nginx nginx                                   # docker/nginx.conf in the cluster tests

if ((${#apt_needed[@]})); then
  log "Installing Debian packages: ${apt_needed[*]}"
  if [[ $(id -u) -ne 0 ]]; then echo "run as root to install: ${apt_needed[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  # Keep apt from starting the system RabbitMQ (it would take 5672/61613/15674); tests run private nodes.
  policy_created=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_created=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
fi

# The system RabbitMQ node, if a package install started one, must not hold the ports or the cookie.
if [[ $(id -u) -eq 0 && -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
  if [[ -s /var/run/rabbitmq/pid ]] && kill -0 "$(cat /var/run/rabbitmq/pid)" 2>/dev/null; then
    log "Stopping the system rabbitmq-server"
    service rabbitmq-server stop >/dev/null 2>&1 || true
  fi
  update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
fi

# --- npm packages (interop tests), exactly as the lock file pins them ------------------------------
if [[ -f tests/interop/package-lock.json ]]; then
  if [[ ! -f tests/interop/node_modules/.package-lock.json ]] || [[ tests/interop/package-lock.json -nt tests/interop/node_modules/.package-lock.json ]]; then
    log "Installing npm packages from tests/interop/package-lock.json"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

# --- Tests -----------------------------------------------------------------------------------------
log "dotnet test StompBroker.sln"
results="$repo/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
set +e
dotnet test StompBroker.sln --configuration Release \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" 2>&1 | tee "$results/console.log" \
  | grep -Ev '^\s*(Passed|Skipped) ' 
status=${PIPESTATUS[0]}
set -e

# --- Second pass: the broker's tests again on the io_uring transport --------------------------------
# A client must see the same broker on either transport, so the tests that start a broker run again with
# Broker__Transport=IoUring (the broker reads it from the environment; a test's own settings still win). The RabbitMQ
# backend, cluster and load-tool tests do not depend on the transport and are not repeated.
if [[ "$(uname -s)" == Linux ]]; then
  log "dotnet test tests/Broker.Tests on the io_uring transport"
  set +e
  Broker__Transport=IoUring dotnet test tests/Broker.Tests/Broker.Tests.csproj --configuration Release --no-build \
    --filter "FullyQualifiedName!~Broker.Tests.RabbitMq&FullyQualifiedName!~Broker.Tests.Cluster&FullyQualifiedName!~Broker.Tests.LoadTool" \
    --logger "trx;LogFileName=io_uring-pass.trx" --logger "console;verbosity=normal" --results-directory "$results" 2>&1 \
    | tee -a "$results/console.log" | grep -Ev '^\s*(Passed|Skipped) '
  ((PIPESTATUS[0] == 0)) || status=1
  set -e
fi

# --- Summary: totals across every test project's TRX file ------------------------------------------
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); passed=$((passed + ${p:-0}))
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters"); failed=$((failed + ${f:-0}))
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
  e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$counters"); skipped=$((skipped + ${t:-0} - ${e:-0}))
done

echo
echo "Test results: $results"
if ((passed + failed == 0)); then
  echo "no tests ran"
  exit 1
fi
echo "$passed passed, $failed failed, $skipped skipped (both passes)"
if ((status != 0 || failed != 0)); then
  exit 1
fi
