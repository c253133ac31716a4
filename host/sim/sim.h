/*
 * sim.h - the Keepa API simulator (`tollgate sim`), for the demo, the tests
 * and plugin authors who want to test without spending tokens.
 *
 * It is written from docs/keepa-api.md alone and shares no code with the
 * host's Keepa client, so a misreading of the API in one cannot hide in the
 * other. It serves HTTP on 127.0.0.1 only (libmicrohttpd, one thread per
 * connection) and is safe to call from any thread.
 *
 * Time. The simulator runs a virtual clock that advances one Keepa minute
 * every `minute_ms` real milliseconds (60000: real time; 200: 300 times
 * faster). Its virtual start is `start_unix_ms` (default: the wall clock at
 * sim_start(), floored to a whole minute), so virtual Keepa minute k of the
 * run begins exactly at real elapsed time k * minute_ms.
 *
 * Units in the token envelope (present on every JSON answer, errors
 * included, except the all-zero one of a bad key):
 *   - `timestamp` is VIRTUAL server time in Unix ms. It agrees with every
 *     Keepa-minute field of the payload (lastUpdate, csv times ...): the
 *     server's Keepa minute is floor(timestamp / 60000) - 21564000.
 *   - `refillIn` is REAL milliseconds until the next refill (1 .. minute_ms).
 *     A client sleeps on it, so it must be in the clock the client sleeps on;
 *     with minute_ms = 60000 both clocks are the same and refillIn < 60000
 *     as on Keepa (it can equal minute_ms for the instant of a refill).
 *   - `refillRate` is tokens per (virtual) minute, `tokenFlowReduction` is
 *     always 0.0, `tokensConsumed` is this request's charge (0 on a 429 or
 *     any error), `processingTimeInMs` is real ms spent in the handler.
 *
 * The bucket refills `rate` tokens at every Keepa-minute boundary of the
 * bucket's epoch (sim start, or the last /_sim/control restart), never above
 * `cap` (a refill never lowers a balance above the cap). The deficit rule:
 * a paid request runs whenever the balance is > 0 and may drive it negative;
 * at <= 0 the answer is HTTP 429 with a normal envelope, nothing charged.
 * /token is free and never refused. A request that fails validation is
 * answered 400 before the balance is looked at, and costs nothing.
 *
 * Catalog. Built deterministically from `seed`: the same seed, product count,
 * history depth and start give the same products and the same evolution.
 * Every product is refreshed by "Keepa" at its own random interval (2 to 24
 * hours); each refresh moves the sales rank and may change the Amazon, New
 * and Used prices (or take them out of stock, -1). Histories go back
 * `history_days`. Products live in every valid domain (the same catalog).
 *
 * Statistics (product `stats` and deal fields) are computed from the same
 * histories at the request's Keepa minute `now`:
 *   - current = the value of the last csv point at or before now (-1: none);
 *   - an average over N days is the mean of the value in force at each of the
 *     N*1440 Keepa minutes now-N*1440+1 .. now, skipping minutes before the
 *     first point and minutes at -1, rounded half up; -1 when no minute counts.
 *     `avg` uses the `stats` days; avg30/90/180/365 their days;
 *   - min/max: [t, v] of the lowest/highest non-negative value in force in the
 *     stats window (earliest on ties; t is that point's own time, which can be
 *     before the window for the value in force at its start), null if none;
 *   - outOfStockPercentageN: percent (rounded half up) of the window's
 *     covered minutes at -1, -1 without data; salesRankDropsN: csv points of
 *     type 3 inside the window whose rank is lower than the previous point's.
 *   - Deal windows by dateRange: 0 one day, 1 seven, 2 thirty, 3 ninety days
 *     (so deal avg[2] = stats avg30, avg[3] = stats avg90); delta = avg -
 *     current, deltaPercent = round(delta * 100 / avg), deltaLast = previous
 *     point's value - current, currentSince = time of the current point,
 *     creationDate = currentSince of the queried price type, lastUpdate =
 *     the product's last refresh.
 * A product is a deal for (priceType, dateRange) when it was refreshed in the
 * last 12 hours, current >= 0, avg > 0 and delta != 0. categoryCount counts
 * the deals per root category before include/excludeCategories apply (as
 * Keepa documents: the category filters do not affect it), so with a
 * category filter it over-counts the result.
 *
 * The deal cache (as Keepa's, about 120 s): a /deal query identical to an
 * earlier one in every member but `page` (member order does not matter),
 * asked within `deal_cache_s` virtual seconds of the request that evaluated
 * it, is paged from that frozen result (its deals, order and values as of
 * that minute) and charged as usual. Pages read further apart come from a
 * fresh, re-sorted result, so under churn deals cross page boundaries.
 * sortType 1 ("deal age") orders by creationDate (`deal_age` 0, the
 * default) or by lastUpdate (1), the other time breaking ties. The csv and deal arrays hold types
 * 0..18: 0 Amazon, 1 New, 2 Used, 3 sales rank, 16 rating, 17 review count,
 * and 18 buy box as [t, price, shipping] triples (only with buybox=1 or
 * offers, as an extra-data type; its stats are on the price part).
 *
 * Requests (key as a query parameter; paths with or without a trailing /):
 *   /token        free, envelope only, never refused with 429.
 *   /deal         GET selection=<url-encoded JSON> or POST the JSON body; 5 per
 *                 request (one page of up to 150, `page` 0-based, at most
 *                 10,000 results). domainId and exactly one priceTypes entry
 *                 are required; dateRange 0..3 (default 1); sortType 1..4 or
 *                 -2..-4 (default 1: deal age newest first; 2 delta,
 *                 3 sales rank ascending, 4 deltaPercent, largest first, ties
 *                 by asin); a string where a number or boolean belongs is 400.
 *                 Range filters apply only with isRangeEnabled: true (the
 *                 salesRankRange on current[3]); include/excludeCategories on
 *                 rootCat; minRating, isLowest, hasReviews,
 *                 mustHaveAmazonOffer, mustNotHaveAmazonOffer are applied;
 *                 other documented booleans are type-checked and ignored.
 *   /product      domain, asin (CSV, 1..100, duplicates count once); 1 per
 *                 product found, or with offers=20..100 6 per page of 10
 *                 offers found (at least one page); buybox=1 +2, stock=1 +2,
 *                 rating=1 +1, update=0 +1 when refreshed in the last hour.
 *                 stats=<days> only (no start,end), history=0 gives csv null,
 *                 days=N trims csv; `code` is not simulated (400).
 *   /seller       domain, seller (CSV, 1..100); 1 per seller found.
 * Unknown ASINs and sellers are neither returned nor charged. Any other path
 * is 404 with the all-zero envelope, as is a bad or missing key (400).
 *
 * Faults (fault flags): one uniform draw per API request from a PRNG seeded
 * by `seed`, in arrival order (so a sequential client sees the same faults
 * for the same seed), after the key check: p500 -> 500 with the envelope,
 * nothing charged; phang -> no answer for hang_ms, then the connection is
 * closed; pgarbage -> the request runs and is charged, then the body is cut
 * in half; perror -> 200 with the envelope and an `error`, no payload,
 * nothing charged. latency_ms delays every API answer.
 *
 * Ground truth for tests, under /_sim/ (no key, no cost, never counted):
 *   GET /_sim/stats -> {"timestamp", "keepaMinute", "tokensLeft", "refillIn",
 *       "rate", "cap", "minuteMs", "tokensConsumedTotal", "served429",
 *       "refills", "outsideConsumed", "requestsTotal",
 *       "requests": {"/deal": {"200": n, ...}, ..., "other": {"404": n}},
 *       "faults": {"500": n, "hang": n, "garbage": n, "error": n},
 *       "dealCache": {"windowS", "results", "hits", "repeats"}}
 *       (repeats: requests for a page already answered from the same
 *       cached result, i.e. paid for an identical answer)
 *   GET /_sim/deals?selection=JSON -> {"timestamp", "keepaMinute",
 *       "totalMatched" (before the 10,000 cap), "count",
 *       "deals": {dr: [all matches, sorted, up to 10,000], categoryIds, ...}}
 *       (page is ignored; validation as /deal, 400 on error; add summary=1
 *       to leave "dr" out when only the counts matter)
 *   GET|POST /_sim/control?rate=N&cap=N&tokens=N&restart=1&consume=N&hang_pct=P
 *       -> as /_sim/stats, after applying, in this order: rate/cap change the
 *       plan from now on (pending refills are applied first); tokens sets the
 *       balance; restart=1 refills the bucket to its start balance
 *       (start_tokens, else the cap) and restarts the refill phase; consume=N
 *       spends N tokens as an unseen client on the same key would (counted
 *       in outsideConsumed, not in tokensConsumedTotal); hang_pct=P makes P
 *       percent of later API requests hang (like --phang). Parameters are read
 *       from the query string only; a bad value is 400 {"error": "..."}.
 * "tokensConsumedTotal" counts API charges only; "requestsTotal" and
 * "requests" count API requests (hangs included in the total only); /_sim/
 * traffic is never counted. Statuses counted: 200 400 404 405 429 500.
 */
