/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf up / down / status: a whole local stack (nats-server, nvcf-api,
 * nvcf-invocation, nvca, nvcf-autoscaler) as detached processes that
 * outlive this command.
 * Everything the stack needs to be found again lives in the state
 * directory: one pid file, port file and log per process, and DIR/env.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth/keys.h"
#include "cli.h"
#include "nvcf/bus.h"

#ifndef NVCF_SOURCE_DIR
#define NVCF_SOURCE_DIR "."
#endif

#define START_TIMEOUT_S 30.0
#define STOP_TIMEOUT_S 10.0
#define ADMIN_ACCOUNT "local-admin"

enum { P_NATS, P_API, P_GATEWAY, P_NVCA, P_AUTOSCALER, P_COUNT };

/* Process names: file names in the state directory and executables. */
static const char *const proc_names[P_COUNT] = {
	"nats", "nvcf-api", "nvcf-invocation", "nvca", "nvcf-autoscaler"};

typedef struct up_opts {
	char dir[PATH_MAX];
	const char *backend;
	const char *log_level;
	long nats_port;
	const char *docker_socket; /* handed to nvca */
} up_opts;

static void state_path(char *out, size_t n, const char *dir,
		       const char *name, const char *suffix)
{
	cli_fmt(out, n, "%s/%s%s", dir, name, suffix);
}

static long read_long_file(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");
	long v = -1;
	char *end;

	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		v = strtol(buf, &end, 10);
		if (end == buf || v <= 0)
			v = -1;
	}
	fclose(f);
	return v;
}

static bool write_text_file(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 16];
	int fd;
	size_t len = strlen(text);

	cli_fmt(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return false;
	if (write(fd, text, len) != (ssize_t)len || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		unlink(tmp);
		return false;
	}
	return true;
}

/*
 * True while @p pid exists and is not a zombie: a stack started by an
 * earlier `nvcf up` is reparented to whatever reaps orphans, which in a
 * container may never do so.
 */
