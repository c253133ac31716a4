#!/usr/bin/env python3
"""The real binary's argument table: --help per command without side effects,
global options anywhere, usage errors (64) naming the option, the bash
completion generated from the table, and sim's options handed through."""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOLLGATE, Env  # noqa: E402


def tg(*args, env=None):
    return subprocess.run([TOLLGATE, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


def commands():
    out = tg("--help").stdout
    block = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines()]


class Args(unittest.TestCase):
    def test_every_command_has_help_without_side_effects(self):
        env = Env()
        # A config that would start (and create files) if anything ran.
        with open(env.cfg, "w") as f:
            f.write(f'keepa: {{ endpoint = "http://127.0.0.1:9"; }};\nstorage: {{ path = "{env.db}"; }};\n'
                    f'runtime_dir = "{env.run}";\ntasks = ();\n')
        cmds = commands()
        self.assertIn("run", cmds)
        self.assertIn("completion", cmds)
        for cmd in cmds:
            for argv in ([cmd, "--help"], ["--config", env.cfg, cmd, "-h"], [cmd, "--config=" + env.cfg, "--help"]):
                r = tg(*argv, env={"KEEPA_API_KEY": "k"})
                self.assertEqual(r.returncode, 0, (argv, r.stderr))
                self.assertTrue(r.stdout.startswith(f"usage: tollgate {cmd}"), (argv, r.stdout))
                self.assertIn("global options:", r.stdout)
                self.assertEqual(r.stderr, "")
        self.assertEqual(sorted(os.listdir(env.dir)), ["tollgate.cfg"])

    def test_global_options_anywhere(self):
        env = Env()
        with open(env.cfg, "w") as f:
            f.write("tasks = ( { name = \"x\"; plugin = \"nope\"; required = true; } );\n")
        a = tg("check", "--config", env.cfg, env={"KEEPA_API_KEY": "k"})
        b = tg("--config", env.cfg, "check", env={"KEEPA_API_KEY": "k"})
        c = tg("check", f"--config={env.cfg}", env={"KEEPA_API_KEY": "k"})
        self.assertEqual(a.returncode, 78)
        self.assertIn(env.cfg, a.stderr)
        self.assertEqual((a.returncode, a.stdout, a.stderr), (b.returncode, b.stdout, b.stderr))
        self.assertEqual((a.returncode, a.stdout, a.stderr), (c.returncode, c.stdout, c.stderr))

    def test_usage_errors_name_the_option(self):
        for argv, word in ((["check", "--config"], "--config needs a value"),
                           (["check", "--conifg", "x"], "unknown option --conifg"),
                           (["status", "--jsno"], "unknown option --jsno"),
                           (["demo", "--seconds", "many"], "--seconds: 'many'"),
                           (["run", "--json"], "tollgate run: unknown option --json"),
                           (["run", "now"], "unexpected argument \"now\"")):
            r = tg(*argv)
            self.assertEqual(r.returncode, 64, argv)
            self.assertIn(word, r.stderr)
            self.assertEqual(r.stdout, "")

    def complete(self, script, *words):
        """COMPREPLY for the command line `words` (the last one is being typed)."""
        cmd = (f"source {script}; COMP_WORDS=(tollgate {' '.join(repr(w) for w in words)}); "
               f"COMP_CWORD={len(words)}; _tollgate; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [w for w in r.stdout.splitlines() if w]

    def test_bash_completion_from_the_table(self):
        env = Env()
        script = os.path.join(env.dir, "tollgate.bash")
        r = tg("completion", "bash")
        self.assertEqual(r.returncode, 0)
        with open(script, "w") as f:
            f.write(r.stdout)
        self.assertEqual(sorted(self.complete(script, "")), sorted(commands()))
        self.assertEqual(self.complete(script, "ch"), ["check"])
        self.assertEqual(self.complete(script, "--config", "/x.cfg", "sta"), ["status"])
        self.assertEqual(self.complete(script, "status", "--j"), ["--json"])
        self.assertIn("--print", self.complete(script, "check", "--"))
        self.assertIn("--config", self.complete(script, "check", "--"))
        self.assertEqual(self.complete(script, "demo", "--seconds", ""), [])
        self.assertEqual(self.complete(script, "completion", ""), ["bash"])
        os.mkdir(os.path.join(env.dir, "plugdir"))
        self.assertEqual(self.complete(script, "--plugin-dir", os.path.join(env.dir, "plug")),
                         [os.path.join(env.dir, "plugdir")])

    def test_sim_takes_every_option_of_the_table(self):
        help_text = tg("sim", "--help").stdout
        opts = re.findall(r"^  --([a-z0-9-]+)", help_text.split("options:\n", 1)[1].split("\n\n", 1)[0], re.M)
        values = {"key": "k", "port": "0", "p500": "0", "phang": "0", "pgarbage": "0", "perror": "0",
                  "start-unix-ms": "1700000000000", "start-tokens": "10", "minute-ms": "1000",
                  "deal-age": "update"}
        argv = [f"--{o}={values.get(o, '5')}" for o in opts]
        self.assertGreater(len(argv), 10)
        p = subprocess.Popen([TOLLGATE, "sim", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            self.assertRegex(line, r"http://127\.0\.0\.1:\d+", p.stderr.read() if not line else "")
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(15)
            p.stdout.close()
            p.stderr.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
