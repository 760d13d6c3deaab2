// SPDX-License-Identifier: Apache-2.0

package nvcf

// #include <nvcf/common.h>
import "C"

// nvcfgoLog is the Go end of the C log trampoline (logbridge.c). A file
// with //export may only declare C functions, which is why the trampoline
// and its installer live elsewhere.
//
//export nvcfgoLog
func nvcfgoLog(level C.int, subsystem, message *C.char) {
	deliverLog(level, subsystem, message)
}
