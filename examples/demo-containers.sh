#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The demo behind `make demo-containers`: builds the busybox echo image
# (examples/functions/container/echo) offline into a private podman, starts
# `podman system service` on a socket, starts a local stack whose nvca runs
# container images there (`nvcf up --docker-socket`), deploys the image as
# a function and calls it through the gateway. The stack and the podman
# service keep running afterwards; the last lines say how to stop them.
#
# Podman here keeps its storage under STATE_DIR and its registries.conf
# blocks every registry, so nothing is pulled and no network is used.
#
# Environment: STATE_DIR (default ./state-containers), NVCF (the nvcf
# executable, default build/daemons/nvcf/nvcf).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NVCF=${NVCF:-$ROOT/build/daemons/nvcf/nvcf}
STATE=${STATE_DIR:-$ROOT/state-containers}
PY=/usr/bin/python3
TAG=localhost/nvcf-echo:demo
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n== %s\n' "$*"; }
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

missing=
for tool in podman runc; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
	echo "demo-containers: skipped, this machine lacks:$missing"
	echo "Install them (apt-get install podman runc busybox-static) and" \
		"run it again."
	exit 0
fi

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
PM=$STATE/podman
mkdir -p "$PM"
cat >"$PM/containers.conf" <<'EOT'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
EOT
{
	echo 'unqualified-search-registries = []'
	for r in localhost docker.io quay.io ghcr.io gcr.io nvcr.io; do
		printf '[[registry]]\nlocation = "%s"\nblocked = true\n' "$r"
	done
} >"$PM/registries.conf"
export CONTAINERS_CONF=$PM/containers.conf
export CONTAINERS_REGISTRIES_CONF=$PM/registries.conf
PODMAN_ARGS=(--root "$PM/root" --runroot "$PM/run" --storage-driver vfs)
SOCK=$PM/api.sock

step "build the echo image $TAG (busybox + examples/functions/container/echo)"
"$ROOT/tests/container/build-echo-image.sh" "$TAG" "${PODMAN_ARGS[@]}"
podman "${PODMAN_ARGS[@]}" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
	grep nvcf-echo

step "podman system service on $SOCK"
if [ -f "$PM/service.pid" ] && kill -0 "$(cat "$PM/service.pid")" 2>/dev/null
then
	echo "already running (pid $(cat "$PM/service.pid"))"
else
	rm -f "$SOCK"
	setsid podman "${PODMAN_ARGS[@]}" system service --time=0 \
		"unix://$SOCK" </dev/null >"$PM/service.log" 2>&1 &
	echo $! >"$PM/service.pid"
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && break
		sleep 0.1
	done
	[ -S "$SOCK" ] || {
		echo "podman system service did not start:" >&2
		cat "$PM/service.log" >&2
		exit 1
	}
	echo "started (pid $(cat "$PM/service.pid"))"
fi

step "nvcf up --state-dir $STATE --docker-socket $SOCK"
"$NVCF" up --state-dir "$STATE" --docker-socket "$SOCK"
# shellcheck disable=SC1091
. "$STATE/env"

step "create the function (image $TAG, inference port 8000)"
"$NVCF" function create --state-dir "$STATE" --raw --name echo-container \
	--image "$TAG" --inference-url /echo --health-uri /health \
	--description "busybox echo server in a container" \
	>"$WORK/function.json"
FID=$(json 'd["function"]["id"]' <"$WORK/function.json")
VID=$(json 'd["function"]["versionId"]' <"$WORK/function.json")
echo "function id $FID, version id $VID"

step "deploy it on one L40S (NCP.GPU.L40S_1x) and wait for ACTIVE"
"$NVCF" deploy create "$FID" "$VID" --state-dir "$STATE" --raw \
	--gpu L40S --instance-type NCP.GPU.L40S_1x --min 1 --max 1 \
	--concurrency 1 --wait --timeout 120 >/dev/null
podman "${PODMAN_ARGS[@]}" ps --filter "label=nvcf.function-id=$FID" \
	--format '{{.Names}}  {{.Image}}  {{.Ports}}  {{.Status}}'

step "invoke it through the gateway"
"$NVCF" invoke "$FID" --state-dir "$STATE" --raw \
	--data '{"hello": "from a container"}' >"$WORK/result.json"
"$PY" - "$WORK/result.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("the container saw %s %s with body %s" % (r["method"], r["path"],
                                                r["body"]))
for k, v in sorted(r["headers"].items()):
    print("  %s: %s" % (k, v))
PYEOF

step "the stack and podman keep running"
cat <<EOT
Call the function with curl:
  . $STATE/env
  curl -s -X POST "\$NVCF_INVOKE_URL/v2/nvcf/pexec/functions/$FID" \\
       -H "Authorization: Bearer \$NVCF_API_KEY" \\
       -H 'Content-Type: application/json' -d '{"x": 1}'
See the container:  CONTAINERS_CONF=$PM/containers.conf podman ${PODMAN_ARGS[*]} ps
Stop the stack:     $NVCF down --state-dir $STATE
Stop podman:        kill \$(cat $PM/service.pid)
EOT
