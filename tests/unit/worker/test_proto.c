/*
 * test_proto.c - the worker protocol's pieces: frames survive any split and
 * refuse what is not a frame; the host's check passes every message a
 * worker legitimately sends and refuses each kind of malformed one with the
 * field named; settings keep their libconfig types across the boundary;
 * a descriptor arrives as it left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/desc.h"
#include "worker/proto.h"
#include "worker/settings_text.h"

static cJSON *parse(const char *text)
{
	cJSON *m = cJSON_Parse(text);
	assert_non_null(m);
	return m;
}

static void frames_cross_a_socket_whole(void **state)
{
	int sv[2];
	struct proto_reader r;
	cJSON *m = parse("{\"t\":\"log\",\"level\":2,\"msg\":\"h\\u00e9llo\"}"), *got = NULL;
	const char *why = NULL;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(proto_send(sv[0], m), 0);
	assert_int_equal(proto_send(sv[0], m), 0);
	close(sv[0]);
	proto_reader_init(&r, PROTO_WORKER_FRAME_MAX);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(proto_recv(sv[1], &r, &got, &why), 1);
		assert_string_equal(proto_str(got, "msg"), "h\xc3\xa9llo");
		cJSON_Delete(got);
	}
	assert_int_equal(proto_recv(sv[1], &r, &got, &why), 0); /* end of file */
	proto_reader_release(&r);
	close(sv[1]);
	cJSON_Delete(m);
}

static void frames_survive_any_split(void **state)
{
	const char body[] = "{\"t\":\"budget\"}";
	unsigned char wire[64];
	size_t n = sizeof(body) - 1;
	struct proto_reader r;
	cJSON *got = NULL;
	const char *why = NULL;
	int frames = 0;

	(void)state;
	wire[0] = wire[1] = wire[2] = 0;
	wire[3] = (unsigned char)n;
	memcpy(wire + 4, body, n);
	memcpy(wire + 4 + n, wire, 4 + n); /* two frames back to back */
	proto_reader_init(&r, PROTO_WORKER_FRAME_MAX);
	for (size_t i = 0; i < 2 * (4 + n); i++) {
		assert_int_equal(proto_reader_feed(&r, wire + i, 1), 0);
		while (proto_reader_next(&r, &got, &why) == 1) {
			assert_string_equal(proto_str(got, "t"), "budget");
			cJSON_Delete(got);
			frames++;
		}
	}
	assert_int_equal(frames, 2);
	proto_reader_release(&r);
}

static void non_frames_are_refused(void **state)
{
	struct proto_reader r;
	cJSON *got = NULL;
	const char *why = NULL;

	(void)state;
	proto_reader_init(&r, 1024);
	/* A length over the maximum is refused before its body arrives. */
	proto_reader_feed(&r, "\x00\x00\x04\x01", 4);
	assert_int_equal(proto_reader_next(&r, &got, &why), TG_EINVAL);
	assert_string_equal(why, "a frame longer than the protocol allows");
	proto_reader_release(&r);

	proto_reader_init(&r, 1024);
	proto_reader_feed(&r, "\x00\x00\x00\x00", 4);
	assert_int_equal(proto_reader_next(&r, &got, &why), TG_EINVAL);
	assert_string_equal(why, "an empty frame");
	proto_reader_release(&r);

	proto_reader_init(&r, 1024);
	proto_reader_feed(&r, "\x00\x00\x00\x03[1]", 7);
	assert_int_equal(proto_reader_next(&r, &got, &why), TG_EINVAL);
	assert_string_equal(why, "a frame that is not one JSON object");
	assert_null(got);
	proto_reader_release(&r);
}

static void check_one(const char *text, int want_type, const char *want_reason)
{
	cJSON *m = parse(text);
	char why[200] = "";
	int type = proto_check_from_worker(m, why, sizeof(why));

	if (want_reason) {
		assert_int_equal(type, TG_EINVAL);
		assert_non_null(strstr(why, want_reason));
	} else {
		if (type != want_type)
			fail_msg("%s: %d (%s)", text, type, why);
	}
	cJSON_Delete(m);
}

