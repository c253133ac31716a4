/*
 * services.h - the const services table handed to every plugin's init().
 */
#ifndef TG_HOST_SERVICES_H
#define TG_HOST_SERVICES_H

#include <tollgate/tollgate.h>

/* The host's table: every member filled, struct_size = sizeof. */
extern const struct tg_services services_table;

#endif
