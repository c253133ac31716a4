#!/usr/bin/env python3
"""End-to-end: the Keepa client's counts are what the server served.

The simulator injects every fault it has (HTTP 500, a hang that ends in a
closed connection, a truncated body, a 200 with an in-body error) while the
backfiller walks a query and the upserter polls. At a quiet moment (no
request in flight: the daemon's counts did not move across the simulator's
reading), every outcome the daemon shows in status and in metrics must equal
what the simulator counted, retries must account for every retryable
outcome, and the warning lines about them must be rate-limited.
"""
import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOLLGATE, E2ETest, Env, backfiller, upserter  # noqa: E402


def served(stats, code):
    return sum(p.get(str(code), 0) for p in stats["requests"].values())


class Faults(E2ETest):
    def test_counts_equal_what_the_server_served(self):
        sim = self.sim("--rate", 2000, "--minute-ms", 3600000, "--products", 2500, "--seed", 21,
                       "--p500", 0.1, "--phang", 0.06, "--hang-ms", 300, "--pgarbage", 0.08,
                       "--perror", 0.04)
        env = Env()
        port = free_port()
        # cache_window_s = 0: the upserter reads every run even though Keepa's
        # cache would answer the same, so traffic (and faults) keep coming.
        env.write_config(sim, [backfiller(rewalk_after_s=-1), upserter(schedule=1, cache_window_s=0)],
                         extra=f'metrics: {{ listen = "127.0.0.1:{port}"; }};')
        d = self.daemon(env)
        t0 = time.monotonic()
        d.wait_for(lambda: d.task("backfiller")["state"] == "done", 180, "the walk to complete")

        seen = {}

        def every_fault_served():
            seen.update(sim.stats()["faults"])
            return all(seen[f] >= 1 for f in ("500", "hang", "garbage", "error"))

        try:
            d.wait_for(every_fault_served, 180, "every kind of fault to be served at least once")
        except AssertionError as e:
            raise AssertionError(f"faults served: {seen}") from e

        def quiet():
            # No request in flight: the daemon's counts are the same before
            # and after the simulator's reading, and equal to it in total.
            before, _ = d.status()
            stats = sim.stats()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                metrics = r.read().decode()
            human = subprocess_status(env)
            after, _ = d.status()
            if before["keepa"] != after["keepa"] or before["keepa"]["attempts"] != stats["requestsTotal"]:
                return None
            return after, stats, metrics, human

        # The simulator's counts, the metrics and the human view are all read
        # inside one quiet moment: the upserter polls every second, so a view
        # read after it may already show the next request.
        st, stats, metrics, human = d.wait_for(quiet, 60, "a moment with no request in flight")
        elapsed = time.monotonic() - t0
        k, by, faults = st["keepa"], st["keepa"]["attempts_by_outcome"], stats["faults"]
        print(f"\nserved {stats['requestsTotal']} requests, faults {faults}; daemon counted {k}")

        self.assertEqual(k["attempts"], stats["requestsTotal"])
        self.assertEqual(by["5xx"], faults["500"])
        self.assertEqual(by["5xx"], served(stats, 500))
        self.assertEqual(by["network"], faults["hang"])
        self.assertEqual(by["garbage"], faults["garbage"])
        self.assertEqual(by["keepa_error"], faults["error"])
        self.assertEqual(by["429"], served(stats, 429))
        self.assertEqual(by["4xx"], served(stats, 400) + served(stats, 404))
        self.assertEqual(by["ok"], served(stats, 200) - faults["garbage"] - faults["error"])
        self.assertEqual(by["other"] + by["stopped"], 0)
        # Every retryable outcome was retried or ended its call.
        self.assertEqual(k["retries"] + k["gave_up"], by["5xx"] + by["network"] + by["garbage"])
        self.assertGreater(k["retries"], 0)
        # The tasks' counts and the host's /token syncs make up the whole.
        tasks = [t["keepa"] for t in st["tasks"]]
        token_requests = sum(stats["requests"].get("/token", {}).values())
        self.assertEqual(sum(t["attempts"] for t in tasks) + token_requests, k["attempts"])
        for key in ("retries", "calls_ok", "calls_failed"):
            self.assertLessEqual(sum(t[key] for t in tasks), k[key], key)
        # The human view shows the same numbers.
        self.assertIn(f"keepa: {k['attempts']} requests: ok {by['ok']}, 429 {by['429']}", human)
        self.assertIn(f"5xx {by['5xx']}, garbage {by['garbage']}, in-body errors {by['keepa_error']}, "
                      f"network {by['network']}", human)

        # And so do the metrics.
        for outcome, n in by.items():
            self.assertIn(f'tollgate_keepa_requests_total{{outcome="{outcome}"}} {n}\n', metrics)
        for t in st["tasks"]:
            tk = t["keepa"]
            self.assertIn(f'tollgate_keepa_attempts_total{{task="{t["name"]}",outcome="5xx"}} '
                          f'{tk["attempts_by_outcome"]["5xx"]}\n', metrics)
            self.assertIn(f'tollgate_keepa_retries_total{{task="{t["name"]}"}} {tk["retries"]}\n', metrics)

        self.assertEqual(d.stop(), 0)
        # One warning line about failed attempts per task per 30 s at most,
        # each with the counts since the last one; the rest at debug level.
        log = d.log_text()
        for t in st["tasks"]:
            lines = re.findall(rf"warn +\[{t['name']}\] .*attempts since", log)
            failed = t["keepa"]["attempts"] - t["keepa"]["attempts_by_outcome"]["ok"]
            if failed:
                self.assertGreaterEqual(len(lines), 1, t["name"])
            self.assertLessEqual(len(lines), 1 + int(elapsed // 30) + 1, t["name"])


def subprocess_status(env):
    r = subprocess.run([TOLLGATE, "status", "--socket", env.socket], capture_output=True, text=True, timeout=30)
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    unittest.main(verbosity=2)
