/*
 * tollgate.h - the one header a tollgate plugin includes.
 *
 * A plugin is a shared object that exports exactly one symbol, the entry
 * function named by TG_PLUGIN_ENTRY_NAME (it carries the ABI major, so a host
 * of another major fails at dlsym() with "rebuild the plugin" before it reads
 * any structure). The entry returns a constant descriptor (struct tg_plugin)
 * that names the plugin, declares the token cost of every kind of Keepa call
 * it makes, lists the settings it accepts and points at three callbacks:
 * init, run and destroy.
 *
 * Everything the plugin needs from the host - logging, settings, the clock,
 * an interruptible sleep, progress, locks, storage, checkpoint state and Keepa
 * calls - reaches it through a const table of function pointers
 * (struct tg_services) passed to init. The table is versioned by its size and
 * only ever appended to: check TG_SERVICES_HAS() before using a member added
 * after ABI 1.0. A plugin never links against the host, so a unit test can
 * hand it a fake table.
 *
 * Conventions: functions return 0 (TG_OK) or a negative TG_E* code; where a
 * message helps, an optional `char **errmsg` receives one that the caller
 * frees with services->free() (the host only writes *errmsg: it never reads
 * or frees what was there). Calls that return only a code explain their
 * failure through services->last_error() (ABI 1.1). Strings are UTF-8 and
 * NUL-terminated.
 */
#ifndef TOLLGATE_TOLLGATE_H
#define TOLLGATE_TOLLGATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The ABI this header describes, and the compatibility rule (SQLite's):
 *
 *  - Major: a host loads only plugins of its own major. The entry symbol's
 *    name carries it, so a mismatch fails at dlsym() ("rebuild the plugin").
 *  - Minor: additions only. Structures are appended to, never reordered;
 *    a member's meaning never changes. A host loads a plugin of ANY minor of
 *    its major, older or newer.
 *  - A newer plugin on an older host: struct tg_services is shorter there.
 *    The plugin checks every member added after 1.0 with TG_SERVICES_HAS()
 *    before it calls it, and does without (or refuses in init() with a
 *    message) when it is missing. Members of 1.0 are always there.
 *  - An older plugin on a newer host: it never looks past the members it
 *    knows; the host reads only the 1.0 part of struct tg_plugin from it
 *    (struct_size tells the host how much there is).
 *
 * History: 1.0 first release; 1.1 added services->last_error(); 1.2 added
 * services->not_before_ms(); 1.3 added services->table_index().
 */
#define TG_ABI_MAJOR 1
#define TG_ABI_MINOR 3

/* The entry symbol a plugin exports: its name carries the ABI major. */
#define TG_PLUGIN_ENTRY tollgate_plugin_v1
#define TG_PLUGIN_ENTRY_NAME "tollgate_plugin_v1"

/* Mark the entry symbol visible even when the plugin is built with
 * -fvisibility=hidden (recommended: only the entry is exported). */
#if defined(__GNUC__)
#define TG_EXPORT __attribute__((visibility("default")))
#else
#define TG_EXPORT
#endif

#if defined(__GNUC__)
#define TG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TG_PRINTF(fmt, args)
#endif

/* cJSON is the JSON representation shared by host and plugins (Debian's
 * libcjson). Plugins that read Keepa answers include <cjson/cJSON.h> and link
 * libcjson themselves; this header only needs the tag. */
struct cJSON;

/* ---------------------------------------------------------------- errors */

enum tg_error {
	TG_OK = 0,
	TG_EINVAL = -1,      /* bad argument (unknown setting, column, kind ...) */
	TG_ENOMEM = -2,      /* out of memory */
	TG_EIO = -3,         /* operating-system error (files, sockets) */
	TG_ESTOPPED = -4,    /* the daemon is shutting down: return from run() */
	TG_ETIMEDOUT = -5,   /* a bounded wait ran out (locks) */
	TG_EBUSY = -6,       /* a try-lock found the lock held */
	TG_ENOTFOUND = -7,   /* no such row, state key or setting */
	TG_EKEEPA = -8,      /* Keepa answered with an error (status + message) */
	TG_EOVERSIZE = -9,   /* a call costs more than the bucket can ever fund: split it */
	TG_ENETWORK = -10,   /* network, 5xx or garbage answers, after retries */
	TG_ESTORAGE = -11,   /* the storage backend failed */
	TG_ENOTSUP = -12,    /* the host does not provide this service */
	TG_ETYPE = -13,      /* a value or setting has another type than asked */
};

