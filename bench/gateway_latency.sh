#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Latency the gateway adds: the C echo function (examples/functions/echo-c)
# called directly on its port, then through nvcf-invocation (pexec, with
# Authorization), with the same load generator (wrk), the same body and
# the same number of connections. Prints p50/p90/p99 and throughput of both
# and the difference. It reports; it does not fail on a slow result.
#
# Environment: BUILD (default build), DURATION (per run, default 10s),
# CONNECTIONS (default "1 32"), CONCURRENCY (maxRequestConcurrency of the
# deployment, default 64), INSTANCES (default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
NVCF=$BUILD/daemons/nvcf/nvcf
ECHO=$BUILD/examples/echo-c
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-1 32}
CONCURRENCY=${CONCURRENCY:-64}
INSTANCES=${INSTANCES:-1}

for f in "$NVCF" "$ECHO"; do
	[ -x "$f" ] || { echo "bench: $f is missing: run make build" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }

STATE=$(mktemp -d /tmp/nvcf-bench.XXXXXX)
DIRECT_PID=
cleanup() {
	[ -n "$DIRECT_PID" ] && kill "$DIRECT_PID" 2>/dev/null || true
	"$NVCF" down --state-dir "$STATE" >/dev/null 2>&1 || true
	rm -rf "$STATE"
}
trap cleanup EXIT

echo "bench: starting a stack in $STATE" >&2
"$NVCF" up --state-dir "$STATE" >/dev/null
# shellcheck disable=SC1091
. "$STATE/env"

FID_VID=$("$NVCF" function create --state-dir "$STATE" --raw --name echo-c \
	--image "file://$ECHO" --inference-url /echo --health-uri /health |
	/usr/bin/python3 -c 'import json,sys; f=json.load(sys.stdin)["function"]; print(f["id"], f["versionId"])')
read -r FID VID <<<"$FID_VID"
"$NVCF" deploy create "$FID" "$VID" --state-dir "$STATE" --gpu L40S \
	--instance-type NCP.GPU.L40S_1x --min "$INSTANCES" --max "$INSTANCES" \
	--concurrency "$CONCURRENCY" --wait --timeout 60 >/dev/null

# The direct baseline: the same executable on a port of its own.
DIRECT_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$DIRECT_PORT "$ECHO" 2>/dev/null &
DIRECT_PID=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$DIRECT_PORT/health" >/dev/null && break
	sleep 0.05
done

BODY='{"input":"0123456789abcdef0123456789abcdef0123456789abcdef"}'
cat >"$STATE/direct.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$STATE/gateway.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $NVCF_API_KEY"
LUA
DIRECT_URL="http://127.0.0.1:$DIRECT_PORT/echo"
GATEWAY_URL="$NVCF_INVOKE_URL/v2/nvcf/pexec/functions/$FID"

# Both paths must return the body before anything is measured.
for url in "$DIRECT_URL" "$GATEWAY_URL"; do
	got=$(curl -sf -X POST -H "Authorization: Bearer $NVCF_API_KEY" \
		-H 'Content-Type: application/json' -d "$BODY" "$url")
	[ "$got" = "$BODY" ] || { echo "bench: $url returned '$got' instead of the request body" >&2; exit 1; }
done

# Runs wrk and prints "p50 p90 p99 rps errors" (latencies in ms).
measure() { # script url connections
	local threads=$(($3 < 2 ? 1 : 2))
	wrk -t"$threads" -c"$3" -d"$DURATION" --latency -s "$1" "$2" |
		/usr/bin/python3 -c '
import re, sys
text = sys.stdin.read()
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
def pct(p):
    m = re.search(r"^\s+%s%%\s+([0-9.]+)(us|ms|s)\s*$" % p, text, re.M)
    return float(m.group(1)) * unit[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = int(m.group(1)) if m else 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
              r"timeout (\d+)", text)
errors += sum(map(int, m.groups())) if m else 0
print("%.3f %.3f %.3f %.0f %d" % (pct(50), pct(90), pct(99), rps, errors))
'
}

wrk -t1 -c1 -d2s -s "$STATE/gateway.lua" "$GATEWAY_URL" >/dev/null # warm-up
printf '%-6s %-8s %9s %9s %9s %10s %7s\n' conns path p50_ms p90_ms p99_ms \
	req/s errors
for c in $CONNECTIONS; do
	read -r d50 d90 d99 drps derr < <(measure "$STATE/direct.lua" "$DIRECT_URL" "$c")
	read -r g50 g90 g99 grps gerr < <(measure "$STATE/gateway.lua" "$GATEWAY_URL" "$c")
	printf '%-6s %-8s %9s %9s %9s %10s %7s\n' "$c" direct "$d50" "$d90" \
		"$d99" "$drps" "$derr"
	printf '%-6s %-8s %9s %9s %9s %10s %7s\n' "$c" gateway "$g50" "$g90" \
		"$g99" "$grps" "$gerr"
	/usr/bin/python3 -c '
import sys
c, d50, d99, g50, g99 = sys.argv[1], *map(float, sys.argv[2:])
a50, a99 = g50 - d50, g99 - d99
print("%-6s added    p50 %+.3f ms (target <= 0.5: %s)  p99 %+.3f ms "
      "(target <= 2: %s)" % (c, a50, "met" if a50 <= 0.5 else "MISSED",
                             a99, "met" if a99 <= 2 else "MISSED"))
' "$c" "$d50" "$d99" "$g50" "$g99"
done
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
