/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container runtime: a client of the Docker Engine API (version 1.41) over
 * a unix socket, which Docker and `podman system service` both serve.
 *
 * Every call is a blocking HTTP request on a fresh connection, so one
 * client may be shared by several threads once curl_global_init() has run
 * (the daemons call it in main()). Failures return a negative status and
 * record, through nvcf__error_set_ext(), the HTTP status and a message that
 * names the operation, the object, the status and the engine's own words,
 * e.g. "creating container for image localhost/echo:1: 404 no such image".
 *
 * Status mapping: engine unreachable NVCF_EUNAVAILABLE, 400 NVCF_EINVAL,
 * 404 NVCF_ENOTFOUND, 409 NVCF_ECONFLICT (also podman's 500 for the same
 * cases: "container state improper", "name is already in use"), anything
 * else NVCF_EIO, a body that is not the expected JSON NVCF_EPROTO.
 */
#ifndef NVCF_RUNTIME_DOCKER_H
#define NVCF_RUNTIME_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

/* Prefix of every request path; podman 4.3 serves 1.41 (and 1.24 up). */
#define NVCF__DOCKER_API "/v1.41"

typedef struct nvcf__docker nvcf__docker;

/*
 * Creates a client for the engine listening on @p socket_path. Nothing is
 * contacted yet; use nvcf__docker_ping() to check the engine is there.
 * NVCF_EINVAL for an empty path, NVCF_ENOMEM.
 */
nvcf_status nvcf__docker_new(nvcf__docker **out, const char *socket_path);

/* Releases @p c; NULL is allowed. */
void nvcf__docker_free(nvcf__docker *c);

/*
 * Sets the limit of one request in milliseconds (default 60000). Stopping
 * a container adds its own grace period on top.
 */
void nvcf__docker_set_timeout(nvcf__docker *c, long timeout_ms);

/* Sends GET /_ping. NVCF_EUNAVAILABLE when no engine listens there. */
nvcf_status nvcf__docker_ping(nvcf__docker *c);

/* ---- images ------------------------------------------------------------ */

/*
 * Looks @p image up locally. Sets *id_out (may be NULL) to the image id,
 * released with free(). NVCF_ENOTFOUND when the engine does not have it.
 */
nvcf_status nvcf__docker_image_inspect(nvcf__docker *c, const char *image,
				       char **id_out);

/* Sets *exists; a missing image is not an error here. */
nvcf_status nvcf__docker_image_exists(nvcf__docker *c, const char *image,
				      bool *exists);

/*
 * Makes sure @p image is present: inspects it and, when missing, requests
 * one pull from the engine (POST /images/create) and inspects again. When
 * it is still missing the result is NVCF_ENOTFOUND with a message saying the
 * image is not present and that pulling it failed, with the engine's
 * reason (no registry reachable, blocked, unknown name).
 */
nvcf_status nvcf__docker_image_ensure(nvcf__docker *c, const char *image,
				      char **id_out);

/* ---- containers -------------------------------------------------------- */

typedef struct nvcf__docker_kv {
	const char *key;
	const char *value;
} nvcf__docker_kv;

typedef struct nvcf__docker_create_opts {
	unsigned int version;
	/* Container name; NULL lets the engine choose one. */
	const char *name;
	/* Image reference, required. */
	const char *image;
	/* Command words; NULL keeps the image's CMD. */
	const char *const *cmd;
	size_t cmd_count;
	/* Entrypoint words; NULL keeps the image's ENTRYPOINT. */
	const char *const *entrypoint;
	size_t entrypoint_count;
	const nvcf__docker_kv *env;
	size_t env_count;
	const nvcf__docker_kv *labels;
	size_t labels_count;
	/*
	 * TCP port inside the container to publish, 0 for none. It is
	 * published on host_ip (default 127.0.0.1) at host_port, or at a
	 * port the engine picks when host_port is 0; read the result with
	 * nvcf__docker_inspect().
	 */
	unsigned int container_port;
	unsigned int host_port;
	const char *host_ip;
	/*
	 * GPU device ids ("0", "3") sent as one DeviceRequests entry with
	 * driver "nvidia" and capability "gpu". Podman 4.3 accepts the field
	 * and ignores it (it wants CDI devices instead), so the ids also go
	 * into NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES when the
	 * caller did not set those.
	 */
	const char *const *gpu_ids;
	size_t gpu_count;
	/* "no" (default), "always", "on-failure" or "unless-stopped". */
	const char *restart_policy;
	/* Memory limit in bytes, 0 for none. */
	int64_t memory_bytes;
	/* Run a tiny init as PID 1 so signals reach the function. */
	bool init;
} nvcf__docker_create_opts;

