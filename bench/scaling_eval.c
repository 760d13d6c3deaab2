/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cost of one autoscaler tick: nvcf_scaling_evaluate() over 1,000
 * versions, each with its own history and its own load. The output is the
 * minimum, median and 99th percentile time of a full pass, and the time
 * of one evaluation.
 *
 *   scaling-eval-bench [passes]     (default 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nvcf/scaling.h"

#define VERSIONS 1000

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static nvcf_scaling_params params[VERSIONS];
	static nvcf_scaling_metrics metrics[VERSIONS];
	static nvcf_scaling_history *hist[VERSIONS];
	long passes = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	double *times;
	unsigned long long sum = 0;
	unsigned int seed = 12345;

	if (passes < 1)
		passes = 1;
	times = calloc((size_t)passes, sizeof(*times));
	if (times == NULL)
		return 1;
	for (int v = 0; v < VERSIONS; v++) {
		nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
		nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;

		/* Half of each policy; some with stickiness, some min 0. */
		p.policy = v % 2 ? NVCF_SCALING_UTILIZATION
				 : NVCF_SCALING_TARGET_TRACKING;
		p.min_instances = (uint32_t)(v % 3);
		p.max_instances = 4 + (uint32_t)(v % 60);
		p.max_request_concurrency = 1 + (uint32_t)(v % 16);
		p.sample_interval_ms = 1000;
		if (v % 4 == 1) {
			p.up_stickiness_window_ms = 5000;
			p.up_stickiness_required_ms = 3000;
		}
		params[v] = p;
		m.ready = 1 + (uint32_t)(v % 8);
		metrics[v] = m;
		if (nvcf_scaling_history_new(&hist[v]) != NVCF_OK)
			return 1;
	}
	for (long i = 0; i < passes; i++) {
		double t0;

		/* Varied load, changed outside the timed region. */
		for (int v = 0; v < VERSIONS; v++) {
			nvcf_scaling_metrics *m = &metrics[v];

			seed = seed * 1103515245u + 12345u;
			m->now_ms = i * 1000;
			m->queued = (seed >> 16) % 40;
			m->in_flight = (seed >> 8) % 20;
			if (m->queued + m->in_flight > 0 && (seed & 3) != 0)
				m->last_request_ms = m->now_ms;
			else
				m->queued = m->in_flight = 0;
		}
		t0 = now_ms();
		for (int v = 0; v < VERSIONS; v++) {
			nvcf_scaling_decision d;

			if (nvcf_scaling_evaluate(&params[v], &metrics[v],
						  hist[v], &d) != NVCF_OK) {
				fprintf(stderr, "version %d: %s\n", v,
					nvcf_error_last()->message);
				return 1;
			}
			sum += d.desired;
			metrics[v].ready = d.desired;
		}
		times[i] = now_ms() - t0;
	}
	qsort(times, (size_t)passes, sizeof(*times), cmp_double);
	printf("scaling-eval: %d versions x %ld passes: pass min %.3f ms, "
	       "median %.3f ms, p99 %.3f ms; %.0f ns per evaluation "
	       "(median) [checksum %llu]\n",
	       VERSIONS, passes, times[0], times[passes / 2],
	       times[(passes * 99) / 100 < passes ? (passes * 99) / 100
						    : passes - 1],
	       times[passes / 2] * 1e6 / VERSIONS, sum);
	for (int v = 0; v < VERSIONS; v++)
		nvcf_scaling_history_free(hist[v]);
	free(times);
	return 0;
}
