/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "gateway/stream_queue.h"

struct nvcf__stream_piece {
	nvcf__stream_piece *next;
	size_t len;
	char data[];
};

void nvcf__stream_queue_init(nvcf__stream_queue *q, uint64_t first_seq,
			     size_t max_buffered)
{
	memset(q, 0, sizeof(*q));
	q->next_seq = first_seq;
	q->max_buffered = max_buffered;
}

nvcf_status nvcf__stream_queue_push(nvcf__stream_queue *q, uint64_t seq,
				    const void *data, size_t len)
{
	nvcf__stream_piece *piece;

	if (seq != q->next_seq)
		return nvcf__error_set(NVCF_EPROTO,
				       "stream piece %llu arrived where piece "
				       "%llu was expected",
				       (unsigned long long)seq,
				       (unsigned long long)q->next_seq);
	if (len > q->max_buffered - q->buffered)
		return nvcf__error_set(NVCF_EQUOTA,
				       "caller reads too slowly: %zu bytes "
				       "queued, %zu more would exceed the "
				       "limit of %zu bytes",
				       q->buffered, len, q->max_buffered);
	if (len > 0) {
		piece = malloc(sizeof(*piece) + len);
		if (piece == NULL)
			return nvcf__error_oom();
		piece->next = NULL;
		piece->len = len;
		memcpy(piece->data, data, len);
		if (q->tail != NULL)
			q->tail->next = piece;
		else
			q->head = piece;
		q->tail = piece;
		q->buffered += len;
		q->total_in += len;
	}
	q->next_seq++;
	return NVCF_OK;
}

size_t nvcf__stream_queue_read(nvcf__stream_queue *q, void *buf, size_t max)
{
	char *out = buf;
	size_t done = 0;

	while (done < max && q->head != NULL) {
		nvcf__stream_piece *piece = q->head;
		size_t left = piece->len - q->head_offset;
		size_t n = left < max - done ? left : max - done;

		memcpy(out + done, piece->data + q->head_offset, n);
		done += n;
		q->head_offset += n;
		if (q->head_offset == piece->len) {
			q->head = piece->next;
			if (q->head == NULL)
				q->tail = NULL;
			q->head_offset = 0;
			free(piece);
		}
	}
	q->buffered -= done;
	return done;
}

void nvcf__stream_queue_clear(nvcf__stream_queue *q)
{
	while (q->head != NULL) {
		nvcf__stream_piece *piece = q->head;

		q->head = piece->next;
		free(piece);
	}
	q->tail = NULL;
	q->head_offset = 0;
	q->buffered = 0;
}
