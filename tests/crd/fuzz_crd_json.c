/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the JSON decoders and encoders of nvcf/crd.h. */
#include "fuzz_crd_common.h"

FUZZ_CRD_TARGET(from_json, to_json)
