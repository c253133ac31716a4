#!/usr/bin/env python3
"""End-to-end: worker mode - a plugin cannot take the host down.

Each test runs the daemon with `workers = true` and plugins from
tests/plugins (misbehave.c): a well-behaved `writer` that writes one row per
run into its own table, and variants that each misbehave once. Every test
asserts what the others tasks keep doing (rows written after the fault) and
what the daemon says about the faulty one (log and status).
"""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOLLGATE, E2ETest, Env  # noqa: E402

KEY = "WORKER-KEY-5f0c3b8e2d7a41c69e1b"
GRACE_MS = 1000
# A deliberate segfault kills its worker with SIGSEGV in every build: under
# a sanitizer, crash_env() keeps the sanitizer from catching it.
SEGV = r"signal SIGSEGV"


def crash_env(**extra):
    """The environment for a daemon or command whose test plugins crash on
    purpose. Under a sanitizer build the sanitizer would catch a worker's
    deliberate SIGSEGV, print a report (into the daemon's log, which fails any
    e2e test under ASan: harness.py) and exit 1 (ASan) or 66 (TSan): with
    handle_segv=0 the worker dies of the signal, as in a plain build. The
    daemon runs under the same option: a SIGSEGV of its own still kills it,
    and the test with it."""
    env = dict(os.environ, **extra)
    for name in ("ASAN_OPTIONS", "TSAN_OPTIONS"):
        env[name] = (env[name] + ":" if env.get(name) else "") + "handle_segv=0"
    return env


def task(name, plugin=None, schedule=1, **extra):
    t = {"name": name, "plugin": plugin or name, "required": False, "schedule": schedule}
    t.update(extra)
    return t


