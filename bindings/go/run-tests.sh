#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the Go binding's tests against this build: meson sets CGO_CFLAGS,
# CGO_LDFLAGS, GOCACHE and the rest (see meson.build). Exit status 77
# marks the test as skipped for meson.
if ! command -v go >/dev/null 2>&1; then
	echo "go is not installed: skipping the Go binding tests"
	exit 77
fi
cd "$(dirname "$0")" || exit 1
mkdir -p "$GOCACHE" "$GOPATH" "$GOTMPDIR" || exit 1
go version || exit 1
# The pkg-config form of the cgo flags must keep linking too.
if command -v pkg-config >/dev/null 2>&1 &&
   PKG_CONFIG_PATH="$NVCF_PKGCONFIG_DIR" pkg-config --exists libnvcf; then
	PKG_CONFIG_PATH="$NVCF_PKGCONFIG_DIR" go test -count=1 \
		-tags nvcf_pkgconfig -run '^TestVersion$' . || exit 1
fi
exec go test -count=1 -timeout 240s "$@" .
