// SPDX-License-Identifier: Apache-2.0

//go:build !nvcf_pkgconfig

package nvcf

// The library comes from CGO_CFLAGS and CGO_LDFLAGS, or from the default
// search paths; see the package documentation.

// #cgo LDFLAGS: -lnvcf
import "C"