static bool pid_alive(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *rp;

	if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
		return false;
	cli_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	rp = strrchr(buf, ')');
	return !(rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static pid_t read_pid(const char *dir, int p)
{
	char path[PATH_MAX];

	state_path(path, sizeof(path), dir, proc_names[p], ".pid");
	return (pid_t)read_long_file(path);
}

static bool find_executable(const char *name, char out[PATH_MAX],
			    bool quiet)
{
	char self[4096];
	const char *path = getenv("PATH");

	if (cli_self_dir(self)) {
		/* build tree: build/daemons/nvcf/nvcf, build/daemons/X/X */
		cli_fmt(out, PATH_MAX, "%s/../%s/%s", self, name, name);
		if (access(out, X_OK) == 0)
			return true;
		cli_fmt(out, PATH_MAX, "%s/%s", self, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	while (path != NULL && *path != '\0') {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		cli_fmt(out, PATH_MAX, "%.*s/%s", (int)n, path, name);
		if (n > 0 && access(out, X_OK) == 0)
			return true;
		path = colon ? colon + 1 : NULL;
	}
	if (quiet)
		return false;
	cli_err("cannot find the executable '%s' next to nvcf or on PATH: "
		"build it (make build) or add its directory to PATH", name);
	return false;
}

/* Starts @p argv detached in its own session, output to @p log_path. */
static pid_t spawn_detached(char *const argv[], const char *log_path)
{
	pid_t pid;
	int log_fd, null_fd;

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0644);
	if (log_fd < 0) {
		cli_err("cannot open log %s: %s", log_path, strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		cli_err("fork failed: %s", strerror(errno));
		close(log_fd);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		null_fd = open("/dev/null", O_RDONLY);
		if (null_fd >= 0)
			dup2(null_fd, 0);
		dup2(log_fd, 1);
		dup2(log_fd, 2);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execv(argv[0], argv);
		fprintf(stderr, "nvcf up: failed to run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(log_fd);
	return pid;
}

static void print_log_tail(const char *log_path)
{
	char buf[2048];
	FILE *f = fopen(log_path, "r");
	long size, start;
	size_t n;

	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	start = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1
					      : 0;
	fseek(f, start, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "--- last lines of %s ---\n%s\n---\n", log_path, buf);
}

static bool child_exited(pid_t pid, const char *name, const char *log_path)
{
	int status;

	if (waitpid(pid, &status, WNOHANG) != pid)
		return false;
	if (WIFEXITED(status))
		cli_err("%s exited with status %d while starting", name,
			WEXITSTATUS(status));
	else
		cli_err("%s was killed by signal %d while starting", name,
			WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	print_log_tail(log_path);
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool tcp_connects(int port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int free_port(void)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static size_t discard_body(char *p, size_t size, size_t n, void *ud)
{
	return size * n;
}

static long health_status(int port)
{
	char url[64];
	long code = 0;
	CURL *c = curl_easy_init();

	if (c == NULL)
		return 0;
	cli_fmt(url, sizeof(url), "http://127.0.0.1:%d/health", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return code;
}

/*
 * Waits until a daemon has written its port file and its /health returns
 * 200. Returns the port, or -1 after printing the reason.
 */
static int wait_daemon(const up_opts *o, int p, pid_t pid)
{
	char port_path[PATH_MAX], log_path[PATH_MAX];
	double deadline = cli_now() + START_TIMEOUT_S;
	long port = -1;

	state_path(port_path, sizeof(port_path), o->dir, proc_names[p],
		   ".port");
	cli_fmt(log_path, sizeof(log_path), "%s/logs/%s.log", o->dir,
		 proc_names[p]);
	while (cli_now() < deadline) {
		if (child_exited(pid, proc_names[p], log_path))
			return -1;
		if (port <= 0)
			port = read_long_file(port_path);
		if (port > 0 && health_status((int)port) == 200)
			return (int)port;
		sleep_ms(50);
	}
	cli_err("%s did not become healthy within %.0f s (port file %s); "
		"see its log", proc_names[p], START_TIMEOUT_S, port_path);
	print_log_tail(log_path);
	return -1;
}

static bool write_pid(const up_opts *o, int p, pid_t pid)
{
	char path[PATH_MAX], text[32];

	state_path(path, sizeof(path), o->dir, proc_names[p], ".pid");
	cli_fmt(text, sizeof(text), "%d\n", (int)pid);
	if (!write_text_file(path, text, 0644)) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static pid_t start_nats(const up_opts *o, int *port_out)
{
	char exe[PATH_MAX], store[PATH_MAX], log_path[PATH_MAX], port[16];
	double deadline;
	pid_t pid;
	int p = o->nats_port > 0 ? (int)o->nats_port : free_port();

	if (!find_executable("nats-server", exe, false))
		return -1;
	if (p <= 0) {
		cli_err("cannot find a free port for nats-server");
		return -1;
	}
	cli_fmt(store, sizeof(store), "%s/nats", o->dir);
	cli_fmt(log_path, sizeof(log_path), "%s/logs/nats.log", o->dir);
	cli_fmt(port, sizeof(port), "%d", p);
	char *argv[] = {exe, "-js", "-a", "127.0.0.1", "-p", port,
			"-sd", store, NULL};
	pid = spawn_detached(argv, log_path);
	if (pid < 0 || !write_pid(o, P_NATS, pid))
		return -1;
	deadline = cli_now() + START_TIMEOUT_S;
	while (cli_now() < deadline) {
		if (child_exited(pid, "nats-server", log_path))
			return -1;
		if (tcp_connects(p)) {
			*port_out = p;
			return pid;
		}
		sleep_ms(20);
	}
	cli_err("nats-server did not accept connections on port %d within "
		"%.0f s", p, START_TIMEOUT_S);
	print_log_tail(log_path);
	return pid;
}

static pid_t start_daemon(const up_opts *o, int p, const char *nats_url,
			  const char *backend)
{
	char exe[PATH_MAX], port_path[PATH_MAX], log_path[PATH_MAX];
	char nvca_dir[PATH_MAX], worker[PATH_MAX];
	char *argv[20];
	int n = 0;
	pid_t pid;

	if (!find_executable(proc_names[p], exe, false))
		return -1;
	state_path(port_path, sizeof(port_path), o->dir, proc_names[p],
		   ".port");
	unlink(port_path);
	cli_fmt(log_path, sizeof(log_path), "%s/logs/%s.log", o->dir,
		 proc_names[p]);
	argv[n++] = exe;
	argv[n++] = "--nats";
	argv[n++] = (char *)nats_url;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = port_path;
	if (o->log_level != NULL) {
		argv[n++] = "--log-level";
		argv[n++] = (char *)o->log_level;
	}
	if (p == P_API) {
		/* nvcf-autoscaler places every instance, minimum included */
		argv[n++] = "--autoscaler";
	}
	if (p == P_NVCA) {
		cli_fmt(nvca_dir, sizeof(nvca_dir), "%s/nvca", o->dir);
		argv[n++] = "--config";
		argv[n++] = (char *)backend;
		argv[n++] = "--state-dir";
		argv[n++] = nvca_dir;
		/* without it nvca falls back to its own default */
		if (find_executable("nvcf-worker", worker, true)) {
			argv[n++] = "--worker";
			argv[n++] = worker;
		}
		if (o->docker_socket != NULL) {
			argv[n++] = "--docker-socket";
			argv[n++] = (char *)o->docker_socket;
		}
	}
	argv[n] = NULL;
	pid = spawn_detached(argv, log_path);
	if (pid < 0 || !write_pid(o, p, pid))
		return -1;
	return pid;
}

/* Sends @p sig to every listed process and waits until all are gone. */
static void stop_pids(const pid_t *pids, int n, const char *const *names)
{
	double deadline = cli_now() + STOP_TIMEOUT_S;
	bool any;

	for (int i = 0; i < n; i++)
		if (pid_alive(pids[i]))
			kill(pids[i], SIGTERM);
	do {
		any = false;
		for (int i = 0; i < n; i++) {
			/* reaps the processes this command started itself */
			waitpid(pids[i], NULL, WNOHANG);
			any = any || pid_alive(pids[i]);
		}
		if (any)
			sleep_ms(50);
	} while (any && cli_now() < deadline);
	for (int i = 0; i < n; i++) {
		if (!pid_alive(pids[i]))
			continue;
		fprintf(stderr, "nvcf: %s (pid %d) ignored SIGTERM for %.0f s; "
			"sending SIGKILL\n", names[i], (int)pids[i],
			STOP_TIMEOUT_S);
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

/*
 * Kills every process left in session @p sid. nvca leads its own session
 * and starts instances in process groups of their own within it, so when
 * nvca had to be killed, its function processes and workers are found
 * here rather than left running.
 */
static int kill_session(pid_t sid)
{
	struct dirent *e;
	int killed = 0;
	DIR *d;

	if (sid <= 0 || (d = opendir("/proc")) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[1024], *p;
		long pid = strtol(e->d_name, &p, 10);
		int fd, state_sid = 0;
		ssize_t n;
		char state;
		long ppid, pgrp;

		if (*p != '\0' || pid <= 0 || pid == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* The command name may hold spaces: fields follow the last ')'. */
		if ((p = strrchr(buf, ')')) == NULL ||
		    sscanf(p + 1, " %c %ld %ld %d", &state, &ppid, &pgrp,
			   &state_sid) != 4 ||
		    state_sid != (int)sid || state == 'Z')
			continue;
		if (kill((pid_t)pid, SIGKILL) == 0)
			killed++;
	}
	closedir(d);
	return killed;
}

/* Stops the stack in @p dir: agent first, then the REST daemons, then NATS
 * last so that every daemon can hand back its work on the bus. */
static void stop_stack(const char *dir, bool verbose)
{
	static const int order[][3] = {
		{P_AUTOSCALER, -1, -1}, {P_NVCA, -1, -1},
		{P_GATEWAY, P_API, -1}, {P_NATS, -1, -1}};

	for (size_t g = 0; g < sizeof(order) / sizeof(order[0]); g++) {
		pid_t pids[3];
		const char *names[3];
		int n = 0;

		for (int j = 0; j < 3 && order[g][j] >= 0; j++) {
			int p = order[g][j];
			pid_t pid = read_pid(dir, p);

			if (pid > 0 && pid_alive(pid)) {
				if (verbose)
					printf("stopping %s (pid %d)\n",
					       proc_names[p], (int)pid);
				pids[n] = pid;
				names[n++] = proc_names[p];
			}
		}
		stop_pids(pids, n, names);
		if (order[g][0] == P_NVCA && n > 0) {
			int left = kill_session(pids[0]);

			if (left > 0)
				fprintf(stderr, "nvcf: killed %d instance "
					"process(es) nvca left behind\n", left);
		}
		for (int j = 0; j < 3 && order[g][j] >= 0; j++) {
			char path[PATH_MAX];

			state_path(path, sizeof(path), dir,
				   proc_names[order[g][j]], ".pid");
			unlink(path);
			state_path(path, sizeof(path), dir,
				   proc_names[order[g][j]], ".port");
			unlink(path);
		}
	}
}

static bool wait_cluster(nvcf_bus *bus)
{
	double deadline = cli_now() + START_TIMEOUT_S;

	while (cli_now() < deadline) {
		char **keys = NULL;
		size_t count = 0;

		if (nvcf_bus_kv_keys(bus, NVCF_BUCKET_CLUSTERS, NULL, &keys,
				     &count) == NVCF_OK) {
			nvcf_strings_free(keys, count);
			if (count > 0)
				return true;
		}
		sleep_ms(100);
	}
	cli_err("nvca did not register its cluster in KV %s within %.0f s",
		NVCF_BUCKET_CLUSTERS, START_TIMEOUT_S);
	return false;
}

/* Creates the administrator key of the local stack. */
static bool create_admin_key(const char *nats_url, char key[64])
{
	nvcf_bus_options bo = NVCF_BUS_OPTIONS_INIT;
	nvcf_bus *bus = NULL;
	nvcf_status st;
	bool ok;

	bo.url = nats_url;
	bo.name = "nvcf-up";
	st = nvcf_bus_new(&bus, &bo);
	if (st == NVCF_OK)
		st = nvcf_bus_ensure_control(bus);
	if (st == NVCF_OK)
		st = nvcf__key_create(bus, ADMIN_ACCOUNT, NVCF_SCOPE_ALL,
				      "local admin (nvcf up)", key);
	if (st != NVCF_OK) {
		cli_err("cannot create the admin key: %s",
			nvcf_error_last()->message);
		nvcf_bus_free(bus);
		return false;
	}
	ok = wait_cluster(bus);
	nvcf_bus_free(bus);
	return ok;
}

static int usage_up(FILE *out)
{
	fputs("usage: nvcf up --state-dir DIR [--nats-port P] [--backend FILE]"
	      " [--log-level L]\n"
	      "               [--docker-socket PATH]\n\n"
	      "Starts a local stack in the background: nats-server with "
	      "JetStream, nvcf-api,\nnvcf-invocation, nvca and nvcf-autoscaler. "
	      "Writes pid, port and log files\nunder DIR and the client "
	      "settings to "
	      "DIR/env (source it, or pass --state-dir to other commands).\n\n"
	      "  --state-dir DIR  where state, logs and the NATS store live "
	      "(created)\n"
	      "  --nats-port P    NATS client port (default: a free port)\n"
	      "  --backend FILE   NVCFBackend YAML for nvca (default: "
	      "examples/backends/local.yaml)\n"
	      "  --log-level L    error, warn, info, debug or trace, passed "
	      "to each daemon\n"
	      "  --docker-socket PATH  Docker Engine API socket (Docker or "
	      "`podman system\n"
	      "                   service`) on which nvca runs container "
	      "images\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static bool default_backend(char out[PATH_MAX])
{
	char self[4096];

	cli_fmt(out, PATH_MAX, "%s/examples/backends/local.yaml",
		 NVCF_SOURCE_DIR);
	if (access(out, R_OK) == 0)
		return true;
	if (cli_self_dir(self)) {
		cli_fmt(out, PATH_MAX,
			 "%s/../share/libnvcf/backends/local.yaml", self);
		if (access(out, R_OK) == 0)
			return true;
	}
	cli_err("no backend file found (looked for %s/examples/backends/"
		"local.yaml): pass --backend FILE", NVCF_SOURCE_DIR);
	return false;
}

static int parse_state_dir(int argc, char **argv, up_opts *o,
			   int (*usage)(FILE *))
{
	const char *dir = NULL, *port = NULL, *v;

	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return usage(stdout) + 100;
		if (cli_flag(argc, argv, &i, "--state-dir", &v))
			dir = v;
		else if (cli_flag(argc, argv, &i, "--nats-port", &v))
			port = v;
		else if (cli_flag(argc, argv, &i, "--backend", &v))
			o->backend = v;
		else if (cli_flag(argc, argv, &i, "--log-level", &v))
			o->log_level = v;
		else if (cli_flag(argc, argv, &i, "--docker-socket", &v))
			o->docker_socket = v;
		else {
			cli_err("unknown argument '%s'", argv[i]);
			return usage(stderr);
		}
		if (v == NULL)
			return usage(stderr);
	}
	if (dir == NULL)
		dir = getenv("NVCF_STATE_DIR");
	if (dir == NULL || *dir == '\0') {
		cli_err("--state-dir DIR is required");
		return usage(stderr);
	}
	if (port != NULL && (!cli_parse_int(port, &o->nats_port) ||
			     o->nats_port < 1 || o->nats_port > 65535)) {
		cli_err("invalid --nats-port '%s': use 1 to 65535", port);
		return CLI_EXIT_USAGE;
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		cli_err("cannot create state directory %s: %s", dir,
			strerror(errno));
		return CLI_EXIT_ERROR;
	}
	if (realpath(dir, o->dir) == NULL) {
		cli_err("cannot resolve %s: %s", dir, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return -1;
}

static int count_alive(const char *dir)
{
	int n = 0;

	for (int p = 0; p < P_COUNT; p++)
		n += pid_alive(read_pid(dir, p));
	return n;
}

int cmd_up(int argc, char **argv)
{
	char logs[PATH_MAX + 8], backend[PATH_MAX], nats_url[64];
	char env_path[PATH_MAX + 8], env[1024], key[64];
	int ports[P_COUNT] = {0}, rc, alive;
	pid_t pid;
	up_opts o;

	rc = parse_state_dir(argc, argv, &o, usage_up);
	if (rc >= 100)
		return rc - 100;
	if (rc >= 0)
		return rc;
	alive = count_alive(o.dir);
	if (alive == P_COUNT) {
		printf("a stack is already running in %s; its settings are in "
		       "%s/env\n(stop it with: nvcf down --state-dir %s)\n",
		       o.dir, o.dir, o.dir);
		return CLI_EXIT_OK;
	}
	if (alive > 0) {
		cli_err("a partial stack is running in %s (%d of %d processes):"
			" run 'nvcf down --state-dir %s' first", o.dir, alive,
			P_COUNT, o.dir);
		return CLI_EXIT_ERROR;
	}
	if (o.backend != NULL) {
		if (realpath(o.backend, backend) == NULL) {
			cli_err("cannot read backend file %s: %s", o.backend,
				strerror(errno));
			return CLI_EXIT_ERROR;
		}
	} else if (!default_backend(backend)) {
		return CLI_EXIT_ERROR;
	}
	cli_fmt(logs, sizeof(logs), "%s/logs", o.dir);
	mkdir(logs, 0755);
	cli_fmt(env_path, sizeof(env_path), "%s/env", o.dir);
	unlink(env_path);

	pid = start_nats(&o, &ports[P_NATS]);
	if (pid < 0 || ports[P_NATS] == 0)
		goto fail;
	cli_fmt(nats_url, sizeof(nats_url), "nats://127.0.0.1:%d",
		 ports[P_NATS]);
	for (int p = P_API; p < P_COUNT; p++) {
		pid = start_daemon(&o, p, nats_url, backend);
		if (pid < 0)
			goto fail;
		ports[p] = wait_daemon(&o, p, pid);
		if (ports[p] < 0)
			goto fail;
	}
	if (!create_admin_key(nats_url, key))
		goto fail;
	cli_fmt(env, sizeof(env),
		 "export NVCF_API_URL=http://127.0.0.1:%d\n"
		 "export NVCF_INVOKE_URL=http://127.0.0.1:%d\n"
		 "export NVCF_API_KEY=%s\n"
		 "export NATS_URL=%s\n",
		 ports[P_API], ports[P_GATEWAY], key, nats_url);
	if (!write_text_file(env_path, env, 0600)) {
		cli_err("cannot write %s: %s", env_path, strerror(errno));
		goto fail;
	}
	printf("started a local stack in %s\n", o.dir);
	for (int p = 0; p < P_COUNT; p++)
		printf("  %-16s pid %-8d port %d\n", proc_names[p],
		       (int)read_pid(o.dir, p), ports[p]);
	printf("settings (account %s, all scopes): %s\n%s"
	       "logs: %s\nstop: nvcf down --state-dir %s\n",
	       ADMIN_ACCOUNT, env_path, env, logs, o.dir);
	return CLI_EXIT_OK;

fail:
	cli_err("stopping what was started; logs are in %s", logs);
	stop_stack(o.dir, false);
	return CLI_EXIT_ERROR;
}

static int usage_down(FILE *out)
{
	fputs("usage: nvcf down --state-dir DIR\n\n"
	      "Stops the stack that 'nvcf up' started in DIR: SIGTERM to each "
	      "process (nvca\nfirst, nats-server last), SIGKILL after 10 s, "
	      "and removes the pid, port and\nenv files. Logs and the NATS "
	      "store stay.\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_down(int argc, char **argv)
{
	char path[PATH_MAX + 8];
	up_opts o;
	int rc = parse_state_dir(argc, argv, &o, usage_down);

	if (rc >= 100)
		return rc - 100;
	if (rc >= 0)
		return rc;
	if (count_alive(o.dir) == 0)
		printf("nothing is running in %s\n", o.dir);
	stop_stack(o.dir, true);
	cli_fmt(path, sizeof(path), "%s/env", o.dir);
	unlink(path);
	return CLI_EXIT_OK;
}

static int usage_status(FILE *out)
{
	fputs("usage: nvcf status --state-dir DIR\n\n"
	      "Shows each process of the stack in DIR: pid, port and whether "
	      "it answers /health.\nExits 0 when all are running, 1 "
	      "otherwise.\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_status(int argc, char **argv)
{
	up_opts o;
	int rc = parse_state_dir(argc, argv, &o, usage_status), healthy = 0;

	if (rc >= 100)
		return rc - 100;
	if (rc >= 0)
		return rc;
	printf("state directory %s\n", o.dir);
	for (int p = 0; p < P_COUNT; p++) {
		char path[PATH_MAX];
		pid_t pid = read_pid(o.dir, p);
		long port = -1;
		const char *state = "not running";

		if (pid_alive(pid)) {
			state = "running";
			if (p == P_NATS) {
				healthy++;
			} else {
				state_path(path, sizeof(path), o.dir,
					   proc_names[p], ".port");
				port = read_long_file(path);
				if (port > 0 && health_status((int)port) == 200)
					healthy++;
				else
					state = "running, /health failing";
			}
		}
		if (port > 0)
			printf("  %-16s pid %-8d port %-6ld %s\n",
			       proc_names[p], (int)pid, port, state);
		else
			printf("  %-16s pid %-8d %s\n", proc_names[p],
			       pid_alive(pid) ? (int)pid : 0, state);
	}
	return healthy == P_COUNT ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}
