#!/usr/bin/env python3
"""End-to-end: what the system shows about itself.

- `status --json` against a running daemon returns every documented field;
- a task held in a token wait shows as waiting, with its numbers;
- a task whose progress stops turns the verdict to stalled, exit status 2;
- the metrics endpoint is valid Prometheus text (a strict parser below);
- the Keepa key never appears in the log, the status or the metrics;
- SIGTERM stops the daemon within a second even while tasks wait;
- `tollgate demo --seconds 10` exits 0 with deals stored and a summary.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOLLGATE, E2ETest, Env, backfiller, upserter  # noqa: E402

MARKER = "SECRET-MARKER-KEY-d41d8cd98f00b204e9800998ecf8427e"

TOP_FIELDS = {"version", "pid", "uptime_s", "tokens", "plugins", "tasks", "verdict", "exit_status", "reason"}
TOKEN_FIELDS = {"have_reading", "estimate", "last_reading", "last_reading_age_s", "rate_per_min", "cap",
                "utilization_1h", "deepest_deficit", "outside_per_min", "wasted", "our_429", "policy"}
TASK_FIELDS = {"name", "plugin", "plugin_version", "required", "weight", "schedule", "state", "progress_done",
               "progress_total", "progress_unit", "last_progress_ms", "last_progress_age_s",
               "throughput_per_min", "runs", "failures", "last_error", "verdict", "reason", "tokens"}
TASK_TOKEN_FIELDS = {"consumed", "calls_ok", "calls_429", "calls_error", "queued", "wait_p50_s", "wait_max_s",
                     "cost_estimated", "cost_actual", "cost_estimate_error", "budget_hint",
                     "latency_sensitive", "passed_waiting_head"}
WAIT_FIELDS = {"kind", "cost", "target", "estimate", "eta_s", "waited_s"}

# Prometheus text format 0.0.4, strictly: HELP/TYPE lines, then samples of
# that family, names and labels well formed, values floats.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{{LABEL}(?:,{LABEL})*\}})? (-?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|[+-]Inf))$")


def parse_prometheus(text):
    families, samples, current = {}, [], None
    assert text.endswith("\n"), "exposition must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(NAME, name), f"line {n}: bad name {name}"
            assert name not in families, f"line {n}: family {name} repeated"
            families[name] = None
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current, f"line {n}: TYPE for {name} after HELP for {current}"
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), f"line {n}: type {kind}"
            families[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"line {n}: not a valid sample: {line!r}"
            name = m.group(1)
            if families[current] == "histogram":
                assert name in (current + "_bucket", current + "_sum", current + "_count"), \
                    f"line {n}: sample {name} outside its histogram {current}"
                if name.endswith("_bucket"):
                    assert 'le="' in (m.group(2) or ""), f"line {n}: bucket without le"
            else:
                assert name == current, f"line {n}: sample {name} outside its family {current}"
            if families[current] == "counter":
                assert m.group(1).endswith("_total"), f"line {n}: counter without _total"
                assert float(m.group(3)) >= 0
            samples.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return families, samples


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Status(E2ETest):
    def start(self, sim_args, tasks, key="e2e-key", **cfg):
        sim = self.sim(*sim_args, key=key)
        env = Env()
        env.write_config(sim, tasks, **cfg)
        return sim, env, self.daemon(env, key=key)

    def test_fields_metrics_and_secrecy(self):
        port = free_port()
        sim, env, d = self.start(["--rate", 500, "--minute-ms", 200, "--products", 1500],
                                 [backfiller(), upserter(schedule=2)], key=MARKER, minute_ms=200,
                                 extra=f'metrics: {{ listen = "127.0.0.1:{port}"; }};')
        d.wait_for(lambda: d.task("backfiller")["progress_done"] > 0, 60, "progress")
        st, rc = d.status()
        self.assertTrue(TOP_FIELDS <= set(st), TOP_FIELDS - set(st))
        self.assertTrue(TOKEN_FIELDS <= set(st["tokens"]), TOKEN_FIELDS - set(st["tokens"]))
        for t in st["tasks"]:
            self.assertTrue(TASK_FIELDS <= set(t), TASK_FIELDS - set(t))
            self.assertTrue(TASK_TOKEN_FIELDS <= set(t["tokens"]), TASK_TOKEN_FIELDS - set(t["tokens"]))
        self.assertEqual({p["name"] for p in st["plugins"]}, {"backfiller", "upserter"})
        self.assertTrue(all(p["version"] for p in st["plugins"]))
        self.assertEqual(st["verdict"], "ok", st["reason"])
        self.assertEqual(rc, 0)
        human = subprocess.run([TOLLGATE, "status", "--socket", env.socket], capture_output=True, text=True)
        self.assertEqual(human.returncode, 0)
        self.assertIn("backfiller", human.stdout)
        self.assertIn("verdict: ok", human.stdout)
        # The monitoring-plugin line first: state, summary, then perfdata.
        first = human.stdout.splitlines()[0]
        self.assertRegex(first, r"^TOLLGATE OK - 2 tasks: .*; tokens ~\d+ of \d+, [\d.]+/min, utilization [\d.]+ \| ")
        perf = dict(re.findall(r"'?([a-z_0-9]+)'?=([^ ]+)", first.split(" | ", 1)[1]))
        self.assertRegex(perf["tokens"], r"^-?\d+;;;;\d+$")
        self.assertRegex(perf["utilization"], r"^[\d.]+;;;0$")
        self.assertRegex(perf["backfiller_progress_age"], r"^\d+s;;\d+;0$")
        self.assertRegex(perf["upserter_tokens"], r"^\d+c$")
        self.assertEqual(human.stderr, "")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            text = r.read().decode()
        families, samples = parse_prometheus(text)
        for name in ("tollgate_tokens_consumed_total", "tollgate_calls_total", "tollgate_tokens_estimate",
                     "tollgate_task_last_progress_timestamp_seconds", "tollgate_verdict"):
            self.assertIn(name, families)
        consumed = [v for n, lab, v in samples if n == "tollgate_tokens_consumed_total" and 'task="backfiller"' in lab]
        self.assertEqual(len(consumed), 1)
        self.assertGreater(consumed[0], 0)

        self.assertEqual(d.stop(), 0)
        for what, text_ in (("log", d.log_text()), ("status", human.stdout + str(st)), ("metrics", text)):
            self.assertNotIn(MARKER, text_, f"the key leaked into the {what}")
        self.assertNotIn(MARKER[:20], d.log_text())

    def test_waiting_for_tokens_is_visible(self):
        # An empty bucket refilled by 1 token a real minute: the backfiller's
        # first page (5 tokens) waits, and status says so with its numbers.
        sim, env, d = self.start(["--rate", 1, "--start-tokens", 0, "--products", 500],
                                 [backfiller()])
        # The task's state and the scheduler's class are two snapshots: for a
        # moment the task can say waiting_for_tokens before its class does
        # (no "waiting" object yet), so wait for both.
        t = d.wait_for(lambda: (lambda x: x if x["state"] == "waiting_for_tokens" and "waiting" in x else None)(
            d.task("backfiller")), 30, "the backfiller to wait for tokens")
        w = t["waiting"]
        self.assertTrue(WAIT_FIELDS <= set(w), WAIT_FIELDS - set(w))
        self.assertEqual(w["kind"], "deal")
        self.assertGreaterEqual(w["cost"], 5)
        self.assertLess(w["estimate"], w["target"])
        self.assertGreater(w["eta_s"], 0)
        human = subprocess.run([TOLLGATE, "status", "--socket", env.socket], capture_output=True, text=True)
        self.assertIn("waiting for tokens: deal costs", human.stdout)
        # And SIGTERM ends the wait at once.
        self.assertEqual(d.stop(), 0)
        # A wait of minutes ends in seconds (not a speed figure: a loaded
        # sanitizer build may take more than one).
        self.assertLess(d.stop_seconds, 10.0)
        self.assertRegex(d.log_text(), r"wait.*deal.*cost.*target.*estimate")

    def test_stalled_task_is_critical(self):
        # The daemon starts normally; then every request hangs: the
        # backfiller is in flight, not waiting for tokens, and makes no
        # progress - after stall_after_s that is critical, exit status 2.
        # A catalog large enough that the walk is still going when the hang
        # begins (3,000 products, 530 deals, were walked in half a second).
        sim, env, d = self.start(["--rate", 500, "--minute-ms", 200, "--products", 40000, "--start-tokens", 0],
                                 [backfiller()], minute_ms=200, status="stall_after_s = 2;")
        d.wait_for(lambda: d.task("backfiller")["progress_done"] > 0, 60, "first progress")
        sim.control(hang_pct=100)
        st = d.wait_for(lambda: (lambda s: s if s and s["verdict"] == "critical" else None)(d.status()[0]),
                        30, "the verdict to turn critical")
        _, rc = d.status()
        self.assertEqual(rc, 2)
        bf = [t for t in st["tasks"] if t["name"] == "backfiller"][0]
        self.assertEqual(bf["verdict"], "critical")
        self.assertIn("stalled", bf["reason"])
        # The change is logged once, with the reason, when it happens.
        d.wait_for(lambda: "verdict ok -> critical: stalled" in d.log_text(), 30, "the verdict change in the log")
        time.sleep(2)  # a few more ticks: still one line, not one per tick
        self.assertEqual(d.log_text().count("verdict ok -> critical"), 1, d.log_text()[-2000:])
        human = subprocess.run([TOLLGATE, "status", "--socket", env.socket], capture_output=True, text=True)
        self.assertEqual(human.returncode, 2)
        self.assertTrue(human.stdout.startswith("TOLLGATE CRITICAL - 1 task"), human.stdout)
        self.assertIn("backfiller: stalled", human.stdout.splitlines()[0])
        self.assertEqual(d.stop(), 0)

    def status(self, *args, **kw):
        return subprocess.run([TOLLGATE, "status", *args], capture_output=True, text=True, timeout=60, **kw)

    def test_no_daemon_is_critical(self):
        r = self.status("--socket", "/nonexistent/tollgate.sock")
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stdout.startswith("TOLLGATE CRITICAL - no daemon answers at /nonexistent/tollgate.sock"),
                        r.stdout)
        self.assertEqual(len(r.stdout.splitlines()), 1)
        r = self.status("--socket", "/nonexistent/tollgate.sock", "--json")
        self.assertEqual(r.returncode, 2)
        doc = json.loads(r.stdout)
        self.assertEqual((doc["verdict"], doc["exit_status"]), ("critical", 2))
        self.assertIn("no daemon answers", doc["reason"])

    def test_cannot_tell_is_unknown(self):
        # An unreadable configuration: the check cannot even find the socket.
        r = subprocess.run([TOLLGATE, "--config", "/nonexistent/tollgate.cfg", "status"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertTrue(r.stdout.startswith("TOLLGATE UNKNOWN - cannot read the configuration"), r.stdout)
        r = subprocess.run([TOLLGATE, "--config", "/nonexistent/tollgate.cfg", "status", "--json"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(json.loads(r.stdout)["verdict"], "unknown")
        # Something answers, but not with a status document.
        env = Env()
        path = os.path.join(env.dir, "garbled.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        done = threading.Event()

        def answer():
            c, _ = srv.accept()
            c.sendall(b"hello, I am not tollgate\n")
            c.close()
            done.set()
        th = threading.Thread(target=answer)
        th.start()
        try:
            r = self.status("--socket", path)
            self.assertEqual(r.returncode, 3)
            self.assertTrue(r.stdout.startswith("TOLLGATE UNKNOWN - the daemon's answer is not a status document"))
        finally:
            th.join(30)
            srv.close()

    def test_no_permission_is_unknown_and_says_why(self):
        # A socket the caller may not reach, as for a user outside group
        # tollgate: UNKNOWN (the check cannot tell), and how to get access.
        env = Env()
        sockdir = os.path.join(env.dir, "private")
        os.mkdir(sockdir)
        path = os.path.join(sockdir, "status.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        try:
            if os.geteuid() == 0:
                os.chmod(sockdir, 0o700)  # root's; the check runs as nobody
                kw = {"preexec_fn": lambda: (os.setgid(65534), os.setuid(65534))}
            else:
                os.chmod(sockdir, 0o000)
                kw = {}
            r = self.status("--socket", path, **kw)
            self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
            self.assertIn("TOLLGATE UNKNOWN - permission denied on " + path, r.stdout)
            self.assertIn("members of group tollgate", r.stdout)
        finally:
            os.chmod(sockdir, 0o700)
            srv.close()

    def test_demo(self):
        env = Env()
        r = subprocess.run([TOLLGATE, "demo", "--seconds", "10", "--dir", env.dir], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("== summary", r.stdout)
        self.assertIn("the ten best deals", r.stdout)
        stored = int(re.search(r"deals stored: (\d+)", r.stdout).group(1))
        self.assertGreater(stored, 0)
        self.assertEqual(env.rows("select count(*) from deals")[0][0], stored)
        self.assertRegex(r.stdout, r"our 429s 0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