#define NVCF__DOCKER_CREATE_OPTS_VERSION 1
#define NVCF__DOCKER_CREATE_OPTS_INIT                                         \
	{                                                                     \
		.version = NVCF__DOCKER_CREATE_OPTS_VERSION                   \
	}

/*
 * Creates (does not start) a container. Sets *id_out to its id, released
 * with free(). NVCF_ENOTFOUND when the image is missing (nothing is
 * pulled here; see nvcf__docker_image_ensure()), NVCF_ECONFLICT when the
 * name is taken, NVCF_EINVAL for bad options.
 */
nvcf_status nvcf__docker_create(nvcf__docker *c,
				const nvcf__docker_create_opts *opts,
				char **id_out);

/* Starts a created or exited container; starting a running one is OK. */
nvcf_status nvcf__docker_start(nvcf__docker *c, const char *id);

/*
 * Stops a container: SIGTERM, then SIGKILL after @p timeout_s seconds.
 * Stopping one that is not running is OK.
 */
nvcf_status nvcf__docker_stop(nvcf__docker *c, const char *id,
			      unsigned int timeout_s);

/* Sends @p signal ("SIGKILL" when NULL). NVCF_ECONFLICT if not running. */
nvcf_status nvcf__docker_kill(nvcf__docker *c, const char *id,
			      const char *signal);

/*
 * Removes a container, killing it first when it runs, with its anonymous
 * volumes. NVCF_ENOTFOUND when it does not exist.
 */
nvcf_status nvcf__docker_remove(nvcf__docker *c, const char *id);

typedef enum nvcf__docker_status {
	NVCF__DOCKER_UNKNOWN = 0,
	NVCF__DOCKER_CREATED,
	NVCF__DOCKER_RUNNING,
	NVCF__DOCKER_PAUSED,
	NVCF__DOCKER_RESTARTING,
	NVCF__DOCKER_REMOVING,
	/* Exited, and podman's "stopped" (between policy restarts). */
	NVCF__DOCKER_EXITED,
	NVCF__DOCKER_DEAD
} nvcf__docker_status;

typedef enum nvcf__docker_health {
	NVCF__DOCKER_HEALTH_NONE = 0, /* the image defines no check */
	NVCF__DOCKER_HEALTH_STARTING,
	NVCF__DOCKER_HEALTH_HEALTHY,
	NVCF__DOCKER_HEALTH_UNHEALTHY
} nvcf__docker_health;

typedef struct nvcf__docker_state {
	char *id;
	char *name;  /* without the leading '/' */
	char *image; /* as the container was created with */
	nvcf__docker_status status;
	int exit_code;
	bool oom_killed;
	int pid;
	unsigned int restart_count;
	nvcf__docker_health health;
	char *error;       /* the engine's State.Error, "" when none */
	char *started_at;  /* RFC 3339 as the engine gives it, or "" */
	char *finished_at; /* same; changes with every exit */
	/* Host port the container port is published at, 0 when none. */
	unsigned int host_port;
} nvcf__docker_state;

/* Lower-case name of @p status ("running", "exited"). */
const char *nvcf__docker_status_name(nvcf__docker_status status);

/*
 * Inspects container @p id (id or name) into @p out, which the caller
 * releases with nvcf__docker_state_clear(). host_port is the one published
 * for @p container_port, or for the first published port when 0.
 * NVCF_ENOTFOUND when the container does not exist.
 */
nvcf_status nvcf__docker_inspect(nvcf__docker *c, const char *id,
				 unsigned int container_port,
				 nvcf__docker_state *out);

/* Releases the strings of @p state and zeroes it; NULL is allowed. */
void nvcf__docker_state_clear(nvcf__docker_state *state);

/*
 * Returns the last @p tail lines (all when 0) of stdout and stderr,
 * interleaved as written, in *out (NUL-terminated, released with free())
 * and *len_out (may be NULL). The 8-byte frame headers of a multiplexed
 * stream are removed.
 */
nvcf_status nvcf__docker_logs(nvcf__docker *c, const char *id,
			      unsigned int tail, char **out, size_t *len_out);

/*
 * Lists containers, running or not, that carry label @p key (any value
 * when @p value is NULL, else exactly @p value). Fills *out with *count
 * states in which id, name, image and status are set; released with
 * nvcf__docker_list_free().
 */
nvcf_status nvcf__docker_list(nvcf__docker *c, const char *key,
			      const char *value, nvcf__docker_state **out,
			      size_t *count);

void nvcf__docker_list_free(nvcf__docker_state *list, size_t count);

/*
 * Removes, in place, the frame headers of a multiplexed log stream and
 * returns the new length. @p data counts as multiplexed only when every
 * frame has stream 0, 1 or 2, three zero bytes and a length that fits, so
 * plain text (a TTY container's log) stays as it is.
 */
size_t nvcf__docker_demux(char *data, size_t len);

#endif /* NVCF_RUNTIME_DOCKER_H */
