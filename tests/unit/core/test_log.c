/*
 * test_log.c - one line per event; secrets masked whatever code logs them;
 * identical lines rate-limited and counted; syslog prefixes for the journal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "observe/log.h"

static char *captured(FILE *f)
{
	long len;
	char *buf;

	fflush(f);
	len = ftell(f);
	buf = calloc(1, (size_t)len + 1);
	rewind(f);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		buf[0] = '\0';
	fseek(f, 0, SEEK_END);
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_format_and_levels(void **state)
{
	FILE *f = tmpfile();
	char *out;
	(void)state;

	unsetenv("JOURNAL_STREAM");
	log_setup(TG_LOG_INFO, f);
	log_info("upserter", "run done: %d rows", 150);
	log_debug("upserter", "not shown at info");
	log_error(NULL, "two\nlines");
	out = captured(f);
	/* 2026-11-28T21:30:39.770Z info  [upserter] run done: 150 rows */
	assert_non_null(strstr(out, "Z info  [upserter] run done: 150 rows\n"));
	assert_null(strstr(out, "not shown"));
	/* A message cannot forge a second line. */
	assert_non_null(strstr(out, "error [tollgate] two lines\n"));
	assert_int_equal(count(out, "\n"), 2);
	assert_int_equal(log_level_parse("debug"), TG_LOG_DEBUG);
	assert_int_equal(log_level_parse("loud"), -1);
	free(out);
	fclose(f);
}

static void test_secrets_masked(void **state)
{
	FILE *f = tmpfile();
	char msg[128] = "GET /product?key=0123456789abcdef0123456789abcdef&asin=B00";
	char *out;
	(void)state;

	log_setup(TG_LOG_INFO, f);
	log_add_secret("0123456789abcdef0123456789abcdef");
	log_warn("backfiller", "request failed: %s", msg);
	out = captured(f);
	assert_null(strstr(out, "0123456789abcdef"));
	assert_non_null(strstr(out, "key=***&asin=B00"));
	log_redact(msg);
	assert_string_equal(msg, "GET /product?key=***&asin=B00");
	/* A key that straddles the line-length limit is masked before the cut,
	 * so not even its first characters show. */
	{
		char pad[2050];
		memset(pad, 'x', 2040);
		pad[2040] = '\0';
		log_warn("t", "%s0123456789abcdef0123456789abcdef", pad);
		free(out);
		out = captured(f);
		assert_null(strstr(out, "0123456"));
	}
	log_clear_secrets();
	free(out);
	fclose(f);
}

static void test_repeats_suppressed(void **state)
{
	FILE *f = tmpfile();
	char *out;
	(void)state;

	log_setup(TG_LOG_INFO, f);
	log_set_repeat_window(1);
	for (int i = 0; i < 1000; i++)
		log_warn("janitor", "cannot reach Keepa: connection refused");
	log_warn("janitor", "a different line");
	usleep(1100 * 1000);
	log_warn("janitor", "cannot reach Keepa: connection refused");
	out = captured(f);
	/* Written once, then once more after the window with the count. */
	assert_int_equal(count(out, "cannot reach Keepa"), 2);
	assert_non_null(strstr(out, "connection refused (repeated 999 more times)\n"));
	assert_int_equal(count(out, "a different line"), 1);
	log_set_repeat_window(30);
	free(out);
	fclose(f);
}

static void test_journal_prefix(void **state)
{
	FILE *f = tmpfile();
	struct stat st;
	char js[64], *out;
	(void)state;

	/* JOURNAL_STREAM names our output stream: syslog priorities, no time. */
	assert_int_equal(fstat(fileno(f), &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_setup(TG_LOG_DEBUG, f);
	log_error("a", "e");
	log_warn("a", "w");
	log_info(NULL, "i");
	log_debug("a", "d");
	out = captured(f);
	assert_string_equal(out, "<3>[a] e\n<4>[a] w\n<6>i\n<7>[a] d\n");
	free(out);
	/* Another stream (say, a redirect to a file): timestamps again. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_setup(TG_LOG_INFO, f);
	log_info("a", "plain");
	out = captured(f);
	assert_non_null(strstr(out, "Z info  [a] plain\n"));
	unsetenv("JOURNAL_STREAM");
	free(out);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_levels),
		cmocka_unit_test(test_secrets_masked),
		cmocka_unit_test(test_repeats_suppressed),
		cmocka_unit_test(test_journal_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
