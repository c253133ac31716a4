/*
 * print_config.c - `tollgate check --print`: the effective configuration,
 * every default filled in and every drop-in merged, in the file's own
 * syntax (like `nginx -T`), so what runs is what one reads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/daemon.h"
#include "observe/log.h"

static void str(FILE *out, const char *indent, const char *key, const char *v)
{
	fprintf(out, "%s%s = \"", indent, key);
	for (; v && *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', out);
		fputc(*v, out);
	}
	fprintf(out, "\";\n");
}

/* One libconfig setting as text, recursively (task settings). */
static void value(FILE *out, const config_setting_t *s, int depth)
{
	int n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT: fprintf(out, "%d", config_setting_get_int(s)); break;
	case CONFIG_TYPE_INT64: fprintf(out, "%lldL", (long long)config_setting_get_int64(s)); break;
	case CONFIG_TYPE_FLOAT: fprintf(out, "%.17g", config_setting_get_float(s)); break;
	case CONFIG_TYPE_BOOL: fprintf(out, "%s", config_setting_get_bool(s) ? "true" : "false"); break;
	case CONFIG_TYPE_STRING: {
		const char *v = config_setting_get_string(s);
		fputc('"', out);
		for (; v && *v; v++) {
			if (*v == '"' || *v == '\\')
				fputc('\\', out);
			fputc(*v, out);
		}
		fputc('"', out);
		break;
	}
	case CONFIG_TYPE_GROUP:
		fprintf(out, "{ ");
		n = config_setting_length(s);
		for (int i = 0; i < n; i++) {
			const config_setting_t *c = config_setting_get_elem(s, (unsigned)i);
			fprintf(out, "%s = ", config_setting_name(c));
			value(out, c, depth + 1);
			fprintf(out, "; ");
		}
		fprintf(out, "}");
		break;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST: {
		int array = config_setting_type(s) == CONFIG_TYPE_ARRAY;
		fprintf(out, "%s ", array ? "[" : "(");
		n = config_setting_length(s);
		for (int i = 0; i < n; i++) {
			value(out, config_setting_get_elem(s, (unsigned)i), depth + 1);
			fprintf(out, "%s", i + 1 < n ? ", " : " ");
		}
		fprintf(out, "%s", array ? "]" : ")");
		break;
	}
	default: fprintf(out, "\"?\"");
	}
}

static void task(FILE *out, const struct tg_task *t)
{
	const struct task_config *c = t->cfg;
	const struct tg_plugin *p = t->plugin.desc;

	fprintf(out, "  {  # %s:%d%s\n", c->file, c->line, t->state == TASK_SKIPPED ? " (skipped: plugin absent)" : "");
	str(out, "    ", "name", c->name);
	str(out, "    ", "plugin", c->plugin);
	fprintf(out, "    required = %s;\n    weight = %g;\n", c->required ? "true" : "false", c->weight);
	if (c->interval_s)
		fprintf(out, "    schedule = %" PRId64 ";\n", c->interval_s);
	else
		str(out, "    ", "schedule", "continuous");
	fprintf(out, "    settings = {\n");
	if (c->settings)
		for (int i = 0; i < config_setting_length(c->settings); i++) {
			const config_setting_t *s = config_setting_get_elem(c->settings, (unsigned)i);
			fprintf(out, "      %s = ", config_setting_name(s));
			value(out, s, 2);
			fprintf(out, ";\n");
		}
	/* The plugin's defaults for what the file leaves out. */
	for (size_t i = 0; p && i < p->nsettings; i++) {
		const struct tg_setting *d = &p->settings[i];
		if ((c->settings && config_setting_get_member(c->settings, d->name)) || !d->default_value)
			continue;
		if (d->type == TG_SETTING_STRING)
			fprintf(out, "      %s = \"%s\";  # default\n", d->name, d->default_value);
		else
			fprintf(out, "      %s = %s;  # default\n", d->name, d->default_value);
	}
	fprintf(out, "    };\n  }");
}

void cli_print_config(FILE *out, const struct config *cf, const struct daemon *d)
{
	fprintf(out, "\n# the effective configuration of %s (defaults filled in, drop-ins merged)\n", cf->path);
	fprintf(out, "keepa: {\n");
	str(out, "  ", "endpoint", cf->keepa_endpoint);
	if (cf->keepa_key_file)
		str(out, "  ", "key_file", cf->keepa_key_file);
	else
		fprintf(out, "  # key_file: none, only $KEEPA_API_KEY\n");
	fprintf(out,
	        "  domain = %d;\n  connect_timeout_s = %d;\n  timeout_s = %d;\n  max_response_bytes = %" PRId64
	        "L;\n  max_retries = %d;\n};\n",
	        cf->keepa_domain, cf->keepa_connect_timeout_s, cf->keepa_timeout_s, cf->keepa_max_response_bytes,
	        cf->keepa_max_retries);
	fprintf(out, "tokens: {\n");
	str(out, "  ", "policy", cf->tokens_policy);
	fprintf(out,
	        "  reserve = %.17g;\n  margin = %.17g;\n  deficit_threshold = %.17g;\n  deepest_deficit = %.17g;\n"
	        "  latency_target_s = %.17g;\n  cap_minutes = %d;\n  minute_ms = %d;\n};\n",
	        cf->tokens_reserve, cf->tokens_margin, cf->tokens_deficit_threshold, cf->tokens_deepest_deficit,
	        cf->tokens_latency_target_s, cf->tokens_cap_minutes, cf->tokens_minute_ms);
	fprintf(out, "storage: {\n");
	str(out, "  ", "backend", cf->storage_backend);
	str(out, "  ", "path", cf->storage_path);
	fprintf(out, "  sqlite_cache_mb = %d;\n};\n", cf->storage_sqlite_cache_mb);
	str(out, "", "runtime_dir", cf->runtime_dir);
	fprintf(out, "plugin_path = [ ");
	for (int i = 0; i < cf->nplugin_path; i++)
		fprintf(out, "\"%s\"%s", cf->plugin_path[i], i + 1 < cf->nplugin_path ? ", " : " ");
	fprintf(out, "];\n");
	if (cf->include_dir)
		str(out, "", "include_dir", cf->include_dir);
	fprintf(out, "log: {\n");
	str(out, "  ", "level", log_level_name(cf->log_level));
	fprintf(out, "  progress_interval_s = %d;\n};\nstatus: {\n", cf->log_progress_interval_s);
	str(out, "  ", "socket", cf->status_socket ? cf->status_socket : "");
	fprintf(out, "  stall_after_s = %d;\n};\nmetrics: {\n", cf->status_stall_after_s);
	str(out, "  ", "listen", cf->metrics_listen ? cf->metrics_listen : "");
	fprintf(out, "};\ntasks = (\n");
	for (int i = 0; i < d->ntasks; i++) {
		task(out, &d->tasks[i]);
		fprintf(out, "%s\n", i + 1 < d->ntasks ? "," : "");
	}
	fprintf(out, ");\n");
}
