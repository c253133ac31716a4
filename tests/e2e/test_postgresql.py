#!/usr/bin/env python3
"""End-to-end on PostgreSQL storage (run through tests/pg/with-cluster).

A PostgreSQL restart under a running daemon: the daemon reconnects, the
chunk that failed is retried, and the database ends equal to the
simulator's ground truth with no gap and no duplicate; while the server is
down, status shows the storage errors.

`tollgate check` asks the database without writing: a usable database
passes (exit 0); a missing database, a role without CREATE, a password in
the connection string are configuration errors (78); nothing answering at
the address is "unavailable" (69). Each is one line saying why.
"""
import os
import shlex
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (PG_CLUSTER, PLUGIN_DIRS, QUERY, STORAGE, TOLLGATE, E2ETest, Env, backfiller,  # noqa: E402
                     psql, upserter)


def check(env, conninfo):
    with open(env.cfg, "w") as f:
        f.write('runtime_dir = "%s";\nstorage: {\n  backend = "postgresql";\n  conninfo = "%s";\n};\n'
                'plugin_path = ["%s"];\n' % (env.run, conninfo, PLUGIN_DIRS[0]))
    e = dict(os.environ, KEEPA_API_KEY="e2e-key")
    return subprocess.run([TOLLGATE, "--config", env.cfg, "check"], capture_output=True, text=True,
                          timeout=120, env=e)


def storage_errors(r):
    return [line for line in r.stderr.splitlines() if "storage" in line or "conninfo" in line]


@unittest.skipUnless(STORAGE == "postgresql" and PG_CLUSTER, "needs tests/pg/with-cluster")
class Check(E2ETest):
    def test_usable_database_passes_without_writing(self):
        env = Env()
        r = check(env, env.conninfo)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r'storage: postgresql database "tg_e2e_\d+_\d+" reachable; role "tollgate" '
                                   r'may create tables in schema "public"')
        # Asked, not tried: not even the host's own table was created.
        self.assertEqual(env.rows("select count(*) from pg_tables where schemaname = 'public'"), [(0,)])

    def test_missing_database(self):
        env = Env()
        r = check(env, PG_CLUSTER + " dbname=tg_no_such_database")
        self.assertEqual(r.returncode, 78, r.stderr)
        errs = storage_errors(r)
        self.assertEqual(len(errs), 1, r.stderr)
        self.assertIn('database "tg_no_such_database" does not exist', errs[0])

    def test_role_without_create(self):
        env = Env()
        psql(env.conninfo, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tg_reader') THEN "
                           "CREATE ROLE tg_reader LOGIN; END IF; END $$; "
                           "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        r = check(env, env.conninfo + " user=tg_reader")
        self.assertEqual(r.returncode, 78, r.stderr)
        errs = storage_errors(r)
        self.assertEqual(len(errs), 1, r.stderr)
        self.assertIn('role "tg_reader" may not create tables in schema "public"', errs[0])

    def test_nothing_answers(self):
        env = Env()
        r = check(env, "host=%s/no-server-here dbname=x user=tollgate connect_timeout=5" % env.dir)
        self.assertEqual(r.returncode, 69, r.stderr)
        errs = storage_errors(r)
        self.assertEqual(len(errs), 1, r.stderr)
        self.assertIn("cannot connect", errs[0])

    def test_password_refused_with_file_and_line(self):
        env = Env()
        r = check(env, env.conninfo + " password=hunter2")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("tollgate.cfg:4: 'storage.conninfo': the connection string holds a password", r.stderr)
        self.assertNotIn("hunter2", r.stderr + r.stdout)

    def test_conninfo_required(self):
        env = Env()
        with open(env.cfg, "w") as f:
            f.write('storage: {\n  backend = "postgresql";\n};\n')
        r = subprocess.run([TOLLGATE, "--config", env.cfg, "check"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 78)
        self.assertIn("tollgate.cfg:2: 'storage.backend' = \"postgresql\" needs 'storage.conninfo'", r.stderr)


def pg_ctl(action):
    subprocess.run(shlex.split(os.environ["TG_TEST_PG_CTL"]) + [action], check=True, capture_output=True,
                   timeout=180)


@unittest.skipUnless(STORAGE == "postgresql" and os.environ.get("TG_TEST_PG_CTL"), "needs tests/pg/with-cluster")
class Restart(E2ETest):
    def test_restart_under_running_daemon_loses_nothing(self):
        # Answers take 50 ms: the walk is still going when the server stops.
        sim = self.sim("--rate", 2000, "--minute-ms", 3600000, "--products", 3000, "--seed", 4,
                       "--latency-ms", 50)
        env = Env()
        # cache_window_s = 0: the upserter reads every run (the catalog is
        # frozen), so the run awaited after the walk comes within seconds.
        env.write_config(sim, [backfiller(rewalk_after_s=-1), upserter(schedule=2, cache_window_s=0)])
        d = self.daemon(env)
        d.wait_for(lambda: env.rows("select count(*) from deals")[0][0] > 0, 60, "the first committed chunk")
        pg_ctl("stop")
        try:
            def outage_shown():
                st, _ = d.status()
                return any("storage" in t["last_error"] for t in st["tasks"])

            d.wait_for(outage_shown, 60, "status to show the storage failing")
            time.sleep(1)  # not a wait for a state: the outage lasts a moment more
        finally:
            pg_ctl("start")
        d.wait_for(lambda: d.task("backfiller")["state"] == "done", 600,
                   "the walk to complete after the restart")
        runs = d.task("upserter")["runs"]
        d.wait_for(lambda: d.task("upserter")["runs"] >= runs + 1, 60, "an upserter run after the walk")
        self.assertEqual(d.stop(), 0)
        self.assertIn("storage: reconnected to PostgreSQL", d.log_text())
        truth = {x["asin"] for x in sim.truth(QUERY)["deals"]["dr"]}
        asins = [r[0] for r in env.rows("select asin from deals")]
        self.assertEqual(len(asins), len(set(asins)), "duplicate rows")
        self.assertEqual(set(asins), truth, "rows lost or extra after the restart")


if __name__ == "__main__":
    unittest.main(verbosity=2)
