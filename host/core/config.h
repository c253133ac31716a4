/*
 * config.h - the daemon's configuration (libconfig), validated strictly.
 *
 * Every key is checked against a schema: an unknown key, a wrong type or an
 * out-of-range value is an error naming file:line, so `tollgate check` can
 * refuse a config before anything starts (exit 78, EX_CONFIG). Task
 * settings are kept as libconfig settings and validated later against the
 * plugin's declared settings (config_validate_task_settings), because only
 * the loaded plugin knows what it accepts.
 *
 * Files in `include_dir` (sorted, "*.cfg") may each add `tasks`: drop-in
 * snippets for packages and third-party plugins.
 */
#ifndef TG_HOST_CONFIG_H
#define TG_HOST_CONFIG_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

#define CONFIG_MAX_PLUGIN_DIRS 8
#define CONFIG_MAX_FILES 32
/* storage.sqlite_cache_mb: about SQLite's own default (2,000 KiB), and a
 * bound far above any use (each connection may fill its cache). */
#define CONFIG_SQLITE_CACHE_MB_DEFAULT 2
#define CONFIG_SQLITE_CACHE_MB_MAX 4096
/* A task name is a label in logs, status, metrics and lock names: it has to
 * fit on a line. Longer names are refused at file:line. */
#define CONFIG_TASK_NAME_MAX 64

struct task_config {
	const char *name;
	const char *plugin;
	bool required;
	double weight;
	int64_t interval_s;          /* 0: continuous */
	int64_t memory_limit_mb;     /* worker mode: resident memory allowed to the task's worker */
	int64_t cpu_limit_s;         /* worker mode: CPU seconds allowed to one run */
	config_setting_t *settings;  /* the `settings` group, or NULL */
	const char *file;            /* where the task was declared */
	int line;
};

struct config {
	char *path;

	/* keepa */
	const char *keepa_endpoint;
	const char *keepa_key_file;  /* NULL: only KEEPA_API_KEY */
	int keepa_domain;
	int keepa_connect_timeout_s;
	int keepa_timeout_s;
	int64_t keepa_max_response_bytes;
	int keepa_max_retries;

	/* tokens */
	const char *tokens_policy;   /* "reserve" or "deficit" */
	double tokens_reserve;
	double tokens_margin;
	double tokens_deepest_deficit;
	double tokens_deficit_threshold;
	double tokens_latency_target_s;
	int tokens_cap_minutes;
	int tokens_minute_ms;        /* length of a Keepa minute: 60000, less for the simulator */

	/* storage */
	const char *storage_backend; /* "sqlite" or "postgresql" */
	const char *storage_path;     /* sqlite: the database file */
	const char *storage_conninfo; /* postgresql: libpq connection string, no password */
	int storage_sqlite_cache_mb;  /* sqlite: page cache of each connection, MiB */

	/* hot standby (core/ha.c); ha_node NULL: off */
	const char *ha_node;
	int ha_lease_s;
	int ha_heartbeat_s;

	const char *runtime_dir;
	const char *plugin_path[CONFIG_MAX_PLUGIN_DIRS];
	int nplugin_path;
	const char *include_dir;

	int log_level;
	int log_progress_interval_s;
	const char *status_socket;
	int status_stall_after_s;    /* no progress this long: stalled */
	const char *metrics_listen;  /* "" or NULL: off */

	/* web (the page and /api; see host/web/web.h) */
	const char *web_listen;      /* "" or NULL: off */
	const char *web_token_file;  /* NULL: no token (loopback listen only) */
	int web_requests_per_s;      /* per client address, with bursts of twice that */

	/* Worker mode (`workers = true`, the default): each task in its own
	 * supervised process; `false` runs tasks as threads of the daemon. See
	 * host/worker/PROTOCOL.md and sdk/GUIDE.md. */
	bool workers;
	int supervisor_stop_grace_ms;  /* SIGTERM: how long workers get to stop before SIGKILL */
	int supervisor_crash_limit;    /* this many crashes ... */
	int supervisor_crash_window_s; /* ... within this window: quarantined */

	struct task_config *tasks;
	int ntasks;

	/* The parsed files; settings above point into them, and task_config's
	 * file into file_names. */
	config_t files[CONFIG_MAX_FILES];
	char *file_names[CONFIG_MAX_FILES];
	int nfiles;
};

/* Read and validate path (and include_dir). On error returns TG_EINVAL and
 * *errmsg is "file:line: what is wrong". config_release() is safe after any
 * outcome. */
int config_load(struct config *config, const char *path, char **errmsg);
void config_release(struct config *config);

/* Check a task's settings against what the plugin declares: unknown names
 * and wrong types are errors with file:line. */
int config_validate_task_settings(const struct task_config *task, const struct tg_setting *declared,
                                  size_t ndeclared, char **errmsg);

/* Parse metrics.listen: "a.b.c.d:port", or "port" / ":port" for loopback
 * (metrics are off the network unless an address says otherwise). */
struct sockaddr_in;
int config_parse_listen(const char *listen, struct sockaddr_in *out);

/* Find a task setting by name (NULL when not configured). */
config_setting_t *config_task_setting(const struct task_config *task, const char *name);


#endif
