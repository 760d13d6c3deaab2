// SPDX-License-Identifier: Apache-2.0

// Package nvcf is the Go binding of libnvcf, a serverless GPU function
// platform in the shape of NVIDIA Cloud Functions.
//
// Through cgo it wraps the pure parts of the C library: status codes and
// error details, the version, request rules, the scaling policy, cluster
// routing, the compute plane's custom resources (ICMSRequest, MiniService,
// NVCFBackend), the log handler and a small NATS bus handle. It also has HTTP
// clients of the REST API and the invocation gateway, and
// StartLocalStack, which runs a whole local stack with `nvcf up`.
//
// # Finding the C library
//
// By default the package links with -lnvcf and includes <nvcf/...>
// headers, so an installed libnvcf in the compiler's default paths
// (/usr/local or /usr) needs no settings at all. A meson build tree, or a
// library installed somewhere else, is named through the standard cgo
// variables:
//
//	CGO_CFLAGS="-I/path/to/libnvcf/include" \
//	CGO_LDFLAGS="-L/path/to/build/libnvcf -Wl,-rpath,/path/to/build/libnvcf" \
//	go test ./...
//
// With the build tag nvcf_pkgconfig the flags come from
// `pkg-config libnvcf` instead, which suits an install under a prefix:
//
//	PKG_CONFIG_PATH=/opt/nvcf/lib/pkgconfig go build -tags nvcf_pkgconfig
//
// The libnvcf.pc file carries no run-time search path, so such a program
// also needs LD_LIBRARY_PATH, or -Wl,-rpath in CGO_LDFLAGS, unless the
// prefix is one the dynamic loader searches.
//
// # Errors
//
// Every C call that fails returns an *Error carrying the nvcf_status, its
// constant name and the one-line message the library left for the calling
// thread. Match the kind with errors.Is against the exported values:
//
//	if errors.Is(err, nvcf.ErrNotFound) { ... }
//
// HTTP failures of the clients are *HTTPError values with the RFC 7807
// problem fields; they match the same values by status code (404 is
// ErrNotFound, 429 ErrQuota, and so on).
//
// # Memory
//
// Handles (History, Inventory, Bus and the custom resources) own C
// memory. Call Close when done; a finalizer frees a forgotten handle only
// as a safety net. Every value a method returns is a Go copy that stays
// valid after Close.
package nvcf
