/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/nvcf.h
 * @brief Includes every public header of libnvcf.
 */
#ifndef NVCF_NVCF_H
#define NVCF_NVCF_H

#include "common.h"
#include "version.h"
#include "bus.h"
#include "request.h"
#include "routing.h"
#include "crd.h"
#include "scaling.h"
#include "api.h"
#include "gateway.h"
#include "autoscaler.h"
#include "agent.h"
#include "worker.h"

#endif /* NVCF_NVCF_H */
