#!/usr/bin/env python3
"""check refuses every configuration run refuses, with the same message and
exit status: a corpus of start-up refusals, each fed to both commands.

Each case breaks one rule. `run` is given a live simulator, so nothing but
the broken rule can stop it; a case run accepts is a test error (the corpus
is only worth something if every entry is a real refusal)."""
import copy
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import PLUGIN_DIRS, QUERY, TOLLGATE, Env, Sim, backfiller, libconfig_value, upserter  # noqa: E402


def config_text(env, sim, tasks, keepa="", tokens="", storage=None, top=""):
    storage = f'path = "{env.db}";' if storage is None else storage
    endpoint = "" if "endpoint" in keepa else f'endpoint = "{sim.url}";'
    return (f'keepa: {{ {endpoint} timeout_s = 10; max_retries = 1; {keepa} }};\n'
            f'tokens: {{ {tokens} }};\nstorage: {{ backend = "sqlite"; {storage} }};\n'
            f'runtime_dir = "{env.run}";\nplugin_path = [ {", ".join(chr(34) + d + chr(34) for d in PLUGIN_DIRS)} ];\n'
            f'status: {{ socket = "{env.socket}"; }};\n{top}\n'
            "tasks = (\n" + ",\n".join("  " + libconfig_value(t) for t in tasks) + "\n);\n")


def bad_query(**change):
    q = copy.deepcopy(QUERY)
    for k, v in change.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return q


def optional(task):
    return dict(task, required=False)


# name -> (config arguments, exit status, words the message must contain)
CASES = {
    "plain http to a remote host": (dict(keepa='endpoint = "http://keepa.example.com";'), 78,
                                    "plain http is accepted only for loopback"),
    "accelerated minute against https": (dict(keepa='endpoint = "https://127.0.0.1:1";', tokens="minute_ms = 500;"),
                                         78, "tokens.minute_ms = 500 is only for a simulator"),
    "storage directory missing": (dict(storage='path = "{dir}/no-such-dir/tollgate.db";'), 78,
                                  "no-such-dir does not exist"),
    "storage path empty": (dict(storage='path = "";'), 78, "storage.path is empty"),
    "storage path is under a file": (dict(storage='path = "{cfg}/tollgate.db";'), 78, "is not a directory"),
    "domainId as a string": (dict(tasks=[backfiller(query=bad_query(domainId="1"))]), 78, "query.domainId"),
    "query without priceTypes": (dict(tasks=[backfiller(query=bad_query(priceTypes=None))]), 78, "priceTypes"),
    "query typo in an optional task": (dict(tasks=[backfiller(), optional(upserter(query=bad_query(dateRange=9)))]),
                                       78, "dateRange"),
    "wrong setting type in an optional task": (dict(tasks=[backfiller(), optional(upserter(max_pages="many"))]), 78,
                                               "setting 'max_pages' must be an integer"),
    "unknown setting in an optional task": (dict(tasks=[backfiller(), optional(upserter(maxpages=3))]), 78,
                                            "has no setting 'maxpages'"),
    "two tasks of one name": (dict(tasks=[backfiller(), backfiller()]), 78, 'task name "backfiller"'),
    "required plugin absent": (dict(tasks=[dict(backfiller(), plugin="nosuchplugin")]), 78,
                               'plugin "nosuchplugin" not found'),
    "unknown top-level key": (dict(top="colour = \"blue\";"), 78, "unknown key 'colour'"),
    "metrics.listen unparsable": (dict(top='metrics: { listen = "everywhere"; };'), 78, "metrics.listen"),
}


class CheckVsRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--products", 200)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def write(self, env, args):
        args = dict(args)
        tasks = args.pop("tasks", [backfiller()])
        if "storage" in args:
            args["storage"] = args["storage"].format(dir=env.dir, cfg=env.cfg)
        with open(env.cfg, "w") as f:
            f.write(config_text(env, self.sim, tasks, **args))

    def tg(self, env, cmd):
        e = dict(os.environ, KEEPA_API_KEY=self.sim.key)
        p = subprocess.Popen([TOLLGATE, "--config", env.cfg, cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=e)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail(f"{cmd} accepted the configuration and kept running:\n{err[-2000:]}")
        return p.returncode, out, err

    def test_every_refusal_of_run_is_a_refusal_of_check(self):
        for name, (args, status, words) in CASES.items():
            with self.subTest(name):
                env = Env()
                self.write(env, args)
                rc_check, _, err_check = self.tg(env, "check")
                self.assertFalse(os.path.exists(env.db), "check never creates the database")
                rc_run, _, err_run = self.tg(env, "run")
                self.assertEqual(rc_run, status, err_run)
                self.assertEqual(rc_check, status, err_check)
                self.assertIn(words, err_check)
                # The same message: check's first line, without its prefix, is in run's log.
                first = err_check.splitlines()[0].removeprefix("tollgate: ").removeprefix("cannot start: ")
                self.assertIn(first, err_run)

    def test_the_corpus_base_is_accepted(self):
        # Control: the configuration the cases break starts, and check passes it.
        env = Env()
        self.write(env, {})
        rc, out, err = self.tg(env, "check")
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(env.db), "check never creates the database")
        e = dict(os.environ, KEEPA_API_KEY=self.sim.key)
        p = subprocess.Popen([TOLLGATE, "--config", env.cfg, "run"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=e)
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end and not os.path.exists(env.socket):
                self.assertIsNone(p.poll(), p.stdout.read() if p.poll() is not None else "")
                time.sleep(0.1)
            self.assertTrue(os.path.exists(env.socket))
        finally:
            p.terminate()
            p.wait(15)
            p.stdout.close()
        self.assertEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
