#!/usr/bin/env python3
"""The metrics endpoint by Prometheus conventions, on a live daemon: counters
end in _total and only grow, waits are a consistent histogram, the task
state is a state set, last progress is a timestamp, process_* is there - and
`promtool check metrics` accepts a live scrape (when $PROMTOOL names it, as
.ci/run does with Debian's promtool)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import E2ETest, Env, backfiller, upserter  # noqa: E402
from test_status import free_port, parse_prometheus  # noqa: E402

PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool")
PACKAGING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging")
METRIC = re.compile(r"\b((?:tollgate|process)_[a-z0-9_]+)")


def exported(families, name):
    """Is name a series of one of the scraped families (histogram parts included)?"""
    if name in families:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and families.get(name[:-len(suffix)]) == "histogram":
            return True
    return False


def dashboard_exprs():
    with open(os.path.join(PACKAGING, "grafana", "tollgate-dashboard.json")) as f:
        dash = json.load(f)
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "instance"} <= names, names
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    exprs = []
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]
        exprs += [(p["title"], t["expr"]) for t in p["targets"]]
    return exprs


def rule_exprs():
    """expr: lines of the alert rules (a one-line value or a folded block)."""
    with open(os.path.join(PACKAGING, "prometheus", "tollgate-alerts.yml")) as f:
        out, lines = [], f.read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s+expr:\s*(.*)$", line)
        if not m:
            continue
        text = m.group(1)
        if text in (">", "|"):
            j, text = i + 1, ""
            while j < len(lines) and lines[j].startswith(" " * (len(line) - len(line.lstrip()) + 2)):
                text += " " + lines[j].strip()
                j += 1
        out.append(("rule", text))
    return out


def labels(lab):
    return dict(kv.split("=", 1) for kv in lab.strip("{}").replace('"', "").split(",")) if lab else {}


class Metrics(E2ETest):
    def scrape(self, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()

    def test_conventions_on_a_live_scrape(self):
        port = free_port()
        sim = self.sim("--rate", 300, "--minute-ms", 200, "--products", 1500, "--start-tokens", 20)
        env = Env()
        # Walk again at once: a walk that pays only for change makes few
        # calls, and the scrapes need calls between them.
        env.write_config(sim, [backfiller(rewalk_after_s=1, cache_window_s=1), upserter(schedule=2)], minute_ms=200,
                         extra=f'metrics: {{ listen = "127.0.0.1:{port}"; }};')
        d = self.daemon(env)
        d.wait_for(lambda: d.task("backfiller")["tokens"]["calls_ok"] >= 3, 90, "a few calls")
        first = self.scrape(port)
        d.wait_for(lambda: d.task("backfiller")["tokens"]["calls_ok"] >= 6, 90, "more calls")
        second = self.scrape(port)
        fam1, s1 = parse_prometheus(first)
        fam2, s2 = parse_prometheus(second)
        self.assertEqual(fam1, fam2)

        # Counters only grow between scrapes.
        v1 = {(n, lab): v for n, lab, v in s1}
        for n, lab, v in s2:
            if fam2.get(n) == "counter" and (n, lab) in v1:
                self.assertGreaterEqual(v, v1[(n, lab)], (n, lab))
        self.assertEqual(fam2["tollgate_tokens_wasted_total"], "counter")
        self.assertEqual(fam2["tollgate_keepa_429_total"], "counter")
        self.assertNotIn("tollgate_tokens_wasted", fam2)

        # Waits: a histogram per task, cumulative, +Inf equal to _count.
        self.assertEqual(fam2["tollgate_task_token_wait_seconds"], "histogram")
        for task in ("backfiller", "upserter"):
            buckets = [(labels(lab)["le"], v) for n, lab, v in s2
                       if n == "tollgate_task_token_wait_seconds_bucket" and labels(lab)["task"] == task]
            self.assertEqual(buckets[-1][0], "+Inf")
            self.assertEqual([b for b, _ in buckets[:-1]], sorted((b for b, _ in buckets[:-1]), key=float))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "buckets are cumulative")
            count = [v for n, lab, v in s2 if n == "tollgate_task_token_wait_seconds_count" and task in lab][0]
            self.assertEqual(counts[-1], count)
        bf_count = [v for n, lab, v in s2 if n == "tollgate_task_token_wait_seconds_count" and "backfiller" in lab][0]
        self.assertGreaterEqual(bf_count, 6, "every dispatched call's wait is counted")

        # The state set: every state listed once per task, exactly one set.
        for task in ("backfiller", "upserter"):
            states = {labels(lab)["state"]: v for n, lab, v in s2
                      if n == "tollgate_task_state" and labels(lab)["task"] == task}
            self.assertGreaterEqual(len(states), 8)
            self.assertEqual(sum(states.values()), 1, states)

        # Timestamps, not ages; process_* like every client library.
        now = time.time()
        for n, lab, v in s2:
            if n.endswith("_timestamp_seconds") or n == "process_start_time_seconds":
                self.assertLess(abs(now - v), 600, (n, lab, v))
        self.assertFalse([n for n in fam2 if n.endswith("_age_seconds")])
        for n in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                  "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"):
            self.assertIn(n, fam2)
        rss = [v for n, _, v in s2 if n == "process_resident_memory_bytes"][0]
        self.assertGreater(rss, 1 << 20)

        # The shipped dashboard and alert rules query only what is exported.
        exprs = dashboard_exprs() + rule_exprs()
        self.assertGreaterEqual(len([e for w, e in exprs if w == "rule"]), 5)
        for where, expr in exprs:
            used = METRIC.findall(expr)
            self.assertTrue(used or "up{" in expr, (where, expr))
            for name in used:
                self.assertTrue(exported(fam2, name), f"{where}: {name} is not exported ({expr})")

        if PROMTOOL:
            r = subprocess.run([PROMTOOL, "check", "metrics"], input=second, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual((r.stdout + r.stderr).strip(), "", "promtool's lint has remarks")
        self.assertEqual(d.stop(), 0)

    def test_every_429_is_counted_and_logged(self):
        # Another client drains the key: our next call meets a 429, which the
        # counter, the task's calls and the log all show. The bucket is full
        # and answers take 200 ms, so the walk sends call after call without
        # ever waiting for tokens, and so without a reason to re-read the
        # bucket (a free /token call) before its next paid one: the drain is
        # news only a 429 can bring. (With a nearly empty bucket the daemon
        # waited, re-read the bucket while waiting, saw the drain and rightly
        # sent nothing: a race the TSan build lost.)
        port = free_port()
        sim = self.sim("--rate", 60, "--minute-ms", 1000, "--start-tokens", 100000, "--products", 20000,
                       "--latency-ms", 200)
        env = Env()
        env.write_config(sim, [backfiller()], minute_ms=1000, extra=f'metrics: {{ listen = "127.0.0.1:{port}"; }};')
        d = self.daemon(env)
        d.wait_for(lambda: d.task("backfiller")["tokens"]["calls_ok"] >= 1, 60, "a first call")
        sim.control(consume=1000000)
        d.wait_for(lambda: d.status()[0]["tokens"]["our_429"] >= 1, 60, "a 429")
        d.wait_for(lambda: "Keepa answered 429" in d.log_text(), 30, "the 429 in the log")
        _, samples = parse_prometheus(self.scrape(port))
        self.assertGreaterEqual([v for n, _, v in samples if n == "tollgate_keepa_429_total"][0], 1)
        self.assertGreaterEqual([v for n, lab, v in samples if n == "tollgate_calls_total" and 'result="429"' in lab][0],
                                1)
        self.assertRegex(d.log_text(), r"warn +\[backfiller\] Keepa answered 429 \(no tokens left\) \d+ time")
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(PROMTOOL, "promtool is not installed (.ci/run unpacks Debian's)")
    def test_promtool_is_really_run(self):
        # Proof that the check above can fail: promtool rejects a counter
        # without _total and a malformed line.
        r = subprocess.run([PROMTOOL, "check", "metrics"], capture_output=True, text=True, timeout=60,
                           input="# HELP x_bytes y\n# TYPE x_bytes counter\nx_bytes 1\n")
        self.assertNotEqual((r.returncode, (r.stdout + r.stderr).strip()), (0, ""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
