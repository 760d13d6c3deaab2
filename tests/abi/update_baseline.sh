#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Rewrites abi/libnvcf.abi from a fresh build of libnvcf.so.
#
# Run it only on purpose: when a release adds symbols, or when a release
# bumps the soname after a deliberate break (docs/ABI.md). The baseline is
# what every later build is compared with, so review `git diff abi/` before
# committing it.
#
# Usage: tests/abi/update_baseline.sh [BUILD_DIR]   (default: build)
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac

if [ ! -f "$build/build.ninja" ]; then
	echo "update_baseline.sh: $build is not a meson build directory;" \
	     "run 'meson setup $build' first" >&2
	exit 1
fi
# The real file (libnvcf.so.X.Y.Z); the libnvcf.so link is no ninja target.
target=$(ninja -C "$build" -t targets all |
	sed -n 's|^\(libnvcf/libnvcf\.so\.[0-9.]*\): c_LINKER$|\1|p')
if [ -z "$target" ]; then
	echo "update_baseline.sh: no libnvcf.so.* target in $build" >&2
	exit 1
fi
ninja -C "$build" "$target"
mkdir -p "$src/abi"
python3 "$src/tests/abi/abicheck.py" dump "$build/libnvcf/libnvcf.so" \
	"$src/include/nvcf" "$src/abi/libnvcf.abi"
count=$(grep -c "<elf-symbol " "$src/abi/libnvcf.abi" || true)
echo "wrote abi/libnvcf.abi ($count exported symbols) from" \
     "$build/libnvcf/libnvcf.so"
