/*
 * log.h - one line per event: time, level, task, message.
 *
 * Lines go to stderr. When stderr is the systemd journal (JOURNAL_STREAM
 * names it) each line starts with a syslog priority prefix ("<6>") instead of
 * a timestamp, which the journal adds itself. Registered secrets (the Keepa
 * key) are masked in every line, whatever code produced it, and identical
 * lines repeated within a window are suppressed and counted.
 */
#ifndef TG_HOST_LOG_H
#define TG_HOST_LOG_H

#include <stdarg.h>
#include <stdio.h>

#include <tollgate/tollgate.h>

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

/* Set the threshold (TG_LOG_*) and where lines go (NULL: stderr). */
void log_setup(int level, FILE *out);
int log_get_level(void);

/* Mask this string in every later line (e.g. the Keepa key). A copy is
 * kept; at most a few secrets are held. NULL or "" is ignored. */
void log_add_secret(const char *secret);
/* Forget all secrets (tests). */
void log_clear_secrets(void);

/* Seconds during which an identical line is not repeated (default 30; 0
 * turns suppression off). */
void log_set_repeat_window(int seconds);

/* A TG_E* code in words, for log lines: "Keepa refused the call",
 * never a bare "-8". */
const char *log_code_words(int code);

/* True when out is the stream the systemd journal reads (JOURNAL_STREAM
 * names its device and inode): lines then need "<N>" priority prefixes. */
int log_is_journal(FILE *out);

/* Log one line. task may be NULL (the host itself). */
void log_msg(int level, const char *task, const char *fmt, ...) TG_PRINTF(3, 4);
void log_vmsg(int level, const char *task, const char *fmt, va_list ap) TG_PRINTF(3, 0);

/* Replace every occurrence of the registered secrets in buf (in place, the
 * mask is never longer than the secret). Exposed for error messages that
 * leave the process by other paths (status, HTTP errors). */
void log_redact(char *buf);

#define log_error(task, ...) log_msg(TG_LOG_ERROR, (task), __VA_ARGS__)
#define log_warn(task, ...) log_msg(TG_LOG_WARN, (task), __VA_ARGS__)
#define log_info(task, ...) log_msg(TG_LOG_INFO, (task), __VA_ARGS__)
#define log_debug(task, ...) log_msg(TG_LOG_DEBUG, (task), __VA_ARGS__)

#endif
