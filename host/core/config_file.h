/*
 * config_file.h - opening a configuration file that may be hostile.
 *
 * libconfig reads whatever it is given: a FIFO blocks it forever, and its
 * parser checks each new member of a group against all earlier ones, so a
 * group of n members costs n^2 (a 1 MB group of 77,000 members took two
 * minutes). Before libconfig sees a file, it must be a regular file of at
 * most CONFIG_MAX_FILE_BYTES holding at most CONFIG_MAX_SETTINGS settings;
 * a real configuration is a few KB with some dozens.
 */
#ifndef TG_HOST_CONFIG_FILE_H
#define TG_HOST_CONFIG_FILE_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_FILE_BYTES ((long)1 << 20)
#define CONFIG_MAX_SETTINGS 2000

/* Open path for libconfig's config_read(): a stream positioned at the start
 * of a regular file within the limits above, or TG_EINVAL / TG_EIO with
 * "path:0: why" in *errmsg. The checks are made on the open descriptor that
 * is then read, so nothing can be swapped in between. */
int config_file_open(const char *path, FILE **out, char **errmsg);

/* How many settings (name = value, name : value) text holds, not counting
 * what is inside strings and comments. */
size_t config_count_settings(const char *text, size_t len);

#endif
