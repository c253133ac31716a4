/*
 * config.c - load and validate tollgate.cfg (see config.h).
 *
 * libconfig parses; this file decides what is allowed. Each group has a list
 * of known keys, and every value is fetched by a typed getter that reports
 * the setting's file:line, so an operator always learns where the mistake is.
 */
#include "util/errmsg.h"
#include "core/config.h"
#include "storage/pg_conn.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/config_file.h"
#include "observe/log.h"
#include "tokens/tokens.h"
#include "web/web.h"

struct ctx {
	struct config *config;
	const char *file; /* file being validated, for settings without one */
	char **errmsg;
	/* Task names seen so far, an open-addressing hash of indices into
	 * config->tasks (+1; 0 is empty): finding a duplicate name stays linear
	 * in the number of tasks (comparing each with all was quadratic). */
	int *names;
	size_t names_cap;
};

static const char *setting_file(const struct ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;
	return f ? f : c->file;
}

/* Report an error at setting s (or at the file when s is NULL). Always
 * returns TG_EINVAL so callers can `return fail(...)`. */
static int fail(const struct ctx *c, const config_setting_t *s, const char *fmt, ...) TG_PRINTF(3, 4);
static int fail(const struct ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errmsg_set(c->errmsg, TG_EINVAL, "%s:%d: %s", setting_file(c, s),
	                  s ? (int)config_setting_source_line(s) : 0, msg);
}

/* The path of a setting for messages: "keepa.domain", "tasks[1].weight". */
static void setting_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *chain[16];
	int n = 0;
	size_t used = 0;

	buf[0] = '\0';
	for (; s && !config_setting_is_root(s) && n < 16; s = config_setting_parent(s))
		chain[n++] = s;
	while (n-- > 0 && used < len) {
		const config_setting_t *e = chain[n];
		const char *name = config_setting_name(e);
		if (name)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "." : "", name);
		else
			used += (size_t)snprintf(buf + used, len - used, "[%d]", config_setting_index(e));
	}
}

/* Every child of group must be one of allowed (NULL-terminated). */
static int check_known_keys(const struct ctx *c, const config_setting_t *group, const char *const *allowed)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *child = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(child);
		int known = 0;
		char path[256];

		for (const char *const *a = allowed; *a; a++)
			if (name && strcmp(name, *a) == 0)
				known = 1;
		if (!known) {
			setting_path(child, path, sizeof(path));
			return fail(c, child, "unknown key '%s'", path);
		}
	}
	return 0;
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "nothing";
	}
}

static int wrong_type(const struct ctx *c, const config_setting_t *s, const char *want)
{
	char path[256];

	setting_path(s, path, sizeof(path));
	return fail(c, s, "'%s' must be %s, not %s", path, want, type_name(config_setting_type(s)));
}

static int get_string(const struct ctx *c, const config_setting_t *group, const char *name, const char **out,
                      int required)
{
	config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s) {
		if (required)
			return fail(c, group, "missing key '%s'", name);
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return wrong_type(c, s, "a string");
	*out = config_setting_get_string(s);
	return 0;
}

static int get_int(const struct ctx *c, const config_setting_t *group, const char *name, int64_t *out,
                   int64_t min, int64_t max)
{
	config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;
	char path[256];
	int64_t v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return wrong_type(c, s, "an integer");
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		setting_path(s, path, sizeof(path));
		return fail(c, s, "'%s' = %lld is out of range [%lld, %lld]", path, (long long)v, (long long)min,
		            (long long)max);
	}
	*out = v;
	return 0;
}

static int get_int32(const struct ctx *c, const config_setting_t *group, const char *name, int *out, int min,
                     int max)
{
	int64_t v = *out;
	int rc = get_int(c, group, name, &v, min, max);
	*out = (int)v;
	return rc;
}

static int get_number(const struct ctx *c, const config_setting_t *group, const char *name, double *out,
                      double min, double max)
{
	config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;
	char path[256];
	double v;

	if (!s)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: v = (double)config_setting_get_int64(s); break;
	case CONFIG_TYPE_FLOAT: v = config_setting_get_float(s); break;
	default: return wrong_type(c, s, "a number");
	}
	if (!(v >= min && v <= max)) {
		setting_path(s, path, sizeof(path));
		return fail(c, s, "'%s' = %g is out of range [%g, %g]", path, v, min, max);
	}
	*out = v;
	return 0;
}

