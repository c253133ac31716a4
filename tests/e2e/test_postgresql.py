#!/usr/bin/env python3
"""End-to-end on PostgreSQL storage (run through tests/pg/with-cluster).

`tollgate check` asks the database without writing: a usable database
passes (exit 0); a missing database, a role without CREATE, a password in
the connection string are configuration errors (78); nothing answering at
the address is "unavailable" (69). Each is one line saying why.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import PG_CLUSTER, PLUGIN_DIRS, STORAGE, TOLLGATE, E2ETest, Env, psql  # noqa: E402


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
