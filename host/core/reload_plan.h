/*
 * reload_plan.h - what a configuration reload would change (issue #12 item 6).
 *
 * The pure first step of a reload (core/reload.c applies it): compare the
 * running configuration with a freshly loaded one, sort the tasks by name
 * into unchanged, changed, removed and added, and name every global setting
 * that differs (those need a restart).
 */
#ifndef TG_CORE_RELOAD_PLAN_H
#define TG_CORE_RELOAD_PLAN_H

#include "core/config.h"

#define RELOAD_PLAN_MAX_GLOBALS 64

struct reload_plan {
	/* Indexes into the old config's tasks (unchanged, changed, removed)
	 * and into the new config's tasks (added; changed_new pairs with
	 * changed). Each array has room for its config's ntasks. */
	int *unchanged, nunchanged;
	int *changed, *changed_new, nchanged;
	int *removed, nremoved;
	int *added, nadded;
	/* Names of global settings that differ ("keepa.endpoint", ...):
	 * static strings. */
	const char *globals[RELOAD_PLAN_MAX_GLOBALS];
	int nglobals;
};

/* Fill plan from old and new (both loaded by config_load). 0, or TG_ENOMEM
 * with a message. reload_plan_release() is safe after any outcome. */
int reload_plan_make(struct reload_plan *plan, const struct config *old, const struct config *new,
                     char **errmsg);
void reload_plan_release(struct reload_plan *plan);

/* True when the two task declarations would run the same way: same plugin,
 * required, weight, interval, limits and settings (compared as libconfig
 * text, so types count: 60 and 60.0 differ). Where they were declared does
 * not count. */
bool reload_task_same(const struct task_config *a, const struct task_config *b);

#endif
