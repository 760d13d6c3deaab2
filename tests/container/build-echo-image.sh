#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Builds the echo test image offline: a root file system holding only a
# static busybox and examples/functions/container/echo, packed with tar
# and loaded with `podman import`, because no registry is reachable.
#
# usage: build-echo-image.sh TAG [PODMAN-ARGS...]
#   PODMAN-ARGS go before `import`, e.g. --root DIR/root --runroot DIR/run
# Needs /bin/busybox (package busybox-static) and podman.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 TAG [PODMAN-ARGS...]" >&2
	exit 2
fi
tag=$1
shift

here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../examples/functions/container/echo
busybox=${BUSYBOX:-/bin/busybox}
if ! "$busybox" --list >/dev/null 2>&1; then
	echo "$0: $busybox is not a working busybox; install busybox-static" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nvcf-echo-image.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

root=$work/rootfs
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/echo" "$root/proc" \
	"$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
cp "$src/start.sh" "$src/handler.sh" "$root/echo/"
chmod 755 "$root/echo/start.sh" "$root/echo/handler.sh"

tar -C "$root" -cf "$work/rootfs.tar" .
podman "$@" import --quiet \
	--change 'CMD ["/echo/start.sh"]' \
	--change 'ENV PATH=/bin' \
	--change 'EXPOSE 8000' \
	"$work/rootfs.tar" "$tag" >/dev/null
