/*
 * keepa/key.c - reading the Keepa access key (see keepa_load_key() in
 * keepa.h). The key is a secret: no message here ever contains it, and the
 * buffers that held it are wiped before they are freed.
 */
#include "keepa/priv.h"
#include "util/errmsg.h"
#include "keepa/keepa.h"
#include "util/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_from_env(char **key, char **errmsg, int *found)
{
	const char *env = getenv("KEEPA_API_KEY");
	char buf[SECRET_MAX + 1], *start;
	long len;
	int rc = 0;

	*found = 0;
	if (!env || strlen(env) > SECRET_MAX)
		return 0;
	snprintf(buf, sizeof(buf), "%s", env);
	len = secret_trim(buf, &start);
	if (len == 0)
		return 0;
	*found = 1;
	if (len < 0) {
		keepa_set_err(errmsg, "KEEPA_API_KEY holds more than one word or control characters");
		rc = TG_EINVAL;
	} else {
		*key = strdup(start);
		if (!*key) {
			keepa_set_err(errmsg, "out of memory");
			rc = TG_ENOMEM;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

int keepa_load_key(const char *key_file, char **key, char **errmsg)
{
	static const struct secret_kind kind = {.file = "key file", .value = "Keepa key"};
	char *err = NULL;
	int rc, found;

	*key = NULL;
	rc = key_from_env(key, errmsg, &found);
	if (found)
		return rc;
	if (!key_file || !*key_file) {
		keepa_set_err(errmsg, "no Keepa key: set KEEPA_API_KEY or keepa.key_file");
		return TG_ENOTFOUND;
	}
	rc = secret_file_read(key_file, &kind, key, &err);
	if (rc)
		keepa_set_err(errmsg, "%s", err ? err : "cannot read the key file");
	free(err);
	return rc;
}