/* ------------------------------------------------------- values and rows */

/* Column and value types. Prices are TG_INT in the smallest currency unit
 * (cents); times are TG_INT Unix seconds (UTC). */
enum tg_type {
	TG_NULL = 0,
	TG_INT = 1,
	TG_REAL = 2,
	TG_TEXT = 3,
};

/* One named value: a cell of a row, a key part or a filter operand. */
struct tg_value {
	const char *column;
	enum tg_type type;
	union {
		int64_t i;
		double r;
		const char *s;
	} v;
};

/* Helpers to build values in an initializer list. */
#define TG_VINT(col, x) ((struct tg_value){.column = (col), .type = TG_INT, .v.i = (int64_t)(x)})
#define TG_VREAL(col, x) ((struct tg_value){.column = (col), .type = TG_REAL, .v.r = (double)(x)})
#define TG_VTEXT(col, x) ((struct tg_value){.column = (col), .type = TG_TEXT, .v.s = (x)})
#define TG_VNULL(col) ((struct tg_value){.column = (col), .type = TG_NULL})

/* A declared column. Key columns together form the table's primary key. */
struct tg_column {
	const char *name;
	enum tg_type type;
	bool key;
};

/* A table as a plugin declares it. Names are [a-z_][a-z0-9_]* (validated);
 * the host creates the table or adds the columns a newer plugin version
 * declares, never dropping rows. */
struct tg_table {
	const char *name;
	const struct tg_column *columns;
	size_t ncolumns;
};

/* Comparison of a filter: column OP value. */
enum tg_op { TG_EQ, TG_NE, TG_LT, TG_LE, TG_GT, TG_GE };

struct tg_filter {
	enum tg_op op;
	struct tg_value value; /* value.column names the column */
};

/* Called once per row; the values are valid only during the call. Return
 * non-zero to stop the iteration (that value is then returned by the call
 * that iterates). */
typedef int (*tg_row_fn)(void *ud, const struct tg_value *row, size_t ncolumns);

/* ------------------------------------------------------------- settings */

enum tg_setting_type {
	TG_SETTING_INT,
	TG_SETTING_REAL,
	TG_SETTING_BOOL,
	TG_SETTING_STRING,
	TG_SETTING_GROUP, /* a libconfig group, read with setting_json() */
	TG_SETTING_LIST,  /* a libconfig list or array, read with setting_json() */
};

/* A setting a plugin accepts under its task's `settings` group. The host
 * rejects unknown names and wrong types with file:line before any plugin
 * runs, and `tollgate plugins` prints these as documentation. */
struct tg_setting {
	const char *name;
	enum tg_setting_type type;
	const char *default_value; /* as text ("60", "true"), NULL if none */
	const char *description;   /* one line */
};

/* ------------------------------------------------------------ cost model */

/* One kind of Keepa call the plugin makes and what it costs, for the
 * scheduler's estimate before the server says: fixed + per_unit * units.
 * The host learns the real cost from the server's tokensConsumed and never
 * estimates below this declaration. */
struct tg_cost {
	const char *kind;   /* "deal", "product", ...: named in keepa_call() */
	const char *unit;   /* "page", "asin", ... */
	double fixed;       /* tokens per call regardless of units */
	double per_unit;    /* tokens per unit */
	const char *description;
};

/* ------------------------------------------------------------ Keepa calls */

struct tg_keepa_param {
	const char *name;
	const char *value; /* sent URL-encoded by the host */
};

/* One Keepa request. The host adds the access key and the domain when the
 * params do not name one; a plugin never sees the key. */
struct tg_keepa_request {
	const char *kind;      /* a kind of the plugin's cost model */
	int64_t units;         /* how many units (pages, ASINs) the call covers */
	const char *path;      /* "/deal", "/product", ... */
	const struct tg_keepa_param *params;
	size_t nparams;
	const char *json_body; /* POST this JSON when not NULL (e.g. /deal) */
};

/* ---------------------------------------------------------------- logging */

enum tg_log_level { TG_LOG_ERROR = 0, TG_LOG_WARN = 1, TG_LOG_INFO = 2, TG_LOG_DEBUG = 3 };