static int get_bool(const struct ctx *c, const config_setting_t *group, const char *name, bool *out)
{
	config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return wrong_type(c, s, "a boolean (true or false)");
	*out = config_setting_get_bool(s) != 0;
	return 0;
}

/* A group member that must be a group, or NULL when absent. */
static int get_group(const struct ctx *c, const config_setting_t *parent, const char *name,
                     config_setting_t **out)
{
	config_setting_t *s = config_setting_get_member(parent, name);

	*out = NULL;
	if (!s)
		return 0;
	if (!config_setting_is_group(s))
		return wrong_type(c, s, "a group { ... }");
	*out = s;
	return 0;
}

static void config_defaults(struct config *config)
{
	struct tokens_config tc;

	/* The scheduler's defaults are the one source: a config that leaves a
	 * tokens key out gets exactly what the scheduler would use. */
	tokens_config_default(&tc);
	config->keepa_endpoint = "https://api.keepa.com";
	config->keepa_domain = 1;
	config->keepa_connect_timeout_s = 30;
	config->keepa_timeout_s = 120;
	config->keepa_max_response_bytes = 64 << 20;
	config->keepa_max_retries = 5;
	config->tokens_policy = tokens_policy_name(tc.policy);
	config->tokens_reserve = tc.reserve;
	config->tokens_margin = tc.margin;
	config->tokens_deepest_deficit = tc.deepest_deficit;
	config->tokens_deficit_threshold = tc.deficit_threshold;
	config->tokens_latency_target_s = tc.latency_target_s;
	config->tokens_cap_minutes = (int)tc.cap_minutes;
	config->tokens_minute_ms = (int)tc.minute_ms;
	config->storage_backend = "sqlite";
	config->storage_path = "/var/lib/tollgate/tollgate.db";
	config->storage_sqlite_cache_mb = CONFIG_SQLITE_CACHE_MB_DEFAULT;
	config->ha_lease_s = 8;
	config->ha_heartbeat_s = 2;
	config->runtime_dir = "/run/tollgate";
	config->log_level = TG_LOG_INFO;
	config->log_progress_interval_s = 60;
	config->status_socket = "/run/tollgate/status.sock";
	config->status_stall_after_s = 900;
	config->metrics_listen = "";
	config->web_listen = "";
	config->web_requests_per_s = 20;
	config->workers = true;
	config->supervisor_stop_grace_ms = 2000;
	config->supervisor_crash_limit = 3;
	config->supervisor_crash_window_s = 600;
}