#ifndef TG_HOST_SIM_H
#define TG_HOST_SIM_H

#include <limits.h>
#include <stdint.h>

/* Marks an int option that takes its documented default. */
#define SIM_AUTO INT_MIN

/* What sortType 1 ("deal age, newest first") orders by: Keepa does not say,
 * so the simulator does either (`--deal-age creation|update`). */
enum sim_deal_age { SIM_AGE_CREATION, SIM_AGE_UPDATE };

struct sim_options {
	uint16_t port;         /* 0: pick a free port (read it with sim_port()) */
	const char *key;       /* the accepted access key (default "simkey") */
	int rate;              /* tokens per minute (default 20) */
	int minute_ms;         /* real ms per Keepa minute (default 60000) */
	int cap;               /* bucket cap; SIM_AUTO: 60 * rate */
	int start_tokens;      /* initial balance; SIM_AUTO: cap (may be <= 0) */
	uint64_t seed;         /* catalog and fault seed (default 1) */
	int products;          /* catalog size (default 2000) */
	int history_days;      /* depth of the csv histories (default 365) */
	double p500;           /* probability of an HTTP 500 (not charged) */
	double phang;          /* probability the request hangs, then closes */
	double pgarbage;       /* probability of a truncated body (charged) */
	double perror;         /* probability of a 200 with an in-body error */
	int latency_ms;        /* added real latency per API answer (default 0) */
	int hang_ms;           /* how long a hang lasts (default 120000) */
	int64_t start_unix_ms; /* virtual start; 0: now, floored to a minute */
	int deal_cache_s;      /* deal-query cache window, virtual s (default 120; 0: none) */
	enum sim_deal_age deal_age; /* what sortType 1 orders by (default creation) */
};

struct sim;

/* The defaults above. */
struct sim_options sim_options_default(void);

/* Build the catalog and start serving. On success *out owns the server;
 * on failure returns a negative TG_E* code and, when errmsg is not NULL, a
 * malloc'd message. */
int sim_start(const struct sim_options *opts, struct sim **out, char **errmsg);

/* The port the server listens on (127.0.0.1). */
uint16_t sim_port(const struct sim *sim);

/* Stop serving (hung requests are cut short), join the threads and free. */
void sim_stop(struct sim *sim);

/* `tollgate sim [options]` (argv[0] = "sim"): prints
 * "listening on http://127.0.0.1:PORT" and serves until SIGINT/SIGTERM.
 * Returns 0, or 64 on a usage error, 70 when the server cannot start. */
int sim_main(int argc, char **argv);

#endif