/* ------------------------------------------------------------ the services */

/* Opaque: the host's view of one running task. */
struct tg_task;

struct tg_services {
	/* sizeof(struct tg_services) of the host that filled the table. */
	size_t struct_size;

	/* Log one line tagged with the task's name. The host rate-limits
	 * repeated identical lines. */
	void (*log)(struct tg_task *task, enum tg_log_level level, const char *fmt, ...) TG_PRINTF(3, 4);

	/* Settings of the task (declared in the descriptor; defaults applied).
	 * TG_ENOTFOUND when neither configured nor defaulted, TG_ETYPE when of
	 * another type. A string stays valid for the task's lifetime. */
	int (*setting_int)(struct tg_task *task, const char *name, int64_t *out);
	int (*setting_real)(struct tg_task *task, const char *name, double *out);
	int (*setting_bool)(struct tg_task *task, const char *name, bool *out);
	int (*setting_string)(struct tg_task *task, const char *name, const char **out);
	/* A group or list setting as a new cJSON tree (numbers stay numbers);
	 * the caller frees it with cJSON_Delete(). */
	int (*setting_json)(struct tg_task *task, const char *name, struct cJSON **out);

	/* Wall-clock time, Unix milliseconds. Virtual in simulations. */
	int64_t (*now_ms)(struct tg_task *task);
	/* Wait up to ms milliseconds, visibly ("sleeping until ..." in status),
	 * returning early with TG_ESTOPPED at shutdown. Not for pacing Keepa
	 * calls: the scheduler does that. */
	int (*sleep_ms)(struct tg_task *task, int64_t ms);
	/* True once the daemon is shutting down: finish or return soon. */
	bool (*should_stop)(struct tg_task *task);

	/* Report progress: done of total (total < 0 when unknown) in unit. */
	void (*progress)(struct tg_task *task, int64_t done, int64_t total, const char *unit);

	/* Named locks that die with their holder, even with its process.
	 * timeout_ms 0 tries once (TG_EBUSY), < 0 waits until stopped. */
	int (*lock)(struct tg_task *task, const char *name, int64_t timeout_ms);
	int (*unlock)(struct tg_task *task, const char *name);

	/* Storage. declare() creates the table or adds missing columns. */
	int (*table_declare)(struct tg_task *task, const struct tg_table *table, char **errmsg);
	/* Transactions cover rows and checkpoint state together. */
	int (*begin)(struct tg_task *task);
	int (*commit)(struct tg_task *task);
	int (*rollback)(struct tg_task *task);
	/* Insert or update the row whose key columns are among values; only the
	 * named columns are written, every other column is left as it was. */
	int (*upsert)(struct tg_task *task, const char *table, const struct tg_value *values, size_t nvalues);
	/* The row with this key: fn is called once, or TG_ENOTFOUND. */
	int (*get)(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey, tg_row_fn fn,
	           void *ud);
	/* Delete the row with this key (0 even when there was none). */
	int (*remove)(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey);
	/* Rows matching every filter, ordered by order_by (a column name,
	 * "-name" for descending, or NULL), at most limit (< 0: all). */
	int (*select)(struct tg_task *task, const char *table, const struct tg_filter *filters, size_t nfilters,
	              const char *order_by, int64_t limit, tg_row_fn fn, void *ud);

	/* Checkpoint state: small text values per task and key. A set inside
	 * begin()/commit() commits or rolls back with the rows. get returns a
	 * new string to free with free(), or TG_ENOTFOUND. */
	int (*state_get)(struct tg_task *task, const char *key, char **value);
	int (*state_set)(struct tg_task *task, const char *key, const char *value);

	/* Make one Keepa call through the token scheduler. Blocks, visibly and
	 * interruptibly, until the scheduler dispatches it; a 429 is waited out
	 * and resent, 5xx and network errors are retried with back-off. On 0,
	 * *response is the whole JSON answer (envelope and payload), to free
	 * with cJSON_Delete(). An integer literal of magnitude 2^53 or more
	 * (beyond what a double holds exactly) also has its exact digits in
	 * its number node's valuestring; NULL for every other number (GUIDE.md,
	 * "Numbers"). Errors: TG_EKEEPA (Keepa refused: *errmsg has
	 * the status and message), TG_ENETWORK, TG_EOVERSIZE (split the call),
	 * TG_ESTOPPED, TG_EINVAL (unknown kind). */
	int (*keepa_call)(struct tg_task *task, const struct tg_keepa_request *request, struct cJSON **response,
	                  char **errmsg);
	/* The largest token cost per call that keeps the other tasks' wait
	 * under the configured latency target: size batches from it. */
	int64_t (*budget_hint)(struct tg_task *task);

