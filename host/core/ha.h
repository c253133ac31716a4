/*
 * ha.h - hot standby: several daemons with the same configuration on one
 * PostgreSQL database, exactly one of them active.
 *
 * A daemon with an `ha` group starts as standby: it serves its status
 * (role standby, who is active and since when) and polls the lease
 * (storage/lease.h) every half second, making no Keepa call and writing
 * nothing. When it wins the lease it fences its commits with the new epoch
 * (storage_fence) and runs the daemon as usual: the start reads /token
 * before any paid call, and every task resumes from its checkpoint. While
 * active, a thread renews the lease every heartbeat; when the lease moved
 * on (a standby found this node silent for longer than the lease) nothing
 * can commit any more, the tasks are stopped, and the node is standby
 * again. An orderly stop gives the lease up, so a standby takes over at
 * once.
 *
 * One node per process: the fence and the connections' names are the
 * process's (worker processes must carry the epoch over).
 */
#ifndef TG_HOST_HA_H
#define TG_HOST_HA_H

#include <stdbool.h>

struct config;
struct daemon;
struct ha;
struct keepa;
struct cJSON;

/* How often a standby asks for the lease. */
#define HA_POLL_MS 500

/* Run the daemon under hot standby: wait as standby, run_active(cf, ha,
 * ud) while active (it returns an exit code), and again standby when the
 * lease was lost. Returns the exit code of the last active run, 0 after a
 * stop while standby, EXIT-style 69 when the lease cannot be asked for at
 * the start. */
int ha_run(struct config *cf, int (*run_active)(struct config *cf, struct ha *ha, void *ud), void *ud);

/* For run_active: attach the running daemon (after daemon_init: the renew
 * thread stops it when the lease is lost) and detach it before
 * daemon_close (an orderly stop gives the lease up). */
int ha_attach(struct ha *ha, struct daemon *d);
void ha_detach(struct ha *ha);
/* For run_active, after daemon_open: gate every request of the daemon's
 * Keepa client k (keepa_set_send_gate). A request goes out at once while
 * the lease is confirmed, i.e. the last renewal was sent less than a lease
 * ago. Otherwise (the node was stopped or starved for longer than its
 * lease, so a standby may have taken over) it waits until the renewer
 * confirms the lease, or finds it lost or the daemon stops (the call ends
 * with TG_ESTOPPED): a node that lost its lease spends no tokens on answers
 * it could not store anyway. A request already on the wire is not
 * recalled; its answer is refused at commit by the fence. */
void ha_gate_keepa(struct ha *ha, struct keepa *k);

/* For run_active: a stop signal arrived while active, so the node stops
 * rather than go back to standby (even when it also lost the lease). */
void ha_stop_signalled(struct ha *ha);

/* The "ha" object of the status snapshot: role, node, active_node,
 * active_since_ms, epoch, lease_age_s, lease_s, takeovers, lease_error
 * (while active: why renewing the lease fails, as long as it does; else
 * null). */
struct cJSON *ha_status_json(struct ha *ha);

#endif
