#!/usr/bin/env python3
"""End-to-end: host + `tollgate sim` + SQLite over real HTTP on loopback.

1. backfiller and upserter together on a low rate: both progress, no 429,
   every token generated while work was queued is spent or saved for the
   call waiting to go, and the bucket never piles up beyond what one call
   may save for;
2. after the walk and an upserter run, the database equals the simulator's
   ground truth for the query;
3. kill -9 in the middle of a walk, restart: it resumes from its checkpoint
   and the database still converges, with no gaps or duplicates;
4. a changed query in the config starts a fresh walk.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import QUERY, E2ETest, Env, backfiller, upserter  # noqa: E402

KEEPA_EPOCH_MIN = 21564000


def truth_by_asin(sim, query):
    t = sim.truth(query)
    return {d["asin"]: d for d in t["deals"]["dr"]}, t


class Pipeline(E2ETest):
    def test_1_no_livelock_full_utilization(self):
        # 30 tokens a (2 s) minute from an empty bucket: the walk needs far
        # more than the run generates, so the backfiller is backlogged all the
        # time, while the upserter wants a page every 3 minutes. What is
        # measured is whether the scheduler leaves tokens unspent, not how
        # fast the daemon is: 15 tokens a second is a pace even a TSan build
        # on a loaded machine keeps up with (at 60 a second it fell behind,
        # CPU-bound, at 15-30). The minute is 2 s, not shorter: every refill
        # the daemon answers late costs a share of the minute that shrinks as
        # the minute grows.
        sim = self.sim("--rate", 30, "--minute-ms", 2000, "--start-tokens", 0, "--products", 8000, "--seed", 7)
        env = Env()
        # The upserter's cache window is the simulator's 120 s at 2 s a
        # minute: it reads every run of its 6 s schedule.
        env.write_config(sim, [backfiller(), upserter(schedule=6, cache_window_s=4)], minute_ms=2000)
        d = self.daemon(env)
        d.wait_for(lambda: d.task("backfiller")["progress_done"] > 0, 60, "backfiller progress")

        # What the scheduler did not spend is what is left in the bucket, so
        # both ends of the window are taken when the bucket is "drained":
        # nearly empty (a quarter of a refill or less), or holding less than
        # the target of the call the scheduler is waiting to send, i.e. every
        # token in it is saved for that call. A sample taken just after a
        # refill, before the daemon has had its turn, would count a whole
        # minute's tokens as unspent (1440 generated, 1323 "spent": 0.919, a
        # failure by phase, not by scheduling).
        # In between, the bucket must never hold more than the largest target
        # the scheduler may save up for (a /product call of 100 ASINs, Keepa's
        # limit, plus its margin and the room it keeps for a consumer it has
        # seen outside, at most a tenth of the bucket) plus two minutes'
        # refills: more is tokens piling up -- a scheduler that waits for a
        # balance it never reaches, or sleeps past its refills -- seen at
        # every sample. Over 24 refills (720 tokens) a scheduler spending
        # half of them would pass that bound too.
        largest_target = 100 + 1 + 0.1 * 60 * 30
        peak = {"tokensLeft": 0}

        def drained(after_refills):
            bf = d.task("backfiller")
            if bf["state"] == "done":
                # 1,447 deals at 15 tokens a second is a walk of about 100 s,
                # twice the window: if it ended, what is measured is an idle
                # task, not a backlog.
                raise AssertionError("the walk ended inside the window: the test needs a bigger catalog")
            st = sim.stats()
            if after_refills and st["tokensLeft"] > peak["tokensLeft"]:
                peak.update(st)
            if st["refills"] < after_refills:
                return None
            saving_for = bf.get("waiting", {}).get("target", 0) if bf["state"] == "waiting_for_tokens" else 0
            return st if st["tokensLeft"] * 4 <= st["rate"] or st["tokensLeft"] < saving_for else None

        start = d.wait_for(lambda: drained(0), 60, "a drained bucket to start from")
        # 24 Keepa minutes, counted by the server's refills, not by a clock.
        end = d.wait_for(lambda: drained(start["refills"] + 24), 300, "24 refills, spent")
        bf, up = d.task("backfiller"), d.task("upserter")
        self.assertEqual(d.stop(), 0)
        self.assertGreater(bf["progress_done"], 0, "backfiller made no progress")
        # Each run reads (the cache window is the simulator's) and waits for
        # its tokens in a drained bucket: a second run means the first one
        # completed; its tokens below say it was not starved.
        self.assertGreaterEqual(up["runs"], 2, "upserter did not complete a run")
        self.assertGreater(up["tokens"]["consumed"], 0, "upserter spent nothing: starved")
        self.assertGreater(bf["tokens"]["consumed"], 0, "backfiller spent nothing: starved")
        # The interval task is the latency-sensitive one, in a worker as
        # in-process (this file runs both ways): its small funded calls may
        # pass the backfiller's waiting head. (Worker mode once lost this.)
        self.assertTrue(up["tokens"]["latency_sensitive"], up["tokens"])
        self.assertFalse(bf["tokens"]["latency_sensitive"], bf["tokens"])
        self.assertEqual(end["served429"], 0, "the simulator served a 429")
        generated = (end["refills"] - start["refills"]) * end["rate"] + start["tokensLeft"]
        spent = end["tokensConsumedTotal"] - start["tokensConsumedTotal"]
        ratio = spent / generated
        print(f"\nutilization while backlogged: {spent} spent / {generated} generated"
              f" (incl. {start['tokensLeft']} left at the start) = {ratio:.3f}; peak balance {peak['tokensLeft']}")
        self.assertGreaterEqual(generated, 24 * 30)
        # Spent, or saved for the call at the head (which may be a target of
        # up to largest_target): nothing else.
        self.assertGreaterEqual(spent, generated - max(end["tokensLeft"], end["rate"] / 4) - 1)
        self.assertLessEqual(peak["tokensLeft"], largest_target + 2 * end["rate"],
                             f"tokens piled up in the bucket while work was queued: {peak}")

    def test_2_database_matches_ground_truth(self):
        # One Keepa minute lasts an hour here: the catalog holds still while
        # the walk runs, so the comparison is exact.
        sim = self.sim("--rate", 2000, "--minute-ms", 3600000, "--products", 2500, "--seed", 11)
        env = Env()
        # A frozen catalog (the cache would hold for two hours): the
        # upserter reads every run, so "two more runs" come in seconds,
        # rather than sleeping through a cache window it knows of.
        env.write_config(sim, [backfiller(rewalk_after_s=-1), upserter(schedule=3, cache_window_s=0)])
        d = self.daemon(env)
        d.wait_for(lambda: d.task("backfiller")["state"] == "done", 60, "the walk to complete")
        runs = d.task("upserter")["runs"]
        d.wait_for(lambda: d.task("upserter")["runs"] >= runs + 2, 30, "two more upserter runs")

        def quiet():
            # Between upserter runs nothing is on the wire: the tasks' counts
            # and the server's can be compared without a call in flight.
            st, _ = d.status()
            up = [t for t in st["tasks"] if t["name"] == "upserter"][0]
            if up["state"] != "sleeping" or up.get("until_ms", 0) - st["now_ms"] < 1000:
                return None
            stats = sim.stats()
            again, _ = d.status()
            return (st, stats) if again["tasks"] == st["tasks"] or all(
                a["tokens"] == b["tokens"] for a, b in zip(again["tasks"], st["tasks"])) else None

        st, stats = d.wait_for(quiet, 30, "a quiet moment between upserter runs")
        self.assertEqual(d.stop(), 0)
        # Token use matches the declared costs (/deal 5 a page, /product 1 an
        # ASIN), and what the tasks count is what the server charged.
        charged = stats["tokensConsumedTotal"]
        self.assertEqual(sum(t["tokens"]["consumed"] for t in st["tasks"]), charged)
        for t in st["tasks"]:
            self.assertEqual(t["tokens"]["cost_estimated"], t["tokens"]["cost_actual"], t["name"])
            self.assertEqual(t["tokens"]["calls_429"], 0)
        truth, raw = truth_by_asin(sim, QUERY)
        self.assertGreater(len(truth), 150, "the query should span several pages")
        rows = env.rows("select asin, current_cents, avg_cents, drop_pct, deal_updated_at, deal_created_at,"
                        " title from deals")
        asins = [r[0] for r in rows]
        self.assertEqual(len(asins), len(set(asins)), "duplicate rows")
        self.assertEqual(set(asins), set(truth), "the database and the ground truth differ")
        pt, dr = QUERY["priceTypes"][0], QUERY["dateRange"]
        for asin, cur, avg, drop, upd, created, title in rows:
            t = truth[asin]
            self.assertEqual(cur, t["current"][pt], asin)
            self.assertEqual(avg, t["avg"][dr][pt], asin)
            self.assertEqual(drop, t["deltaPercent"][dr][pt], asin)
            self.assertEqual(upd, (t["lastUpdate"] + KEEPA_EPOCH_MIN) * 60, asin)
            self.assertEqual(created, (t["creationDate"] + KEEPA_EPOCH_MIN) * 60, asin)
            self.assertEqual(title, t["title"], asin)
        self.assertEqual(sim.stats()["served429"], 0)

    def test_3_kill9_resumes_from_checkpoint(self):
        # The catalog holds still (an hour-long Keepa minute) and the bucket
        # holds 400 tokens, fewer than the walk needs: the pages are read and
        # stored, then buying their products stops, waiting for tokens. Kill -9
        # it there, refill the bucket, restart: it must resume buying, read no
        # page again, and end with exactly the ground truth.
        # The daemon's minute (60 s, the longest it takes) is shorter than
        # the simulator's hour: a minute into the wait the scheduler predicts
        # a refill the server never makes, sends on it and meets a 429, which
        # it waits out. Whether that happened before the kill depended on how
        # long a loaded machine took to get there, so only the restarted
        # daemon (whose model of the bucket is right) must meet none.
        sim = self.sim("--rate", 1, "--minute-ms", 3600000, "--start-tokens", 400, "--products", 6000,
                       "--seed", 5)
        env = Env()
        env.write_config(sim, [backfiller(rewalk_after_s=-1), upserter(schedule=2)])
        d = self.daemon(env)

        def walk_state():
            return env.rows("select value from tg_state where task='backfiller' and key='walk'")[0][0]

        d.wait_for(lambda: " products " in walk_state()
                   and d.task("backfiller")["state"] == "waiting_for_tokens", 120,
                   "the walk to read its pages and wait for tokens to buy products")
        before = env.rows("select count(*) from deals")[0][0]
        due = env.rows("select count(*) from deals where product_due = 1")[0][0]
        d.kill9()
        served429_at_kill = sim.stats()["served429"]
        self.assertGreater(before, 450)
        self.assertGreater(due, 0, "nothing left to buy: the test did not stop the walk")
        pages_read = sim.stats()["requests"]["/deal"]["200"]

        sim.control(tokens=100000)
        # The backfiller alone, so every /deal read after the restart is its own.
        env.write_config(sim, [backfiller(rewalk_after_s=-1)])
        d2 = self.daemon(env)
        d2.wait_for(lambda: d2.task("backfiller")["state"] == "done", 90, "the resumed walk to complete")
        log = d2.log_text()
        self.assertIn("resuming the walk: buying the products its pages marked", log)
        self.assertNotIn("starting a walk", log)
        self.assertEqual(d2.stop(), 0)
        self.assertEqual(sim.stats()["requests"]["/deal"]["200"], pages_read, "a page was read again")
        self.assertEqual(env.rows("select count(*) from deals where product_due = 1")[0][0], 0)
        self.assertEqual(env.rows("select count(*) from deals where product_at is null")[0][0], 0)
        truth, _ = truth_by_asin(sim, QUERY)
        asins = [r[0] for r in env.rows("select asin from deals")]
        self.assertEqual(len(asins), len(set(asins)), "duplicate rows")
        self.assertGreater(len(truth), 450, "the query should need more than the first bucket")
        self.assertEqual(set(asins), set(truth), "gaps or extra rows after the resumed walk")
        self.assertEqual(sim.stats()["served429"], served429_at_kill, "the restarted daemon met a 429")

    def test_4_changed_query_starts_fresh_walk(self):
        sim = self.sim("--rate", 2000, "--minute-ms", 3600000, "--products", 1500, "--seed", 3)
        env = Env()
        env.write_config(sim, [backfiller(rewalk_after_s=-1)])
        d = self.daemon(env)
        d.wait_for(lambda: d.task("backfiller")["state"] == "done", 60, "the first walk")
        self.assertEqual(d.stop(), 0)
        narrower = dict(QUERY, deltaPercentRange=[30, 100])
        env.write_config(sim, [backfiller(query=narrower, rewalk_after_s=-1)])
        d2 = self.daemon(env)
        d2.wait_for(lambda: d2.task("backfiller")["state"] == "done", 60, "the second walk")
        self.assertEqual(d2.stop(), 0)
        log = d2.log_text()
        self.assertIn("the query changed", log)
        self.assertNotIn("resuming the walk", log)
        state = env.rows("select value from tg_state where task='backfiller' and key='walk'")[0][0]
        truth, _ = truth_by_asin(sim, narrower)
        self.assertIn(" done ", state)
        self.assertTrue(set(truth) <= {r[0] for r in env.rows("select asin from deals")})


if __name__ == "__main__":
    unittest.main(verbosity=2)
