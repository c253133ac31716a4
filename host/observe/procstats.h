/*
 * procstats.h - this process's CPU time, memory, descriptors and start
 * time, from /proc/self: the process_* metrics every Prometheus client
 * library exports, and what `status` shows of the daemon itself.
 */
#ifndef TG_HOST_PROCSTATS_H
#define TG_HOST_PROCSTATS_H

struct procstats {
	double cpu_seconds;      /* user + system */
	double resident_bytes;
	double virtual_bytes;
	double open_fds;
	double max_fds;          /* the soft RLIMIT_NOFILE */
	double start_time_s;     /* Unix seconds */
};

/* 0, or -1 when /proc cannot be read (fields then stay 0). */
int procstats_read(struct procstats *out);

#endif
