// SPDX-License-Identifier: Apache-2.0

//go:build nvcf_pkgconfig

package nvcf

// #cgo pkg-config: libnvcf
import "C"
