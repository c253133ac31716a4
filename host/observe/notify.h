/*
 * notify.h - tell systemd how the daemon is doing (sd_notify protocol).
 *
 * A datagram to $NOTIFY_SOCKET ("READY=1", "STATUS=...", "STOPPING=1"), the
 * protocol libsystemd's sd_notify() speaks, written out here so the daemon
 * does not need libsystemd. Without NOTIFY_SOCKET every call does nothing.
 */
#ifndef TG_HOST_NOTIFY_H
#define TG_HOST_NOTIFY_H

/* Send one notification, e.g. "READY=1\nSTATUS=3 tasks running".
 * Returns 1 when sent, 0 when not under systemd, < 0 on error. */
int notify_systemd(const char *state);

#endif
