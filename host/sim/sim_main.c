/*
 * sim_main.c - `tollgate sim [options]`: run the Keepa simulator in the
 * foreground until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim_int.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: tollgate sim [options]\n"
	             "Serve a simulated Keepa API on 127.0.0.1 (see host/sim/sim.h for the model).\n"
	             "  --port N           port, 0 picks a free one (default 0)\n"
	             "  --key KEY          the accepted access key (default simkey)\n"
	             "  --rate N           tokens per minute (default 20)\n"
	             "  --minute-ms N      real ms per Keepa minute (default 60000; 200 = 300x faster)\n"
	             "  --cap N            bucket cap (default 60 x rate)\n"
	             "  --start-tokens N   initial balance (default: the cap)\n"
	             "  --seed N           catalog and fault seed (default 1)\n"
	             "  --products N       catalog size (default 2000)\n"
	             "  --history-days N   depth of the price histories (default 365)\n"
	             "  --start-unix-ms N  virtual start time (default: now, floored to a minute)\n"
	             "  --p500 P           probability of an HTTP 500\n"
	             "  --phang P          probability a request hangs (--hang-ms, default 120000)\n"
	             "  --pgarbage P       probability of a truncated body (charged)\n"
	             "  --perror P         probability of a 200 with an in-body error\n"
	             "  --latency-ms N     added latency per answer\n"
	             "  --deal-cache-s N   deal-query cache window, virtual seconds (default 120; 0 none)\n"
	             "  --deal-age WHAT    sortType 1 orders by creation (default) or update\n"
	             "  --help             this text\n");
}

/* *out is written on failure too (0), so a caller may store it before it
 * looks at the result: the options loop stops at the first bad one. */
static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	*out = 0;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_prob(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (!*s || *end || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

int sim_main(int argc, char **argv)
{
	enum {
		O_PORT = 256,
		O_KEY,
		O_RATE,
		O_MINUTE,
		O_CAP,
		O_START_TOKENS,
		O_SEED,
		O_PRODUCTS,
		O_HISTORY,
		O_START,
		O_P500,
		O_PHANG,
		O_PGARBAGE,
		O_PERROR,
		O_LATENCY,
		O_HANG,
		O_DEAL_CACHE,
		O_DEAL_AGE,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"port", required_argument, NULL, O_PORT},
	    {"key", required_argument, NULL, O_KEY},
	    {"rate", required_argument, NULL, O_RATE},
	    {"minute-ms", required_argument, NULL, O_MINUTE},
	    {"cap", required_argument, NULL, O_CAP},
	    {"start-tokens", required_argument, NULL, O_START_TOKENS},
	    {"seed", required_argument, NULL, O_SEED},
	    {"products", required_argument, NULL, O_PRODUCTS},
	    {"history-days", required_argument, NULL, O_HISTORY},
	    {"start-unix-ms", required_argument, NULL, O_START},
	    {"p500", required_argument, NULL, O_P500},
	    {"phang", required_argument, NULL, O_PHANG},
	    {"pgarbage", required_argument, NULL, O_PGARBAGE},
	    {"perror", required_argument, NULL, O_PERROR},
	    {"latency-ms", required_argument, NULL, O_LATENCY},
	    {"hang-ms", required_argument, NULL, O_HANG},
	    {"deal-cache-s", required_argument, NULL, O_DEAL_CACHE},
	    {"deal-age", required_argument, NULL, O_DEAL_AGE},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct sim_options o = sim_options_default();
	long long v;
	int c, bad = 0;

	optind = 1;
	opterr = 1;
	while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			bad = parse_ll(optarg, 0, 65535, &v);
			o.port = (uint16_t)v;
			break;
		case O_KEY:
			o.key = optarg;
			break;
		case O_RATE:
			bad = parse_ll(optarg, 0, 10000000, &v);
			o.rate = (int)v;
			break;
		case O_MINUTE:
			bad = parse_ll(optarg, 1, 86400000, &v);
			o.minute_ms = (int)v;
			break;
		case O_CAP:
			bad = parse_ll(optarg, 1, 1000000000, &v);
			o.cap = (int)v;
			break;
		case O_START_TOKENS:
			bad = parse_ll(optarg, -1000000000, 1000000000, &v);
			o.start_tokens = (int)v;
			break;
		case O_SEED:
			bad = parse_ll(optarg, 0, INT64_MAX, &v);
			o.seed = (uint64_t)v;
			break;
		case O_PRODUCTS:
			bad = parse_ll(optarg, 1, 2000000, &v);
			o.products = (int)v;
			break;
		case O_HISTORY:
			bad = parse_ll(optarg, 1, 3650, &v);
			o.history_days = (int)v;
			break;
		case O_START:
			bad = parse_ll(optarg, 1, INT64_MAX / 2, &v);
			o.start_unix_ms = v;
			break;
		case O_P500:
			bad = parse_prob(optarg, &o.p500);
			break;
		case O_PHANG:
			bad = parse_prob(optarg, &o.phang);
			break;
		case O_PGARBAGE:
			bad = parse_prob(optarg, &o.pgarbage);
			break;
		case O_PERROR:
			bad = parse_prob(optarg, &o.perror);
			break;
		case O_LATENCY:
			bad = parse_ll(optarg, 0, 600000, &v);
			o.latency_ms = (int)v;
			break;
		case O_HANG:
			bad = parse_ll(optarg, 0, 3600000, &v);
			o.hang_ms = (int)v;
			break;
		case O_DEAL_CACHE:
			bad = parse_ll(optarg, 0, 86400, &v);
			o.deal_cache_s = (int)v;
			break;
		case O_DEAL_AGE:
			bad = strcmp(optarg, "creation") && strcmp(optarg, "update");
			o.deal_age = strcmp(optarg, "update") == 0 ? SIM_AGE_UPDATE : SIM_AGE_CREATION;
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
		if (bad)
			fprintf(stderr, "tollgate sim: bad value '%s' for an option\n", optarg);
	}
	if (bad || optind < argc) {
		if (!bad)
			fprintf(stderr, "tollgate sim: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 64;
	}

	/* Block the stop signals before any server thread exists, so they
	 * inherit the mask and only sigwait() below receives them. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);

	struct sim *sim;
	char *err = NULL;
	if (sim_start(&o, &sim, &err)) {
		fprintf(stderr, "tollgate sim: %s\n", err ? err : "cannot start");
		free(err);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return 70;
	}
	printf("listening on http://127.0.0.1:%u\n", (unsigned)sim_port(sim));
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	sim_stop(sim);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}
