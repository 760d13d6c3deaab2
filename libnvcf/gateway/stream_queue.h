/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The body bytes of one streamed response between the NATS thread that
 * receives its pieces and the libmicrohttpd thread that sends them. Pieces
 * must arrive with consecutive sequence numbers, and the bytes queued are
 * bounded, so a lost piece or a slow caller ends the stream instead of
 * reordering bytes or growing memory. Not thread-safe: the caller locks.
 */
#ifndef NVCF_GATEWAY_STREAM_QUEUE_H
#define NVCF_GATEWAY_STREAM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

typedef struct nvcf__stream_piece nvcf__stream_piece;

typedef struct nvcf__stream_queue {
	nvcf__stream_piece *head, *tail;
	size_t head_offset;  /* bytes of head already read */
	size_t buffered;     /* bytes queued and not read yet */
	size_t max_buffered;
	uint64_t next_seq;   /* sequence number the next piece must carry */
	uint64_t total_in;   /* bytes ever queued */
} nvcf__stream_queue;

/* Starts an empty queue whose first piece must carry @p first_seq. */
void nvcf__stream_queue_init(nvcf__stream_queue *q, uint64_t first_seq,
			     size_t max_buffered);

/*
 * Appends a piece of @p len bytes; an empty piece only advances the
 * sequence. Returns NVCF_EPROTO when @p seq is not the expected one (a
 * lost, repeated or reordered piece) and NVCF_EQUOTA when the queue would
 * exceed its maximum. On any error the queue stays unchanged.
 */
nvcf_status nvcf__stream_queue_push(nvcf__stream_queue *q, uint64_t seq,
				    const void *data, size_t len);

/* Moves up to @p max queued bytes into @p buf in order; returns how many. */
size_t nvcf__stream_queue_read(nvcf__stream_queue *q, void *buf, size_t max);

/* Drops every queued byte; the sequence is kept. */
void nvcf__stream_queue_clear(nvcf__stream_queue *q);

#endif /* NVCF_GATEWAY_STREAM_QUEUE_H */