static int valid_name(const char *s)
{
	if (!s || !islower((unsigned char)s[0]))
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static const char *const keepa_keys[] = {"endpoint",          "key_file",  "domain", "connect_timeout_s",
                                         "timeout_s",         "max_response_bytes",  "max_retries", NULL};
static const char *const tokens_keys[] = {"policy",           "reserve",   "margin", "deepest_deficit",
                                          "deficit_threshold", "latency_target_s",   "cap_minutes", "minute_ms", NULL};
static const char *const storage_keys[] = {"backend", "path", "conninfo", "sqlite_cache_mb", NULL};
static const char *const ha_keys[] = {"node", "lease_s", "heartbeat_s", NULL};
static const char *const log_keys[] = {"level", "progress_interval_s", NULL};
static const char *const status_keys[] = {"socket", "stall_after_s", NULL};
static const char *const metrics_keys[] = {"listen", NULL};
static const char *const task_keys[] = {"name",     "plugin",   "required",        "weight",
                                        "schedule", "settings", "memory_limit_mb", "cpu_limit_s", NULL};
static const char *const supervisor_keys[] = {"stop_grace_ms", "crash_limit", "crash_window_s", NULL};
static const char *const root_keys[] = {"keepa", "tokens", "storage", "runtime_dir", "plugin_path", "include_dir",
                                        "log",   "status", "metrics", "tasks",       "ha",          "web",
                                        "workers", "supervisor", NULL};
static const char *const dropin_keys[] = {"tasks", NULL};

static int load_keepa(struct ctx *c, const config_setting_t *root)
{
	struct config *cf = c->config;
	config_setting_t *g;
	int rc;

	if ((rc = get_group(c, root, "keepa", &g)) || !g)
		return rc;
	if ((rc = check_known_keys(c, g, keepa_keys)))
		return rc;
	if ((rc = get_string(c, g, "endpoint", &cf->keepa_endpoint, 0)) ||
	    (rc = get_string(c, g, "key_file", &cf->keepa_key_file, 0)) ||
	    (rc = get_int32(c, g, "domain", &cf->keepa_domain, 1, 12)) ||
	    (rc = get_int32(c, g, "connect_timeout_s", &cf->keepa_connect_timeout_s, 1, 600)) ||
	    (rc = get_int32(c, g, "timeout_s", &cf->keepa_timeout_s, 1, 3600)) ||
	    (rc = get_int(c, g, "max_response_bytes", &cf->keepa_max_response_bytes, 4096, (int64_t)1 << 32)) ||
	    (rc = get_int32(c, g, "max_retries", &cf->keepa_max_retries, 0, 20)))
		return rc;
	if (cf->keepa_domain == 7)
		return fail(c, config_setting_get_member(g, "domain"), "'keepa.domain' = 7 is not a Keepa domain");
	if (strncmp(cf->keepa_endpoint, "https://", 8) != 0 && strncmp(cf->keepa_endpoint, "http://", 7) != 0)
		return fail(c, config_setting_get_member(g, "endpoint"),
		            "'keepa.endpoint' must start with https:// (or http:// for a loopback simulator)");
	return 0;
}

static int load_tokens(struct ctx *c, const config_setting_t *root)
{
	struct config *cf = c->config;
	config_setting_t *g;
	int rc;

	if ((rc = get_group(c, root, "tokens", &g)) || !g)
		return rc;
	if ((rc = check_known_keys(c, g, tokens_keys)))
		return rc;
	if ((rc = get_string(c, g, "policy", &cf->tokens_policy, 0)) ||
	    (rc = get_number(c, g, "reserve", &cf->tokens_reserve, 0, 1e6)) ||
	    (rc = get_number(c, g, "margin", &cf->tokens_margin, 0, 1e6)) ||
	    (rc = get_number(c, g, "deepest_deficit", &cf->tokens_deepest_deficit, 0, 1e6)) ||
	    (rc = get_number(c, g, "deficit_threshold", &cf->tokens_deficit_threshold, 0, 1e6)) ||
	    (rc = get_number(c, g, "latency_target_s", &cf->tokens_latency_target_s, 1, 86400)) ||
	    (rc = get_int32(c, g, "cap_minutes", &cf->tokens_cap_minutes, 1, 1440)) ||
	    (rc = get_int32(c, g, "minute_ms", &cf->tokens_minute_ms, 10, 60000)))
		return rc;
	/* The scheduler refuses this at start: say it here, where it is written. */
	if (cf->tokens_margin > cf->tokens_reserve)
		return fail(c, config_setting_get_member(g, "margin") ? config_setting_get_member(g, "margin")
		                                                          : config_setting_get_member(g, "reserve"),
		            "'tokens.margin' = %g must not exceed 'tokens.reserve' = %g", cf->tokens_margin,
		            cf->tokens_reserve);
	if (strcmp(cf->tokens_policy, "reserve") != 0 && strcmp(cf->tokens_policy, "deficit") != 0)
		return fail(c, config_setting_get_member(g, "policy"),
		            "'tokens.policy' must be \"reserve\" or \"deficit\", not \"%s\"", cf->tokens_policy);
	return 0;
}

int config_parse_listen(const char *listen, struct sockaddr_in *out)
{
	const char *colon = strrchr(listen, ':');
	const char *port_text = colon ? colon + 1 : listen;
	char host[INET_ADDRSTRLEN] = "127.0.0.1";
	char *end;
	long port;

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (colon && colon > listen) {
		if ((size_t)(colon - listen) >= sizeof(host))
			return TG_EINVAL;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
	}
	port = strtol(port_text, &end, 10);
	if (end == port_text || *end != '\0' || port <= 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return TG_EINVAL;
	out->sin_port = htons((uint16_t)port);
	return 0;
}

/* PostgreSQL needs a connection string, and one without a password: the
 * password comes from a password file (see storage/pg_conn.h). */
static int check_conninfo(const struct ctx *c, const config_setting_t *storage)
{
	const struct config *cf = c->config;
	char *why = NULL;
	int rc;

	if (strcmp(cf->storage_backend, "postgresql") != 0)
		return 0;
	if (!cf->storage_conninfo)
		return fail(c, storage ? config_setting_get_member(storage, "backend") : NULL,
		            "'storage.backend' = \"postgresql\" needs 'storage.conninfo', a libpq connection "
		            "string such as \"host=db1 dbname=tollgate user=tollgate\"");
	if (pg_conninfo_check(cf->storage_conninfo, &why) == 0)
		return 0;
	rc = fail(c, config_setting_get_member(storage, "conninfo"), "'storage.conninfo': %s", why ? why : "invalid");
	free(why);
	return rc;
}

/* Hot standby (core/ha.c): on when the group is there. */
static int load_ha(struct ctx *c, const config_setting_t *root)
{
	struct config *cf = c->config;
	config_setting_t *g;
	size_t n;
	int rc;

	if ((rc = get_group(c, root, "ha", &g)) || !g)
		return rc;
	if ((rc = check_known_keys(c, g, ha_keys)) || (rc = get_string(c, g, "node", &cf->ha_node, 0)) ||
	    (rc = get_int32(c, g, "lease_s", &cf->ha_lease_s, 2, 3600)) ||
	    (rc = get_int32(c, g, "heartbeat_s", &cf->ha_heartbeat_s, 1, 1800)))
		return rc;
	if (strcmp(cf->storage_backend, "postgresql") != 0)
		return fail(c, g, "'ha' needs 'storage.backend' = \"postgresql\": the lease lives in the shared database");
	if (!cf->ha_node)
		return fail(c, g, "'ha.node' is missing: name this host, unique among the daemons sharing the database");
	n = strspn(cf->ha_node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
	if (n == 0 || cf->ha_node[n] || n > 40)
		return fail(c, config_setting_get_member(g, "node"),
		            "'ha.node' = \"%s\" must be 1 to 40 of [A-Za-z0-9_.-]", cf->ha_node);
	if (cf->ha_heartbeat_s * 2 > cf->ha_lease_s)
		return fail(c, config_setting_get_member(g, "heartbeat_s"),
		            "'ha.heartbeat_s' = %d must be at most half of 'ha.lease_s' = %d (a late beat must not lose "
		            "the lease)",
		            cf->ha_heartbeat_s, cf->ha_lease_s);
	return 0;
}

static int load_misc(struct ctx *c, const config_setting_t *root)
{
	struct config *cf = c->config;
	config_setting_t *g, *list;
	const char *level = NULL;
	int rc;

	if ((rc = get_group(c, root, "storage", &g)))
		return rc;
	if (g && ((rc = check_known_keys(c, g, storage_keys)) ||
	          (rc = get_string(c, g, "backend", &cf->storage_backend, 0)) ||
	          (rc = get_string(c, g, "path", &cf->storage_path, 0)) ||
	          (rc = get_string(c, g, "conninfo", &cf->storage_conninfo, 0))))
		return rc;
	if (strcmp(cf->storage_backend, "sqlite") != 0 && strcmp(cf->storage_backend, "postgresql") != 0)
		return fail(c, config_setting_get_member(g, "backend"),
		            "'storage.backend' = \"%s\" is not supported (supported: \"sqlite\", \"postgresql\")",
		            cf->storage_backend);
	if ((rc = check_conninfo(c, g)) || (rc = load_ha(c, root)))
		return rc;
	/* SQLite's page cache per connection (each task has its own): memory
	 * against reads from disk. PostgreSQL ignores it. */
	if (g && (rc = get_int32(c, g, "sqlite_cache_mb", &cf->storage_sqlite_cache_mb, 1, CONFIG_SQLITE_CACHE_MB_MAX)))
		return rc;

	if ((rc = get_string(c, root, "runtime_dir", &cf->runtime_dir, 0)) ||
	    (rc = get_string(c, root, "include_dir", &cf->include_dir, 0)))
		return rc;

	list = config_setting_get_member(root, "plugin_path");
	if (list) {
		int n = config_setting_length(list);
		if (!config_setting_is_array(list) && !config_setting_is_list(list))
			return wrong_type(c, list, "a list of directories [\"/path\", ...]");
		if (n > CONFIG_MAX_PLUGIN_DIRS)
			return fail(c, list, "'plugin_path' has %d directories; at most %d", n, CONFIG_MAX_PLUGIN_DIRS);
		for (int i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				return wrong_type(c, e, "a string");
			if (config_setting_get_string(e)[0] != '/')
				return fail(c, e, "plugin directory \"%s\" must be an absolute path",
				            config_setting_get_string(e));
			cf->plugin_path[cf->nplugin_path++] = config_setting_get_string(e);
		}
	}

	if ((rc = get_group(c, root, "log", &g)))
		return rc;
	if (g && ((rc = check_known_keys(c, g, log_keys)) || (rc = get_string(c, g, "level", &level, 0)) ||
	          (rc = get_int32(c, g, "progress_interval_s", &cf->log_progress_interval_s, 1, 86400))))
		return rc;
	if (level) {
		cf->log_level = log_level_parse(level);
		if (cf->log_level < 0)
			return fail(c, config_setting_get_member(g, "level"),
			            "'log.level' must be \"error\", \"warn\", \"info\" or \"debug\", not \"%s\"", level);
	}
	if ((rc = get_group(c, root, "status", &g)))
		return rc;
	if (g && ((rc = check_known_keys(c, g, status_keys)) ||
	          (rc = get_string(c, g, "socket", &cf->status_socket, 0)) ||
	          (rc = get_int32(c, g, "stall_after_s", &cf->status_stall_after_s, 1, 7 * 86400))))
		return rc;
	if ((rc = get_group(c, root, "metrics", &g)))
		return rc;
	if (g && ((rc = check_known_keys(c, g, metrics_keys)) ||
	          (rc = get_string(c, g, "listen", &cf->metrics_listen, 0))))
		return rc;
	/* Checked here, not when the daemon starts: `tollgate check` (and the
	 * unit's ExecStartPre) must catch what would otherwise be a start-up
	 * failure that systemd restarts forever. */
	struct sockaddr_in sa;
	if (cf->metrics_listen && cf->metrics_listen[0] && config_parse_listen(cf->metrics_listen, &sa) != 0)
		return fail(c, config_setting_get_member(g, "listen"),
		            "'metrics.listen' = \"%s\" must be [IPv4]:port, e.g. \"127.0.0.1:9464\" or \"9464\"",
		            cf->metrics_listen);
	if ((rc = get_bool(c, root, "workers", &cf->workers)) || (rc = get_group(c, root, "supervisor", &g)))
		return rc;
	if (g && ((rc = check_known_keys(c, g, supervisor_keys)) ||
	          (rc = get_int32(c, g, "stop_grace_ms", &cf->supervisor_stop_grace_ms, 0, 600000)) ||
	          (rc = get_int32(c, g, "crash_limit", &cf->supervisor_crash_limit, 1, 8)) ||
	          (rc = get_int32(c, g, "crash_window_s", &cf->supervisor_crash_window_s, 1, 7 * 86400))))
		return rc;
	if (strlen(cf->status_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return fail(c, config_setting_get_member(config_setting_get_member(root, "status"), "socket"),
		            "'status.socket' is %zu characters; a UNIX socket path has at most %zu",
		            strlen(cf->status_socket), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

/* ---- web: the page and its API (host/web/). Off unless listen is set; an
 * address outside 127.0.0.0/8 is refused without a token file, because the
 * deals and the daemon's state would then be open to the network. */
static const char *const web_keys[] = {"listen", "token_file", "requests_per_s", NULL};

static int load_web(struct ctx *c, const config_setting_t *root)
{
	struct config *cf = c->config;
	config_setting_t *g;
	struct sockaddr_in sa;
	int rc;

	if ((rc = get_group(c, root, "web", &g)) || !g)
		return rc;
	if ((rc = check_known_keys(c, g, web_keys)) || (rc = get_string(c, g, "listen", &cf->web_listen, 0)) ||
	    (rc = get_string(c, g, "token_file", &cf->web_token_file, 0)) ||
	    (rc = get_int32(c, g, "requests_per_s", &cf->web_requests_per_s, 1, 100000)))
		return rc;
	if (cf->web_token_file && cf->web_token_file[0] != '/')
		return fail(c, config_setting_get_member(g, "token_file"),
		            "'web.token_file' = \"%s\" must be an absolute path", cf->web_token_file);
	if (cf->web_token_file && !cf->web_token_file[0])
		cf->web_token_file = NULL;
	if (!cf->web_listen[0])
		return 0;
	if (web_parse_listen(cf->web_listen, &sa) != 0)
		return fail(c, config_setting_get_member(g, "listen"),
		            "'web.listen' = \"%s\" must be [IPv4]:port (port 0: any free one), e.g. \"127.0.0.1:8080\"",
		            cf->web_listen);
	if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && !cf->web_token_file)
		return fail(c, config_setting_get_member(g, "listen"),
		            "'web.listen' = \"%s\" is not a loopback address: set 'web.token_file' (a file holding "
		            "the token that browsers must send, mode 0600 or 0640)",
		            cf->web_listen);
	return 0;
}

static int load_schedule(struct ctx *c, const config_setting_t *task, struct task_config *t)
{
	config_setting_t *s = config_setting_get_member(task, "schedule");

	t->interval_s = 0;
	if (!s)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (strcmp(config_setting_get_string(s), "continuous") == 0)
			return 0;
		return fail(c, s, "'schedule' must be \"continuous\" or an interval in seconds, not \"%s\"",
		            config_setting_get_string(s));
	}
	if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
		t->interval_s = config_setting_get_int64(s);
		if (t->interval_s < 1 || t->interval_s > 7 * 86400)
			return fail(c, s, "'schedule' = %lld seconds is out of range [1, 604800]",
			            (long long)t->interval_s);
		return 0;
	}
	return wrong_type(c, s, "\"continuous\" or an integer number of seconds");
}

static size_t name_hash(const char *s)
{
	size_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The index of an earlier task named like task i, or -1 (and i is
 * remembered). TG_ENOMEM when the table cannot grow. */
static int name_seen(struct ctx *c, int i)
{
	const struct task_config *tasks = c->config->tasks;

	if ((size_t)(i + 1) * 2 > c->names_cap) {
		size_t cap = c->names_cap ? c->names_cap * 2 : 64;
		int *grown = calloc(cap, sizeof(*grown));

		if (!grown)
			return TG_ENOMEM;
		for (size_t k = 0; k < c->names_cap; k++)
			if (c->names[k]) {
				size_t at = name_hash(tasks[c->names[k] - 1].name) & (cap - 1);
				while (grown[at])
					at = (at + 1) & (cap - 1);
				grown[at] = c->names[k];
			}
		free(c->names);
		c->names = grown;
		c->names_cap = cap;
	}
	for (size_t at = name_hash(tasks[i].name) & (c->names_cap - 1);; at = (at + 1) & (c->names_cap - 1)) {
		if (!c->names[at]) {
			c->names[at] = i + 1;
			return -1;
		}
		if (strcmp(tasks[c->names[at] - 1].name, tasks[i].name) == 0)
			return c->names[at] - 1;
	}
}

static int load_tasks(struct ctx *c, const config_setting_t *root)
{
	struct config *cf = c->config;
	config_setting_t *list = config_setting_get_member(root, "tasks");
	int n, rc;
	struct task_config *grown;

	if (!list)
		return 0;
	if (!config_setting_is_list(list))
		return wrong_type(c, list, "a list of task groups ( { ... }, ... )");
	n = config_setting_length(list);
	grown = realloc(cf->tasks, sizeof(*cf->tasks) * (size_t)(cf->ntasks + n + 1));
	if (!grown)
		return fail(c, list, "out of memory");
	cf->tasks = grown;
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		struct task_config *t = &cf->tasks[cf->ntasks];

		memset(t, 0, sizeof(*t));
		t->weight = 1;
		t->memory_limit_mb = 1024;
		t->cpu_limit_s = 600;
		if (!config_setting_is_group(g))
			return wrong_type(c, g, "a task group { name = ...; plugin = ...; }");
		t->file = setting_file(c, g);
		t->line = (int)config_setting_source_line(g);
		if ((rc = check_known_keys(c, g, task_keys)) || (rc = get_string(c, g, "name", &t->name, 1)) ||
		    (rc = get_string(c, g, "plugin", &t->plugin, 1)) || (rc = get_bool(c, g, "required", &t->required)) ||
		    (rc = get_number(c, g, "weight", &t->weight, 0.001, 1e6)) || (rc = load_schedule(c, g, t)) ||
		    (rc = get_group(c, g, "settings", &t->settings)) ||
		    (rc = get_int(c, g, "memory_limit_mb", &t->memory_limit_mb, 16, 1 << 20)) ||
		    (rc = get_int(c, g, "cpu_limit_s", &t->cpu_limit_s, 1, 7 * 86400)))
			return rc;
		if (strlen(t->name) > CONFIG_TASK_NAME_MAX)
			return fail(c, config_setting_get_member(g, "name"),
			            "task name \"%.20s...\" is %zu characters long; at most %d", t->name, strlen(t->name),
			            CONFIG_TASK_NAME_MAX);
		if (!valid_name(t->name))
			return fail(c, config_setting_get_member(g, "name"),
			            "task name \"%s\" must be lower-case letters, digits, '_' or '-'", t->name);
		{
			int j = name_seen(c, cf->ntasks);

			if (j == TG_ENOMEM)
				return fail(c, g, "out of memory");
			if (j >= 0)
				return fail(c, config_setting_get_member(g, "name"),
				            "task name \"%s\" is already used at %s:%d", t->name, cf->tasks[j].file,
				            cf->tasks[j].line);
		}
		cf->ntasks++;
	}
	return 0;
}

/* Parse one file into the next slot of config->files. */
static int parse_file(struct config *cf, const char *path, config_setting_t **root, char **errmsg)
{
	config_t *lc;
	FILE *f;
	int rc, ok, err;

	if (cf->nfiles >= CONFIG_MAX_FILES) {
		errmsg_set(errmsg, 0, "%s:0: too many configuration files (at most %d)", path, CONFIG_MAX_FILES);
		return TG_EINVAL;
	}
	/* A FIFO, a huge file, a quadratic one: refused before libconfig. */
	if ((rc = config_file_open(path, &f, errmsg)))
		return rc == TG_EIO ? TG_EINVAL : rc;
	lc = &cf->files[cf->nfiles];
	cf->file_names[cf->nfiles++] = strdup(path);
	config_init(lc);
	/* Strict: no silent int<->float conversion, so a type error is seen. */
	config_set_options(lc, CONFIG_OPTION_SEMICOLON_SEPARATORS | CONFIG_OPTION_COLON_ASSIGNMENT_FOR_GROUPS |
	                           CONFIG_OPTION_OPEN_BRACE_ON_SEPARATE_LINE);
	ok = config_read(lc, f) == CONFIG_TRUE;
	err = errno; /* before fclose() may change it */
	fclose(f);
	if (!ok) {
		if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
			errmsg_set(errmsg, 0, "%s:0: cannot read: %s", path, strerror(err ? err : EIO));
		else
			errmsg_set(errmsg, 0, "%s:%d: %s", config_error_file(lc) ? config_error_file(lc) : path,
			                         config_error_line(lc), config_error_text(lc));
		return TG_EINVAL;
	}
	*root = config_root_setting(lc);
	return 0;
}

static int cfg_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Each *.cfg file of include_dir may add tasks. */
static int load_dropins(struct ctx *c)
{
	struct config *cf = c->config;
	DIR *dir;
	struct dirent *de;
	char *names[CONFIG_MAX_FILES];
	int n = 0, rc = 0;

	dir = opendir(cf->include_dir);
	if (!dir) {
		if (errno == ENOENT)
			return 0; /* an absent drop-in directory is an empty one */
		errmsg_set(c->errmsg, 0, "%s:0: cannot open include_dir %s: %s", cf->path, cf->include_dir,
		                            strerror(errno));
		return TG_EINVAL;
	}
	while ((de = readdir(dir)) != NULL && n < CONFIG_MAX_FILES) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".cfg") != 0)
			continue;
		names[n] = str_printf("%s/%s", cf->include_dir, de->d_name);
		if (names[n])
			n++;
	}
	closedir(dir);
	qsort(names, (size_t)n, sizeof(names[0]), cfg_name_cmp);
	for (int i = 0; i < n; i++) {
		config_setting_t *root;
		if (rc == 0) {
			rc = parse_file(cf, names[i], &root, c->errmsg);
			/* Messages and tasks name the file by the config's own copy:
			 * libconfig knows no name for a stream it read. */
			c->file = cf->file_names[cf->nfiles - 1] ? cf->file_names[cf->nfiles - 1] : names[i];
			if (rc == 0)
				rc = check_known_keys(c, root, dropin_keys);
			if (rc == 0)
				rc = load_tasks(c, root);
		}
	}
	/* Settings keep pointers to file names owned by libconfig, not ours. */
	for (int i = 0; i < n; i++)
		free(names[i]);
	c->file = cf->path;
	return rc;
}

static int load_all(struct ctx *c, const char *path);

int config_load(struct config *cf, const char *path, char **errmsg)
{
	struct ctx c = {.config = cf, .file = path, .errmsg = errmsg};
	int rc = load_all(&c, path);

	free(c.names);
	return rc;
}

static int load_all(struct ctx *c, const char *path)
{
	struct config *cf = c->config;
	config_setting_t *root;
	int rc;

	memset(cf, 0, sizeof(*cf));
	config_defaults(cf);
	cf->path = strdup(path);
	if (!cf->path)
		return TG_ENOMEM;
	if ((rc = parse_file(cf, path, &root, c->errmsg)))
		return rc;
	c->file = cf->path;
	if ((rc = check_known_keys(c, root, root_keys)) || (rc = load_keepa(c, root)) ||
	    (rc = load_tokens(c, root)) || (rc = load_misc(c, root)) || (rc = load_web(c, root)) ||
	    (rc = load_tasks(c, root)))
		return rc;
	if (cf->include_dir && (rc = load_dropins(c)))
		return rc;
	if (cf->nplugin_path == 0)
		return fail(c, root, "'plugin_path' is not set: list the directories plugins are loaded from");
	return 0;
}

void config_release(struct config *cf)
{
	for (int i = 0; i < cf->nfiles; i++) {
		config_destroy(&cf->files[i]);
		free(cf->file_names[i]);
	}
	free(cf->tasks);
	free(cf->path);
	memset(cf, 0, sizeof(*cf));
}

config_setting_t *config_task_setting(const struct task_config *task, const char *name)
{
	return task->settings ? config_setting_get_member(task->settings, name) : NULL;
}

static int setting_matches(const config_setting_t *s, enum tg_setting_type type)
{
	int t = config_setting_type(s);

	switch (type) {
	case TG_SETTING_INT: return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	case TG_SETTING_REAL: return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
	case TG_SETTING_BOOL: return t == CONFIG_TYPE_BOOL;
	case TG_SETTING_STRING: return t == CONFIG_TYPE_STRING;
	case TG_SETTING_GROUP: return t == CONFIG_TYPE_GROUP;
	case TG_SETTING_LIST: return t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY;
	}
	return 0;
}

static const char *setting_type_name(enum tg_setting_type type)
{
	static const char *const names[] = {"an integer", "a number", "a boolean",
	                                    "a string",   "a group",  "a list"};
	return (unsigned)type < 6 ? names[type] : "?";
}

int config_validate_task_settings(const struct task_config *task, const struct tg_setting *declared,
                                  size_t ndeclared, char **errmsg)
{
	struct ctx c = {.file = task->file, .errmsg = errmsg};
	int n;

	if (!task->settings)
		return 0;
	n = config_setting_length(task->settings);
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(task->settings, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct tg_setting *d = NULL;

		for (size_t k = 0; k < ndeclared; k++)
			if (strcmp(declared[k].name, name) == 0)
				d = &declared[k];
		if (!d)
			return fail(&c, s, "task \"%s\": plugin \"%s\" has no setting '%s'", task->name, task->plugin,
			            name);
		if (!setting_matches(s, d->type))
			return fail(&c, s, "task \"%s\": setting '%s' must be %s, not %s", task->name, name,
			            setting_type_name(d->type), type_name(config_setting_type(s)));
	}
	return 0;
}
