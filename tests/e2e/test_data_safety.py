#!/usr/bin/env python3
"""The token-paid database is never silently lost: a database deleted or
replaced under the running daemon stops it (exit 74, which the unit does not
restart on) with a message saying what happened, and a storage.path whose
directory does not exist is refused instead of creating a new empty one."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import PLUGIN_DIRS, TOLLGATE, E2ETest, Env, backfiller  # noqa: E402


class DataSafety(E2ETest):
    def running(self):
        sim = self.sim("--rate", 300, "--minute-ms", 200, "--products", 1500)
        env = Env()
        env.write_config(sim, [backfiller()], minute_ms=200)
        d = self.daemon(env)
        d.wait_for(lambda: env.rows("select count(*) from deals")[0][0] > 0, 60, "rows in the database")
        return env, d

    def stopped_with(self, d, words):
        try:
            rc = d.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("the daemon kept running without its database:\n" + d.log_text()[-2000:])
        log = d.log_text()
        self.assertEqual(rc, 74, log[-2000:])
        self.assertIn(words, log)
        self.assertRegex(log, r"error \[tollgate\] stopping: the database ")

    def test_deleted_database_stops_the_daemon(self):
        env, d = self.running()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(env.db + suffix):
                os.unlink(env.db + suffix)
        self.stopped_with(d, f"the database {env.db} was deleted while the daemon ran")

    def test_replaced_database_stops_the_daemon(self):
        env, d = self.running()
        shutil.copy(env.db, env.db + ".copy")
        os.rename(env.db + ".copy", env.db)
        self.stopped_with(d, f"the database {env.db} was replaced by another file")

    def test_missing_directory_is_refused_not_created(self):
        env = Env()
        typo = os.path.join(env.dir, "tollgtae", "tollgate.db")
        with open(env.cfg, "w") as f:
            f.write(f'storage: {{ path = "{typo}"; }};\nruntime_dir = "{env.run}";\n'
                    f'plugin_path = [ "{PLUGIN_DIRS[0]}" ];\ntasks = ();\n')
        for cmd in ("check", "run"):
            r = subprocess.run([TOLLGATE, "--config", env.cfg, cmd], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, KEEPA_API_KEY="k"))
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn(f"its directory {os.path.dirname(typo)} does not exist", r.stderr)
            self.assertFalse(os.path.exists(os.path.dirname(typo)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
