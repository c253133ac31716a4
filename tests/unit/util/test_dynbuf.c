/*
 * test_dynbuf.c - the capped buffer: it grows, it never passes its cap,
 * failure is sticky, and take() hands the string over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/dynbuf.h"

static void test_grows_and_terminates(void **state)
{
	struct dynbuf b = DYNBUF_INIT(1 << 20);
	(void)state;

	assert_string_equal(dynbuf_str(&b), "");
	for (int i = 0; i < 10000; i++)
		assert_int_equal(dynbuf_printf(&b, "%d,", i % 10), 0);
	assert_int_equal(dynbuf_len(&b), 20000);
	assert_int_equal(strlen(dynbuf_str(&b)), 20000);
	assert_memory_equal(dynbuf_str(&b), "0,1,2,", 6);
	assert_true(b.alloc <= (1 << 20) + 1);
	dynbuf_truncate(&b, 3);
	assert_string_equal(dynbuf_str(&b), "0,1");
	dynbuf_reset(&b);
	assert_string_equal(dynbuf_str(&b), "");
	dynbuf_free(&b);
	dynbuf_free(&b); /* twice is harmless */
}

static void test_cap_is_exact_and_sticky(void **state)
{
	struct dynbuf b = DYNBUF_INIT(8);
	(void)state;

	assert_int_equal(dynbuf_addstr(&b, "12345678"), 0); /* exactly the cap */
	assert_int_equal(dynbuf_addc(&b, '9'), TG_EOVERSIZE);
	assert_string_equal(dynbuf_str(&b), "12345678"); /* unchanged, not cut */
	assert_true(b.alloc <= 9);
	/* Sticky: even a fitting append fails now, so one check at the end
	 * suffices. */
	dynbuf_truncate(&b, 2);
	assert_int_equal(dynbuf_addstr(&b, "x"), TG_EOVERSIZE);
	assert_int_equal(dynbuf_error(&b), TG_EOVERSIZE);
	assert_null(dynbuf_take(&b)); /* a failed buffer hands over nothing */
	assert_int_equal(dynbuf_len(&b), 0);

	/* printf that would pass the cap leaves no partial text. */
	b = DYNBUF_INIT(10);
	assert_int_equal(dynbuf_printf(&b, "%s", "abc"), 0);
	assert_int_equal(dynbuf_printf(&b, "%s", "defghijklmn"), TG_EOVERSIZE);
	assert_string_equal(dynbuf_str(&b), "abc");
	dynbuf_free(&b);
}

static void test_reserve_and_take(void **state)
{
	struct dynbuf b = DYNBUF_INIT(100);
	char *s;
	(void)state;

	assert_int_equal(dynbuf_reserve(&b, 10), 0);
	assert_true(dynbuf_room(&b) >= 10);
	memcpy(dynbuf_tail(&b), "hello", 5);
	dynbuf_grew(&b, 5);
	assert_string_equal(dynbuf_str(&b), "hello");
	assert_int_equal(dynbuf_reserve(&b, 96), TG_EOVERSIZE);
	dynbuf_reset(&b); /* clears the failure */
	assert_int_equal(dynbuf_add(&b, "a\0b", 3), 0);
	assert_int_equal(dynbuf_len(&b), 3);
	s = dynbuf_take(&b);
	assert_memory_equal(s, "a\0b", 4);
	free(s);
	assert_string_equal(dynbuf_str(&b), "");
	s = dynbuf_take(&b); /* empty, not NULL */
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grows_and_terminates),
		cmocka_unit_test(test_cap_is_exact_and_sticky),
		cmocka_unit_test(test_reserve_and_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