static void legitimate_messages_pass(void **state)
{
	(void)state;
	check_one("{\"t\":\"hello\",\"v\":1,\"pid\":4242}", PROTO_HELLO, NULL);
	check_one("{\"t\":\"desc\",\"ok\":false,\"error\":\"/p/x.so: no entry\"}", PROTO_DESC, NULL);
	check_one("{\"t\":\"init_done\",\"rc\":-3,\"error\":\"cannot\"}", PROTO_INIT_DONE, NULL);
	check_one("{\"t\":\"run_done\",\"rc\":0,\"idle_s\":-1}", PROTO_RUN_DONE, NULL);
	check_one("{\"t\":\"run_done\",\"rc\":0,\"idle_s\":60,\"not_before_ms\":120000}", PROTO_RUN_DONE, NULL);
	check_one("{\"t\":\"log\",\"level\":0,\"msg\":\"\"}", PROTO_LOG, NULL);
	check_one("{\"t\":\"progress\",\"done\":5,\"total\":-1,\"unit\":\"rows\"}", PROTO_PROGRESS, NULL);
	check_one("{\"t\":\"state\",\"state\":\"waiting_for_lock\",\"until_ms\":-1,\"lock\":\"walk\"}", PROTO_STATE,
	          NULL);
	check_one("{\"t\":\"keepa\",\"kind\":\"deal\",\"units\":1,\"path\":\"/deal\",\"params\":[[\"a\",\"b\"]],"
	          "\"body\":\"{}\"}",
	          PROTO_KEEPA, NULL);
	check_one("{\"t\":\"budget\"}", PROTO_BUDGET, NULL);
	check_one("{\"t\":\"state\",\"state\":\"waiting_for_storage\",\"until_ms\":1764590000000,"
	          "\"storage_error\":\"storage commit: database or disk is full\",\"storage_since_ms\":1764589990000}",
	          PROTO_STATE, NULL);
}

static void malformed_messages_are_refused_by_field(void **state)
{
	(void)state;
	check_one("{\"t\":\"reboot\"}", 0, "no known type");
	check_one("{\"v\":1}", 0, "no known type");
	check_one("{\"t\":\"hello\",\"v\":1.5,\"pid\":1}", 0, "\"v\"");
	check_one("{\"t\":\"log\",\"level\":7,\"msg\":\"x\"}", 0, "\"level\"");
	check_one("{\"t\":\"log\",\"level\":1,\"msg\":7}", 0, "\"msg\"");
	check_one("{\"t\":\"progress\",\"done\":\"5\",\"total\":1}", 0, "\"done\"");
	check_one("{\"t\":\"progress\",\"done\":1e300,\"total\":1}", 0, "\"done\"");
	check_one("{\"t\":\"state\",\"state\":\"quarantined\",\"until_ms\":0}", 0, "names no state");
	check_one("{\"t\":\"keepa\",\"kind\":\"deal\",\"units\":-1,\"path\":\"/deal\",\"params\":[]}", 0, "\"units\"");
	check_one("{\"t\":\"keepa\",\"kind\":\"deal\",\"units\":1,\"path\":\"deal\",\"params\":[]}", 0, "start with /");
	check_one("{\"t\":\"keepa\",\"kind\":\"deal\",\"units\":1,\"path\":\"/deal\",\"params\":[[\"a\"]]}", 0,
	          "[name, value] pair");
	check_one("{\"t\":\"keepa\",\"kind\":\"deal\",\"units\":1,\"path\":\"/deal\",\"params\":{}}", 0, "\"params\"");
	check_one("{\"t\":\"desc\",\"ok\":true,\"path\":\"/p\",\"plugin\":{\"name\":\"x\",\"version\":\"1\","
	          "\"abi_major\":1,\"abi_minor\":0,\"costs\":[{\"kind\":\"k\",\"fixed\":\"1\",\"per_unit\":0}],"
	          "\"settings\":[]}}",
	          0, "\"fixed\"");
	check_one("{\"t\":\"run_done\",\"rc\":0}", 0, "\"idle_s\"");
	/* not_before_ms only delays: a negative or fractional value is garbage. */
	check_one("{\"t\":\"run_done\",\"rc\":0,\"idle_s\":60,\"not_before_ms\":-1}", 0, "\"not_before_ms\"");
	check_one("{\"t\":\"run_done\",\"rc\":0,\"idle_s\":60,\"not_before_ms\":1.5}", 0, "\"not_before_ms\"");
}

