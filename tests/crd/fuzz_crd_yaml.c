/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the YAML decoders and encoders of nvcf/crd.h. */
#include "fuzz_crd_common.h"

FUZZ_CRD_TARGET(from_yaml, to_yaml)