class Workers(E2ETest):
    def start(self, tasks, supervisor="crash_limit = 3; crash_window_s = 600;"):
        sim = self.sim("--rate", 600, "--products", 100, key=KEY)
        env = Env("tg-workers-")
        env.write_config(sim, tasks, extra=f"workers = true;\nsupervisor: {{ stop_grace_ms = {GRACE_MS}; "
                                            f"{supervisor} }};")
        saved = dict(os.environ)
        os.environ.update(crash_env())
        try:
            d = self.daemon(env, key=KEY)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return env, d

    def rows(self, env, table):
        return env.rows(f"select count(*) from {table}")[0][0]

    def wait_rows_grow(self, env, d, table, beyond, what):
        return d.wait_for(lambda: self.rows(env, table) > beyond and self.rows(env, table), 60,
                          f"{table} to grow beyond {beyond} rows {what}")

    def worker_pids(self, d):
        out = subprocess.run(["pgrep", "-P", str(d.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def test_crashes_are_contained_and_quarantined(self):
        env, d = self.start([task("writer"), task("segv"), task("abortinit"), task("ctorcrash")])
        d.wait_for(lambda: self.rows(env, "writer_rows") > 0, 60, "the writer's first rows")
        for name in ("segv", "abortinit", "ctorcrash"):
            t = d.wait_for(lambda: (d.task(name) or {}).get("state") == "quarantined" and d.task(name), 120,
                           f"{name} to be quarantined")
            self.assertEqual(t["verdict"], "critical")
            self.assertIn("quarantined after 3 crashes", t["reason"])
        st, code = d.status()
        self.assertEqual(code, 2)
        self.assertIn("segv: quarantined", st["reason"])
        log = d.log_text()
        self.assertRegex(log, rf"\[segv\] worker died in run \(plugin /\S+/segv\.so\): (?:killed by|exited with) {SEGV}")
        self.assertRegex(log, r"\[abortinit\] worker died in init \(plugin /\S+/abortinit\.so\): "
                              r"killed by signal SIGABRT")
        self.assertRegex(log, r"\[ctorcrash\] worker died while loading the plugin \(plugin /\S+/ctorcrash\.so\): "
                              rf"(?:killed by|exited with) {SEGV}")
        # The daemon is up and the writer keeps writing after the last crash.
        after = self.rows(env, "writer_rows")
        self.wait_rows_grow(env, d, "writer_rows", after + 2, "after every crash")
        self.assertEqual(d.task("writer")["verdict"], "ok")
        self.assertIsNone(d.proc.poll())

    def test_sigterm_kills_a_plugin_that_ignores_stop(self):
        env, d = self.start([task("writer"), task("ignorestop", schedule="continuous")])
        d.wait_for(lambda: (d.task("ignorestop") or {}).get("progress_done", 0) >= 1, 60,
                   "ignorestop to be inside its endless run")
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(60)
        took = time.monotonic() - t0
        log = d.log_text()
        self.assertRegex(log, rf"\[ignorestop\] worker pid \d+ \(plugin /\S+/ignorestop\.so\) it did not stop "
                              rf"within {GRACE_MS} ms of the stop: killed")
        self.assertEqual(d.proc.returncode, 0)
        # The grace period plus seconds, stated generously for a loaded CI
        # machine: without the kill the daemon would never exit at all.
        self.assertLess(took, GRACE_MS / 1000 + 15, f"shutdown took {took:.1f} s")
        print(f"\nSIGTERM to exit with a plugin ignoring should_stop: {took:.2f} s (grace {GRACE_MS} ms)")

    def test_open_transaction_is_rolled_back(self):
        env, d = self.start([task("writer"), task("opentxn")])
        d.wait_for(lambda: "transaction still open: rolled back" in d.log_text(), 60,
                   "a run of opentxn that left a transaction open")
        self.assertIn('a bug in plugin "opentxn"', d.log_text())
        # Identical lines are rate-limited in the log: count its runs instead.
        runs = d.task("opentxn")["runs"]
        d.wait_for(lambda: d.task("opentxn")["runs"] >= runs + 3, 60, "three more runs of opentxn")
        before = self.rows(env, "writer_rows")
        self.wait_rows_grow(env, d, "writer_rows", before + 2, "while opentxn leaves transactions open")
        t = d.task("opentxn")
        self.assertEqual(t["failures"], 0, t)  # its own next begin works: the lock was released
        self.assertEqual(self.rows(env, "opentxn_rows"), 0)  # nothing it never committed

    def test_writing_another_plugins_table_is_refused(self):
        env, d = self.start([task("writer"), task("foreign")])
        d.wait_for(lambda: "remove from writer_rows returned -1" in d.log_text(), 60, "foreign's refused writes")
        log = d.log_text()
        self.assertIn('storage upsert into table "writer_rows" refused: plugin "foreign" did not declare it', log)
        self.assertIn('storage remove into table "writer_rows" refused', log)
        d.wait_for(lambda: "index on writer_rows returned" in d.log_text(), 60, "foreign's refused index")
        self.assertIn('storage index into table "writer_rows" refused', d.log_text())
        self.assertIn("index on writer_rows returned -1 (table not declared by this plugin)", d.log_text())
        self.assertEqual(env.rows("select count(*) from writer_rows where id = -1")[0][0], 0)
        before = self.rows(env, "writer_rows")
        self.wait_rows_grow(env, d, "writer_rows", before, "beside the refused writes")
        self.assertGreaterEqual(env.rows("select count(*) from writer_rows where id = 1")[0][0], 1)

    def test_memory_limit_restarts_a_leaking_worker(self):
        env, d = self.start([task("writer"), task("leak", memory_limit_mb=64)])
        d.wait_for(lambda: "is over memory_limit_mb = 64" in d.log_text(), 90, "the leak to reach its limit")
        self.assertRegex(d.log_text(), r"\[leak\] worker died in run \(plugin /\S+/leak\.so\): killed by the "
                                       r"host: resident memory \d+ MB is over memory_limit_mb = 64")
        d.wait_for(lambda: "[leak] restarting its worker in" in d.log_text(), 30, "the restart")
        runs = d.task("leak")["runs"]
        d.wait_for(lambda: d.task("leak")["runs"] > runs, 60, "the restarted worker to run")
        before = self.rows(env, "writer_rows")
        self.wait_rows_grow(env, d, "writer_rows", before, "while leak is restarted")

    def test_cpu_limit_kills_a_spinning_run(self):
        env, d = self.start([task("writer"), task("spin", cpu_limit_s=1)])
        d.wait_for(lambda: "over cpu_limit_s = 1" in d.log_text(), 90, "the spin to reach its CPU limit")
        self.assertRegex(d.log_text(), r"\[spin\] worker died in run \(plugin /\S+/spin\.so\): killed by the "
                                       r"host: one run used \d+ s of CPU, over cpu_limit_s = 1")
        before = self.rows(env, "writer_rows")
        self.wait_rows_grow(env, d, "writer_rows", before, "beside the spinning task")

    def test_garbage_on_the_socket_kills_the_worker(self):
        env, d = self.start([task("writer"), task("garbage")])
        d.wait_for(lambda: "[garbage] worker died in run" in d.log_text(), 60, "the garbage to be seen")
        self.assertIn("killed by the host: sent a frame longer than the protocol allows", d.log_text())
        before = self.rows(env, "writer_rows")
        self.wait_rows_grow(env, d, "writer_rows", before, "after the garbage")

    def test_init_returning_a_positive_value_is_a_failed_init(self):
        # A failing init is a configuration error for an optional task too
        # (only an absent plugin file lets one be skipped): run refuses to
        # start, naming the task, and check says the same.
        sim = self.sim(key=KEY)
        env = Env("tg-workers-initpositive-")
        env.write_config(sim, [task("writer"), task("initpositive")], extra="workers = true;")
        expected = ('task "initpositive" (' + self.plugin_file("initpositive") + "): init failed: "
                    "init returned 1, which is neither 0 (success) nor a negative TG_E* code")
        for command in ("run", "check"):
            r = subprocess.run([TOLLGATE, "--config", env.cfg, command], capture_output=True, text=True,
                               timeout=120, env=dict(os.environ, KEEPA_API_KEY=KEY))
            self.assertEqual(r.returncode, 78, command + ": " + r.stdout + r.stderr)
            self.assertIn(expected, r.stderr, command)

    def test_worker_environment_holds_no_key(self):
        env, d = self.start([task("writer")])
        d.wait_for(lambda: self.rows(env, "writer_rows") > 0, 60, "the writer's rows")
        pids = self.worker_pids(d)
        self.assertEqual(len(pids), 1, pids)
        with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
            self.assertIn(b"worker", f.read())
        with open(f"/proc/{pids[0]}/environ", "rb") as f:
            environ = f.read()
        self.assertNotIn(b"KEEPA_API_KEY", environ)
        self.assertNotIn(KEY.encode(), environ)
        # The host wiped it from its own environment after reading it.
        with open(f"/proc/{d.proc.pid}/environ", "rb") as f:
            self.assertNotIn(KEY.encode(), f.read())

    def test_check_and_plugins_survive_a_crashing_constructor(self):
        plugin_dir = os.path.dirname(self.plugin_file("ctorcrash"))
        r = subprocess.run([TOLLGATE, "--plugin-dir", plugin_dir, "plugins"], capture_output=True, text=True,
                           timeout=120, env=crash_env())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"refused: /\S+/ctorcrash\.so: loading the plugin crashed its worker: "
                                   rf"(?:killed by|exited with) {SEGV}")
        self.assertRegex(r.stdout, r"writer 0\.1 \(ABI 1\.\d+\)")  # the others are still listed
        sim = self.sim(key=KEY)
        env = Env("tg-workers-check-")
        env.write_config(sim, [task("writer"), dict(task("ctorcrash"), required=True)])
        r = subprocess.run([TOLLGATE, "--config", env.cfg, "check"], capture_output=True, text=True, timeout=120,
                           env=crash_env(KEEPA_API_KEY=KEY))
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r'tollgate\.cfg:\d+: task "ctorcrash": worker died while loading the plugin '
                                   rf"\(plugin /\S+/ctorcrash\.so\): (?:killed by|exited with) {SEGV}")
        self.assertIn("check failed (exit 78", r.stderr)
        # check itself lived to say so, and touched no storage before it.
        self.assertNotIn("storage", r.stderr)

    def plugin_file(self, name):
        for d in os.environ.get("TOLLGATE_PLUGIN_DIRS", "").split(":"):
            if os.path.exists(os.path.join(d, name + ".so")):
                return os.path.join(d, name + ".so")
        raise AssertionError(f"{name}.so is in no TOLLGATE_PLUGIN_DIRS")


if __name__ == "__main__":
    unittest.main(verbosity=2)
