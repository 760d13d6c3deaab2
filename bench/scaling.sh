#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The two scaling figures of one run: the policy's evaluation time for
# 1,000 deployed versions (target: one pass under 10 ms) and the time from
# a request arriving at a version with zero instances to its instance
# process being started (target: under 50 ms). It reports; it does not
# fail on a slow result.
#
# Environment: BUILD (default build), ROUNDS (scale-from-zero rounds,
# default 10).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}

"$BUILD/tests/scaling/scaling-eval-bench"
NVCF_BUILD_DIR=$BUILD /usr/bin/python3 "$ROOT/bench/scale_from_zero.py" \
	"${ROUNDS:-10}"
