#!/usr/bin/env python3
"""End-to-end: SIGHUP reloads the configuration (issue #12 item 6).

The daemon runs in worker mode with the test plugins of tests/plugins
(`writer` writes a row per run, `pinger` makes free Keepa /token calls). A
reload must stop removed tasks, restart changed ones, start added ones and
leave the others alone (the same worker process); an invalid new
configuration is refused with its file:line and changes nothing. Every wait
is on a state (status, the workers' pids, the log), with a generous deadline.
"""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import E2ETest, Env  # noqa: E402

KEY = "RELOAD-KEY-3d9a61c0b7e24f58"
SUPERVISOR = "supervisor: { stop_grace_ms = 1000; };"


def task(name, plugin="writer", schedule=1, **extra):
    t = {"name": name, "plugin": plugin, "required": False, "schedule": schedule}
    t.update(extra)
    return t


def line_of(path, needle):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                return n
    raise AssertionError(f"{needle!r} not in {path}")


class Reload(E2ETest):
    def start(self, tasks, workers="true"):
        self.sim_ = self.sim("--rate", 600, "--products", 100, key=KEY)
        env = Env("tg-reload-")
        self.extra = f"workers = {workers};\n{SUPERVISOR}"
        env.write_config(self.sim_, tasks, extra=self.extra)
        return env, self.daemon(env, key=KEY)

    def rewrite(self, env, tasks, extra=""):
        env.write_config(self.sim_, tasks, extra=self.extra + "\n" + extra)

    def workers(self, d):
        """{task name: worker pid} from the daemon's children's command lines."""
        out = subprocess.run(["pgrep", "-P", str(d.proc.pid)], capture_output=True, text=True).stdout
        found = {}
        for pid in out.split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue  # exited meanwhile
            if b"--task" in argv:
                found[argv[argv.index(b"--task") + 1].decode()] = int(pid)
        return found

    def names(self, d):
        st, _ = d.status()
        return sorted(t["name"] for t in st["tasks"]) if st else None

    def runs(self, d, name):
        t = d.task(name)
        return t["runs"] if t else 0

    def hup_and_wait(self, d, pattern, what):
        """SIGHUP, then the first log line after it that matches pattern."""
        seen = len(d.log_text())
        d.proc.send_signal(signal.SIGHUP)
        return d.wait_for(lambda: re.search(pattern, d.log_text()[seen:], re.M), 60, what)

    def test_added_removed_changed_unchanged(self):
        env, d = self.start([task("a"), task("b", plugin="pinger"), task("c")])
        for name in ("a", "b", "c"):
            d.wait_for(lambda: self.runs(d, name) >= 1, 60, f"{name}'s first run")
        before = d.wait_for(lambda: (lambda w: w if set(w) == {"a", "b", "c"} else None)(self.workers(d)), 60,
                            "a worker for each of a, b, c")

        # b removed, c re-configured (schedule and weight), d added, a as it was.
        self.rewrite(env, [task("d"), task("c", schedule=2, weight=3), task("a")])
        self.hup_and_wait(d, r"reload: done; 1 task\(s\) added, 1 removed, 1 restarted with a new configuration, "
                             r"1 unchanged", "the reload's summary line")
        d.wait_for(lambda: self.names(d) == ["a", "c", "d"], 60, "status to list a, c, d")
        after = d.wait_for(lambda: (lambda w: w if set(w) == {"a", "c", "d"} else None)(self.workers(d)), 60,
                           "workers for a, c, d and none for b")
        self.assertEqual(after["a"], before["a"], "the unchanged task's worker was restarted")
        self.assertNotEqual(after["c"], before["c"], "the changed task kept its old worker")
        with self.assertRaises(OSError, msg="the removed task's worker is still alive"):
            os.kill(before["b"], 0)
        c = d.task("c")
        self.assertEqual((c["weight"], c["interval_s"]), (3, 2))
        for name in ("c", "d"):
            d.wait_for(lambda: self.runs(d, name) >= 1, 60, f"{name}'s first run after the reload")
        runs_a = self.runs(d, "a")
        d.wait_for(lambda: self.runs(d, "a") > runs_a, 60, "a to keep running")
        log = d.log_text()
        self.assertRegex(log, r"\bb\b.*reload: stopped \(removed in the configuration\)")
        self.assertRegex(log, r"\bc\b.*reload: started \(restarted with its new configuration\)")
        self.assertRegex(log, r"\bd\b.*reload: started \(added\)")
        # A changed global is named, and the tasks stay as they are.
        self.rewrite(env, [task("d"), task("c", schedule=2, weight=3), task("a")],
                     extra="web: { requests_per_s = 7; };")
        self.hup_and_wait(d, r"reload: done; no task changed \(3 unchanged\)", "a reload that changes no task")
        self.assertRegex(d.log_text(), r"reload: web\.requests_per_s changed: needs a restart")
        self.assertEqual(self.workers(d), after)

    def test_invalid_config_is_refused_and_nothing_changes(self):
        env, d = self.start([task("a"), task("c")])
        for name in ("a", "c"):
            d.wait_for(lambda: self.runs(d, name) >= 1, 60, f"{name}'s first run")
        before = d.wait_for(lambda: (lambda w: w if set(w) == {"a", "c"} else None)(self.workers(d)), 60,
                            "a worker for a and c")

        # A syntax error: refused at its line.
        self.rewrite(env, [task("a")])
        with open(env.cfg) as f:
            text = f.read()
        bad_line = text.count("\n") + 1
        with open(env.cfg, "a") as f:
            f.write("this is = not libconfig\n")
        m = self.hup_and_wait(d, r"reload refused: (.*); the running configuration is unchanged$",
                              "the refusal of a syntax error")
        self.assertIn(f"{env.cfg}:{bad_line}:", m.group(1))

        # A plugin that does not exist: refused at the task's line.
        self.rewrite(env, [task("a"), task("e", plugin="nosuchplugin")])
        m = self.hup_and_wait(d, r"reload refused: (.*); the running configuration is unchanged$",
                              "the refusal of an unknown plugin")
        # The task's group opens on the line before its name.
        task_line = line_of(env.cfg, 'name = "e"') - 1
        self.assertIn(f"{env.cfg}:{task_line}:", m.group(1))
        self.assertIn('task "e"', m.group(1))

        # Nothing changed: the same tasks, the same workers, still running.
        self.assertEqual(self.names(d), ["a", "c"])
        self.assertEqual(self.workers(d), before)
        runs_c = self.runs(d, "c")
        d.wait_for(lambda: self.runs(d, "c") > runs_c, 60, "c to keep running after the refusals")
        self.assertNotIn("reload: stopped", d.log_text())

    def test_in_process_mode_refuses(self):
        env, d = self.start([task("a")], workers="false")
        d.wait_for(lambda: self.runs(d, "a") >= 1, 60, "a's first run")
        self.rewrite(env, [task("a"), task("b")])
        self.hup_and_wait(d, r"reload refused: reload needs worker mode \(workers = true\)", "the refusal")
        self.assertEqual(self.names(d), ["a"])
        self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
