#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The demo behind `make demo`: starts a local stack, deploys the digits
# classifier (examples/functions/digits/server.py) as a function, calls it
# through the gateway with held-out test images, then shows one slow call
# answered 202 and fetched by polling. The stack keeps running afterwards.
#
# Environment: STATE_DIR (default ./state), NVCF (the nvcf executable,
# default build/daemons/nvcf/nvcf), SAMPLES (images to classify, default 20).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NVCF=${NVCF:-$ROOT/build/daemons/nvcf/nvcf}
STATE=${STATE_DIR:-$ROOT/state}
SAMPLES=${SAMPLES:-20}
PY=/usr/bin/python3
SERVER=$ROOT/examples/functions/digits/server.py
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n== %s\n' "$*"; }
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step "nvcf up --state-dir $STATE"
"$NVCF" up --state-dir "$STATE"
# shellcheck disable=SC1091
. "$STATE/env"

step "create the function (image file://$SERVER)"
"$NVCF" function create --state-dir "$STATE" --raw --name digits \
	--image "file://$SERVER" --inference-url /predict \
	--health-uri /v2/health/ready \
	--description "scikit-learn SVC on the 8x8 digits data set" \
	>"$WORK/function.json"
FID=$(json 'd["function"]["id"]' <"$WORK/function.json")
VID=$(json 'd["function"]["versionId"]' <"$WORK/function.json")
echo "function id $FID, version id $VID"

step "deploy it on one L40S (NCP.GPU.L40S_1x, min 1, max 1) and wait for ACTIVE"
"$NVCF" deploy create "$FID" "$VID" --state-dir "$STATE" --raw \
	--gpu L40S --instance-type NCP.GPU.L40S_1x --min 1 --max 1 \
	--concurrency 4 --wait --timeout 120 >/dev/null

step "classify $SAMPLES held-out test images through the gateway"
"$SERVER" --samples "$SAMPLES" >"$WORK/samples.json"
json 'json.dumps({"samples": d["samples"]})' <"$WORK/samples.json" \
	>"$WORK/request.json"
"$NVCF" invoke "$FID" --state-dir "$STATE" --raw \
	--data-file "$WORK/request.json" >"$WORK/result.json"
"$PY" - "$WORK/samples.json" "$WORK/result.json" <<'PYEOF'
import json, sys
labels = json.load(open(sys.argv[1]))["labels"]
result = json.load(open(sys.argv[2]))
preds = result["predictions"]
print("model: %(estimator)s, trained on %(trainSamples)d images" %
      result["model"])
print("image  label  prediction")
for i, (y, p) in enumerate(zip(labels, preds)):
    print("%5d  %5d  %10d  %s" % (i, y, p, "" if y == p else "<- wrong"))
right = sum(1 for y, p in zip(labels, preds) if y == p)
print("accuracy: %.4f (%d of %d)" % (right / len(labels), right,
                                      len(labels)))
PYEOF

step "a slow call (delaySeconds 3) with NVCF-POLL-SECONDS 1: 202, then polling"
"$NVCF" invoke "$FID" --state-dir "$STATE" --raw --poll-seconds 1 \
	--data "$(json 'json.dumps({"samples": d["samples"][:1], "delaySeconds": 3})' \
		<"$WORK/samples.json")" >"$WORK/slow.json"
echo "polled result: predictions $(json 'd["predictions"]' <"$WORK/slow.json")"

step "the stack keeps running"
cat <<EOT
Call the function with curl:
  . $STATE/env
  curl -s -X POST "\$NVCF_INVOKE_URL/v2/nvcf/pexec/functions/$FID" \\
       -H "Authorization: Bearer \$NVCF_API_KEY" \\
       -H 'Content-Type: application/json' \\
       -d '{"samples": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}'
List functions:  $NVCF function list --state-dir $STATE
Stop the stack:  $NVCF down --state-dir $STATE
EOT