static void settings_keep_their_types(void **state)
{
	const char *src = "settings = { n = 60; r = 60.0; big = 9000000000L; on = true; s = \"a \\\"q\\\"\\n\\\\\";"
	                  " g = { x = 1; }; a = [ 1, 2 ]; l = ( \"x\", { y = 2.5; } ); };";
	config_t in, out;
	config_setting_t *group, *back;
	char *text, *err = NULL;

	(void)state;
	config_init(&in);
	assert_int_equal(config_read_string(&in, src), CONFIG_TRUE);
	text = settings_text(config_lookup(&in, "settings"));
	assert_non_null(text);
	assert_int_equal(settings_text_parse(&out, text, &back, &err), 0);
	assert_non_null(back);
	group = config_lookup(&in, "settings");
	assert_int_equal(config_setting_length(back), config_setting_length(group));
	assert_int_equal(config_setting_type(config_setting_get_member(back, "n")), CONFIG_TYPE_INT);
	assert_int_equal(config_setting_type(config_setting_get_member(back, "r")), CONFIG_TYPE_FLOAT);
	assert_int_equal(config_setting_type(config_setting_get_member(back, "big")), CONFIG_TYPE_INT64);
	assert_true(config_setting_get_int64(config_setting_get_member(back, "big")) == 9000000000LL);
	assert_int_equal(config_setting_get_bool(config_setting_get_member(back, "on")), 1);
	assert_string_equal(config_setting_get_string(config_setting_get_member(back, "s")), "a \"q\"\n\\");
	assert_int_equal(config_setting_type(config_setting_get_member(back, "a")), CONFIG_TYPE_ARRAY);
	assert_int_equal(config_setting_type(config_setting_get_member(back, "l")), CONFIG_TYPE_LIST);
	assert_true(config_setting_get_float(config_lookup(&out, "settings.l.[1].y")) == 2.5);
	assert_int_equal(config_setting_get_int(config_lookup(&out, "settings.g.x")), 1);
	free(text);
	config_destroy(&out);
	config_destroy(&in);

	/* No settings group: no text, and none read back. */
	text = settings_text(NULL);
	assert_string_equal(text, "");
	assert_int_equal(settings_text_parse(&out, text, &back, &err), 0);
	assert_null(back);
	config_destroy(&out);
	free(text);
}

static void a_descriptor_arrives_as_it_left(void **state)
{
	static const struct tg_cost costs[] = {{"deal", "page", 5, 0, "one page"}, {"product", "asin", 0, 1, NULL}};
	static const struct tg_setting settings[] = {{"query", TG_SETTING_GROUP, NULL, "the selection"},
	                                             {"pages", TG_SETTING_INT, "3", NULL}};
	static const struct tg_plugin p = {.abi_major = 1, .abi_minor = 0, .struct_size = sizeof(p), .name = "x",
	                                   .version = "1.2", .description = NULL, .costs = costs, .ncosts = 2,
	                                   .settings = settings, .nsettings = 2};
	cJSON *msg = parse("{\"t\":\"desc\",\"ok\":true,\"path\":\"/p/x.so\"}");
	struct tg_plugin *copy;
	char why[200];

	(void)state;
	cJSON_AddItemToObject(msg, "plugin", desc_to_json(&p));
	assert_int_equal(proto_check_from_worker(msg, why, sizeof(why)), PROTO_DESC);
	copy = desc_from_json(cJSON_GetObjectItemCaseSensitive(msg, "plugin"));
	assert_non_null(copy);
	assert_string_equal(copy->name, "x");
	assert_string_equal(copy->version, "1.2");
	assert_null(copy->description);
	assert_int_equal(copy->ncosts, 2);
	assert_string_equal(copy->costs[1].kind, "product");
	assert_null(copy->costs[1].description);
	assert_true(copy->costs[0].fixed == 5 && copy->costs[1].per_unit == 1);
	assert_int_equal(copy->nsettings, 2);
	assert_int_equal(copy->settings[0].type, TG_SETTING_GROUP);
	assert_string_equal(copy->settings[1].default_value, "3");
	assert_null(copy->init);
	desc_free(copy);
	cJSON_Delete(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_cross_a_socket_whole),
		cmocka_unit_test(frames_survive_any_split),
		cmocka_unit_test(non_frames_are_refused),
		cmocka_unit_test(legitimate_messages_pass),
		cmocka_unit_test(malformed_messages_are_refused_by_field),
		cmocka_unit_test(settings_keep_their_types),
		cmocka_unit_test(a_descriptor_arrives_as_it_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
