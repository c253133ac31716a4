/*
 * log.c - the host's one logging path (see log.h).
 */
#include "observe/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048
#define LOG_SECRETS_MAX 4
#define LOG_RECENT 64

struct recent_line {
	uint64_t hash;
	time_t first;      /* when it was last really written */
	unsigned suppressed;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_threshold = TG_LOG_INFO;
static FILE *log_out;
static int log_journal = -1; /* -1: not yet detected */
static char *log_secrets[LOG_SECRETS_MAX];
static int repeat_window = 30;
static struct recent_line recent[LOG_RECENT];

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities: err, warning, info, debug */
static const int level_priority[] = {3, 4, 6, 7};

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (name && strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < 0 || level > 3)
		return "?";
	return level_names[level];
}

/* The journal sets JOURNAL_STREAM=dev:ino of the stream it reads; only when
 * it matches our stderr are we really writing to it. */
int log_is_journal(FILE *out)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(fileno(out), &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(int level, FILE *out)
{
	pthread_mutex_lock(&log_lock);
	if (level >= TG_LOG_ERROR && level <= TG_LOG_DEBUG)
		log_threshold = level;
	log_out = out;
	log_journal = -1;
	memset(recent, 0, sizeof(recent));
	pthread_mutex_unlock(&log_lock);
}

int log_get_level(void)
{
	return log_threshold;
}

void log_add_secret(const char *secret)
{
	if (!secret || !*secret)
		return;
	pthread_mutex_lock(&log_lock);
	for (int i = 0; i < LOG_SECRETS_MAX; i++) {
		if (log_secrets[i] && strcmp(log_secrets[i], secret) == 0)
			break;
		if (!log_secrets[i]) {
			log_secrets[i] = strdup(secret);
			break;
		}
	}
	pthread_mutex_unlock(&log_lock);
}

void log_clear_secrets(void)
{
	pthread_mutex_lock(&log_lock);
	for (int i = 0; i < LOG_SECRETS_MAX; i++) {
		free(log_secrets[i]);
		log_secrets[i] = NULL;
	}
	pthread_mutex_unlock(&log_lock);
}

void log_set_repeat_window(int seconds)
{
	repeat_window = seconds < 0 ? 0 : seconds;
}

/* Caller holds log_lock. */
static void redact_locked(char *buf)
{
	static const char mask[] = "***";

	for (int i = 0; i < LOG_SECRETS_MAX; i++) {
		const char *secret = log_secrets[i];
		size_t slen;
		char *hit;

		if (!secret)
			continue;
		slen = strlen(secret);
		while ((hit = strstr(buf, secret)) != NULL) {
			size_t mlen = slen < sizeof(mask) - 1 ? slen : sizeof(mask) - 1;
			memcpy(hit, mask, mlen);
			memmove(hit + mlen, hit + slen, strlen(hit + slen) + 1);
		}
	}
}

void log_redact(char *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&log_lock);
	redact_locked(buf);
	pthread_mutex_unlock(&log_lock);
}

static uint64_t fnv1a(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = a; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = b; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

/* Decide whether an identical line was written within the window. Returns
 * 1 to suppress; otherwise 0 and *was_suppressed tells how many copies were
 * swallowed since the last one written. Caller holds log_lock. */
static int suppress_repeat(uint64_t hash, time_t now, unsigned *was_suppressed)
{
	struct recent_line *slot = &recent[hash % LOG_RECENT];

	*was_suppressed = 0;
	if (repeat_window == 0)
		return 0;
	if (slot->hash == hash && now - slot->first < repeat_window) {
		slot->suppressed++;
		return 1;
	}
	if (slot->hash == hash)
		*was_suppressed = slot->suppressed;
	slot->hash = hash;
	slot->first = now;
	slot->suppressed = 0;
	return 0;
}

/*
 * Copy in to out (size bytes) as one printable line. A message may carry
 * what a plugin or a server put there: a newline must not forge a further
 * line, and ESC or another control byte must not reach a terminal (which
 * would obey it: recolour, move the cursor, retitle the window). Newlines
 * become spaces; other C0 controls, DEL and the C1 controls (UTF-8
 * C2 80..C2 9F, CSI among them) become \xNN. Other UTF-8 passes.
 */
static void escape_line(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && o + 1 < size; p++) {
		unsigned c = *p;

		if (c == '\n' || c == '\r') {
			out[o++] = ' ';
		} else if (c < 0x20 && c != '\t') {
			if (o + 5 > size)
				break;
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
		} else if (c == 0x7f || (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
			if (o + 5 > size)
				break;
			if (c == 0xc2)
				c = *++p;
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

void log_vmsg(int level, const char *task, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	FILE *out;
	struct timespec ts;
	unsigned swallowed;

	char *full = NULL;

	if (level > log_threshold)
		return;
	if (level < TG_LOG_ERROR)
		level = TG_LOG_ERROR;
	/* Mask secrets in the whole message before cutting it to a line's
	 * length: cut first, and a key split at the edge would leak its start. */
	if (vasprintf(&full, fmt, ap) < 0)
		full = NULL;
	if (full) {
		log_redact(full);
		escape_line(msg, sizeof(msg), full);
		free(full);
	} else {
		msg[0] = '\0';
	}
	clock_gettime(CLOCK_REALTIME, &ts);

	pthread_mutex_lock(&log_lock);
	redact_locked(msg);
	if (suppress_repeat(fnv1a(task, msg), ts.tv_sec, &swallowed)) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	out = log_out ? log_out : stderr;
	if (log_journal < 0)
		log_journal = log_is_journal(out);
	if (log_journal) {
		fprintf(out, "<%d>%s%s%s%s", level_priority[level], task ? "[" : "", task ? task : "",
		        task ? "] " : "", msg);
	} else {
		struct tm tm;
		char when[32];
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(out, "%s.%03ldZ %-5s [%s] %s", when, ts.tv_nsec / 1000000, level_names[level],
		        task ? task : "tollgate", msg);
	}
	if (swallowed)
		fprintf(out, " (repeated %u more times)", swallowed);
	fputc('\n', out);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(int level, const char *task, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, task, fmt, ap);
	va_end(ap);
}

const char *log_code_words(int code)
{
	switch (code) {
	case TG_OK: return "no error";
	case TG_EINVAL: return "invalid argument or setting";
	case TG_ENOMEM: return "out of memory";
	case TG_EIO: return "operating-system error";
	case TG_ESTOPPED: return "stopped";
	case TG_ETIMEDOUT: return "timed out";
	case TG_EBUSY: return "busy";
	case TG_ENOTFOUND: return "not found";
	case TG_EKEEPA: return "Keepa refused the call";
	case TG_EOVERSIZE: return "call too expensive for the bucket";
	case TG_ENETWORK: return "network or server error after retries";
	case TG_ESTORAGE: return "storage error";
	case TG_ENOTSUP: return "not supported by this host";
	case TG_ETYPE: return "wrong type";
	default: return "unknown error";
	}
}