	/* Free memory the host handed over (errmsg strings, state values). */
	void (*free)(void *ptr);

	/* ---- ABI 1.1: check with TG_SERVICES_HAS(services, last_error) ---- */

	/* Why the most recent failed call of this task failed, as one line
	 * ("storage commit: database or disk is full", "lock \"x\": timed out"):
	 * storage, state and lock calls return only a code, and this is their
	 * message (SQLite's own reason for storage). It stays until another
	 * call of the task fails; read it right after the failing call. Never
	 * NULL; owned by the host, valid until the task's next service call. */
	const char *(*last_error)(struct tg_task *task);

	/* ---- ABI 1.2: check with TG_SERVICES_HAS(services, not_before_ms) ---- */

	/* Called during run(): start the next run no sooner than ms
	 * milliseconds after this one returns, for a task that knows when its
	 * next run becomes useful (the upserter: when Keepa's cache of its last
	 * query expires, so no run lands inside it to find nothing to read).
	 * It only delays: an interval task still waits for its schedule, a
	 * continuous one for *idle_s, whichever is later. The last call in a
	 * run counts; a run that makes none keeps the usual wait. The wait is
	 * shown as "sleeping" in status, and ends at shutdown. */
	void (*not_before_ms)(struct tg_task *task, int64_t ms);

	/* ---- ABI 1.3: check with TG_SERVICES_HAS(services, table_index) ---- */

	/* Make sure a table this plugin declared has an index on column (then
	 * the key columns), so a select filtered by a range of column, or by
	 * column = value, and ordered by it reads only the rows it returns:
	 * declare the index of every select a run makes on a table that grows.
	 * Call it in init(), after table_declare(); it is idempotent (the first
	 * call on a big table builds the index, later ones find it). Returns
	 * TG_EINVAL for an undeclared table or an unknown column, TG_ENOTSUP
	 * when the storage backend has no indexes, TG_ESTORAGE with the
	 * database's reason in *errmsg (free with free()). */
	int (*table_index)(struct tg_task *task, const char *table, const char *column, char **errmsg);
};

/* True when the host's table is large enough to contain member. */
#define TG_SERVICES_HAS(svc, member)                                                                   \
	((svc)->struct_size >= offsetof(struct tg_services, member) + sizeof((svc)->member))

/* ------------------------------------------------------------ the plugin */

/* Returned by run() through *idle_s to say when a continuous task wants to
 * run again: never (its work is complete until the daemon restarts). */
#define TG_IDLE_FOREVER (-1)

struct tg_plugin {
	uint32_t abi_major;  /* TG_ABI_MAJOR */
	uint32_t abi_minor;  /* TG_ABI_MINOR */
	size_t struct_size;  /* sizeof(struct tg_plugin) */

	const char *name;    /* [a-z][a-z0-9_-]*, unique among loaded plugins */
	const char *version;
	const char *description;

	const struct tg_cost *costs;
	size_t ncosts;
	const struct tg_setting *settings;
	size_t nsettings;

	/* Set up the task: read settings, declare tables. *state is passed to
	 * run() and destroy(). On failure return < 0 with a message in *errmsg
	 * (allocated with malloc(); the host frees it). */
	int (*init)(struct tg_task *task, const struct tg_services *services, void **state, char **errmsg);
	/* Do one run. Interval tasks are run again on their schedule; for a
	 * continuous task, *idle_s (preset by the host to 60) says how long to
	 * stay idle before the next run, or TG_IDLE_FOREVER. Return < 0 with a
	 * message (malloc()ed) on failure: the host logs it and retries with
	 * back-off. Return TG_ESTOPPED when services->should_stop() said so. */
	int (*run)(void *state, int64_t *idle_s, char **errmsg);
	/* Release everything init() and run() allocated. */
	void (*destroy)(void *state);
};

/* The entry point every plugin defines. */
TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void);

#ifdef __cplusplus
}
#endif

#endif /* TOLLGATE_TOLLGATE_H */
