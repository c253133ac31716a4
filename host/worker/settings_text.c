/*
 * settings_text.c - write a libconfig group as libconfig text, and read it
 * back (settings_text.h).
 */
#include "worker/settings_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#include "util/errmsg.h"

static void write_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if (ch < 0x20)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void write_value(FILE *f, const config_setting_t *s)
{
	int n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT: fprintf(f, "%d", config_setting_get_int(s)); break;
	case CONFIG_TYPE_INT64: fprintf(f, "%lldL", (long long)config_setting_get_int64(s)); break;
	case CONFIG_TYPE_FLOAT: {
		char buf[64];
		snprintf(buf, sizeof(buf), "%.17g", config_setting_get_float(s));
		/* A float must read back as one: 60 would come back an integer. */
		if (!strpbrk(buf, ".eE")) {
			size_t used = strlen(buf);
			snprintf(buf + used, sizeof(buf) - used, ".0");
		}
		fputs(buf, f);
		break;
	}
	case CONFIG_TYPE_BOOL: fputs(config_setting_get_bool(s) ? "true" : "false", f); break;
	case CONFIG_TYPE_STRING: write_string(f, config_setting_get_string(s)); break;
	case CONFIG_TYPE_GROUP:
		n = config_setting_length(s);
		fputs("{ ", f);
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			fprintf(f, "%s = ", config_setting_name(e));
			write_value(f, e);
			fputs("; ", f);
		}
		fputc('}', f);
		break;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		n = config_setting_length(s);
		fputc(config_setting_type(s) == CONFIG_TYPE_ARRAY ? '[' : '(', f);
		for (int i = 0; i < n; i++) {
			fputs(i ? ", " : " ", f);
			write_value(f, config_setting_get_elem(s, (unsigned)i));
		}
		fputs(config_setting_type(s) == CONFIG_TYPE_ARRAY ? " ]" : " )", f);
		break;
	default: fputs("()", f); break;
	}
}

char *settings_text(const config_setting_t *group)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!group)
		return strdup("");
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fputs("settings = ", f);
	write_value(f, group);
	fputs(";\n", f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

int settings_text_parse(config_t *cf, const char *text, config_setting_t **group, char **errmsg)
{
	config_init(cf);
	*group = NULL;
	if (config_read_string(cf, text) != CONFIG_TRUE)
		return errmsg_set(errmsg, TG_EINVAL, "settings from the host do not parse: line %d: %s",
		                  config_error_line(cf), config_error_text(cf));
	*group = config_lookup(cf, "settings");
	return 0;
}
