#!/usr/bin/env python3
"""The command line: exit codes (sysexits), check, plugins, run's refusals."""
import os
import re
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import PLUGIN_DIRS, TOLLGATE, Env, Sim, backfiller  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def tg(*args, env=None):
    """Run tollgate; a key is set unless the test says otherwise (check wants one)."""
    return subprocess.run([TOLLGATE, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **dict({"KEEPA_API_KEY": "cli-test-key"}, **(env or {}))))


def plugin_args():
    out = []
    for d in PLUGIN_DIRS:
        out += ["--plugin-dir", d]
    return out



def sdk_abi():
    """The plugin ABI the SDK header declares, as "major.minor" (escaped)."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "include", "tollgate",
                          "tollgate.h")
    with open(header) as f:
        text = f.read()
    major = re.search(r"#define TG_ABI_MAJOR (\d+)", text).group(1)
    minor = re.search(r"#define TG_ABI_MINOR (\d+)", text).group(1)
    return rf"{major}\.{minor}"


ABI = sdk_abi()

class Cli(unittest.TestCase):
    def test_version_and_help(self):
        r = tg("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, rf"^tollgate \d+\.\d+\.\d+ \(plugin ABI {ABI}\)")
        r = tg("--help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("run", "check", "plugins", "status", "sim", "demo"):
            self.assertIn(cmd, r.stdout)
        self.assertEqual(tg("frobnicate").returncode, 64)
        self.assertEqual(tg("--bogus").returncode, 64)
        self.assertEqual(tg().returncode, 64)

    def shipped_config(self, env):
        """The shipped config, its database moved into env (the package makes /var/lib/tollgate)."""
        with open(os.path.join(SRC, "conf", "tollgate.cfg")) as f:
            text = f.read()
        self.assertIn('"/var/lib/tollgate/tollgate.db"', text)
        with open(env.cfg, "w") as f:
            f.write(text.replace('"/var/lib/tollgate/tollgate.db"', f'"{env.db}"'))
        return env.cfg

    def test_check_shipped_config(self):
        env = Env()
        r = tg("--config", self.shipped_config(env), *plugin_args(), "check", env={"KEEPA_API_KEY": "k-for-check"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("key from KEEPA_API_KEY", r.stdout)
        for task in ("backfiller", "upserter", "janitor"):
            self.assertRegex(r.stdout, rf"task {task}\s+plugin {task} ")
        self.assertIn("check ok", r.stdout)
        self.assertEqual(sorted(os.listdir(env.dir)), ["tollgate.cfg"], "check creates nothing")
        # Unchanged, on a machine without /var/lib/tollgate, it is refused.
        r = tg("--config", os.path.join(SRC, "conf", "tollgate.cfg"), *plugin_args(), "check")
        if not os.path.isdir("/var/lib/tollgate"):
            self.assertEqual(r.returncode, 78)
            self.assertIn("its directory /var/lib/tollgate does not exist", r.stderr)

    def test_check_print_is_a_config_that_checks_the_same(self):
        env = Env()
        r = tg("--config", self.shipped_config(env), *plugin_args(), "check", "--print",
               env={"KEEPA_API_KEY": "k"})
        self.assertEqual(r.returncode, 0, r.stderr)
        dump = r.stdout[r.stdout.index("# the effective configuration"):]
        for key in ("minute_ms = 60000;", "max_retries = ", "stall_after_s = ", "rewalk_after_s = ",
                    "referral_pct = 15;  # default"):
            self.assertIn(key, dump)
        again = os.path.join(env.dir, "effective.cfg")
        with open(again, "w") as f:
            f.write(dump)
        r2 = tg("--config", again, "check", "--print", env={"KEEPA_API_KEY": "k"})
        self.assertEqual(r2.returncode, 0, r2.stderr)
        strip = lambda t: [re.sub(r"\s*#.*", "", x) for x in t.splitlines() if not x.lstrip().startswith("#")]
        self.assertEqual(strip(r2.stdout[r2.stdout.index("# the effective configuration"):]), strip(dump))

    def test_check_demo_config(self):
        os.makedirs("/tmp/tollgate-demo", exist_ok=True)
        r = tg("--config", os.path.join(SRC, "conf", "demo.cfg"), *plugin_args(), "check",
               env={"KEEPA_API_KEY": "demo-key"})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_without_key(self):
        e = dict(os.environ)
        e.pop("KEEPA_API_KEY", None)
        r = subprocess.run([TOLLGATE, "--config", self.shipped_config(Env()), *plugin_args(),
                            "check"], capture_output=True, text=True, timeout=60, env=e)
        self.assertEqual(r.returncode, 78)
        self.assertIn("/etc/tollgate/keepa.key", r.stderr)

    def test_check_refuses_broken_config(self):
        bad = os.path.join(SRC, "tests", "unit", "core", "configs", "task_unknown_key.cfg")
        r = tg("--config", bad, "check")
        self.assertEqual(r.returncode, 78)
        self.assertIn("task_unknown_key.cfg:2: unknown key 'tasks[0].priority'", r.stderr)

    def test_check_missing_required_plugin(self):
        env = Env()
        with open(env.cfg, "w") as f:
            f.write('plugin_path = ["%s"];\ntasks = (\n { name = "x"; plugin = "nope"; required = true; }\n);\n'
                    % PLUGIN_DIRS[0])
        r = tg("--config", env.cfg, "check")
        self.assertEqual(r.returncode, 78)
        self.assertIn("tollgate.cfg:3: task \"x\": plugin \"nope\" not found", r.stderr)
        # Optional: a warning, and the check passes.
        with open(env.cfg, "w") as f:
            f.write('plugin_path = ["%s"];\nstorage: { path = "%s"; };\ntasks = (\n { name = "x"; plugin = "nope"; }\n);\n'
                    % (PLUGIN_DIRS[0], env.db))
        r = tg("--config", env.cfg, "check")
        self.assertEqual(r.returncode, 0)
        self.assertIn("optional: it would be skipped", r.stderr)

    def test_check_bad_setting(self):
        env = Env()
        with open(env.cfg, "w") as f:
            f.write('plugin_path = ["%s"];\ntasks = ( { name = "b"; plugin = "backfiller"; required = true;\n'
                    '  settings = { rewalk_after_s = "soon"; }; } );\n' % PLUGIN_DIRS[0])
        r = tg("--config", env.cfg, "check")
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr.count("tollgate.cfg:"), 1, r.stderr)
        self.assertIn("tollgate.cfg:3: task \"b\": setting 'rewalk_after_s' must be an integer, not a string",
                      r.stderr)

    def test_plugins_lists_costs_and_settings(self):
        r = tg(*plugin_args(), "plugins")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 plugin(s)", r.stdout)
        self.assertRegex(r.stdout, rf"backfiller \S+ \(ABI {ABI}\)")
        self.assertRegex(r.stdout, r"deal\s+5 per page")
        self.assertRegex(r.stdout, r"product\s+1 per asin")
        self.assertIn("rewalk_after_s", r.stdout)

    def test_run_refuses_bad_key_and_missing_key(self):
        sim = Sim("--products", 200, key="right-key")
        try:
            env = Env()
            env.write_config(sim, [backfiller()])
            r = subprocess.run([TOLLGATE, "--config", env.cfg, "run"], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, KEEPA_API_KEY="wrong-key"))
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("Keepa refused the key", r.stderr)
            self.assertNotIn("wrong-key", r.stderr)
            e = dict(os.environ)
            e.pop("KEEPA_API_KEY", None)
            r = subprocess.run([TOLLGATE, "--config", env.cfg, "run"], capture_output=True, text=True, timeout=60,
                               env=e)
            self.assertEqual(r.returncode, 78, r.stderr)
        finally:
            sim.stop()

    def test_key_file_readable_by_others_refused(self):
        sim = Sim("--products", 200, key="file-key")
        try:
            env = Env()
            key = os.path.join(env.dir, "keepa.key")
            with open(key, "w") as f:
                f.write("file-key\n")
            os.chmod(key, 0o644)
            env.write_config(sim, [backfiller()])
            with open(env.cfg) as f:
                text = f.read().replace("domain = 1;", f'domain = 1; key_file = "{key}";', 1)
            with open(env.cfg, "w") as f:
                f.write(text)
            e = dict(os.environ)
            e.pop("KEEPA_API_KEY", None)
            r = subprocess.run([TOLLGATE, "--config", env.cfg, "run"], capture_output=True, text=True, timeout=60,
                               env=e)
            self.assertEqual(r.returncode, 78)
            self.assertIn(key, r.stderr)
            os.chmod(key, 0o600)
            p = subprocess.Popen([TOLLGATE, "--config", env.cfg, "run"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=e)
            try:
                line = ""
                for line in p.stdout:
                    if "started" in line or "cannot start" in line:
                        break
                self.assertIn("started", line)
            finally:
                p.terminate()
                p.wait(10)
                p.stdout.close()
            self.assertEqual(p.returncode, 0)
        finally:
            sim.stop()

    def notify_socket(self, env, timeout):
        """systemd's side of Type=notify: a datagram socket (NOTIFY_SOCKET)."""
        path = os.path.join(env.dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(timeout)
        return path, sock

    def notify_run(self, sim, sock_path, env):
        """Run the daemon under a fake systemd (NOTIFY_SOCKET, WATCHDOG_USEC=2 s)."""
        p = subprocess.Popen([TOLLGATE, "--config", env.cfg, "run"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             env=dict(os.environ, KEEPA_API_KEY=sim.key, NOTIFY_SOCKET=sock_path,
                                      WATCHDOG_USEC="2000000"))
        return p

    def test_sd_notify_ready_status_watchdog_stopping(self):
        # systemd's side of Type=notify: a datagram socket named by NOTIFY_SOCKET.
        import time
        sim = Sim("--products", 300)
        env = Env()
        path, sock = self.notify_socket(env, 30)
        try:
            env.write_config(sim, [backfiller()])
            p = self.notify_run(sim, path, env)
            ready = sock.recv(4096).decode()
            self.assertIn("READY=1", ready)
            self.assertIn("STATUS=1 of 1 tasks running", ready)
            # Then STATUS= with the verdict and a summary, and watchdog pings
            # at half of WATCHDOG_USEC.
            got, pings = [], []
            end = time.monotonic() + 60
            while time.monotonic() < end and len(pings) < 4:
                msg = sock.recv(4096).decode()
                got.append(msg)
                if msg == "WATCHDOG=1":
                    pings.append(time.monotonic())
            statuses = [m for m in got if m.startswith("STATUS=")]
            self.assertTrue(statuses, got)
            self.assertRegex(statuses[0], r"^STATUS=(ok|warning) - 1 task: 1 [a-z_]+; tokens ~\d+ of \d+")
            self.assertEqual(len(pings), 4, got)
            gaps = [b - a for a, b in zip(pings, pings[1:])]
            # About 1 s apart (half the 2 s period). The median, not each
            # gap: on a loaded machine one ping can be late by a scheduling
            # hiccup the daemon does not control; a daemon pinging at the
            # full period or never would still be caught.
            gaps.sort()
            self.assertTrue(0.5 < gaps[1] < 1.5, gaps)
            # SIGHUP reloads (e2e-reload); with the configuration unchanged
            # nothing stops, and it keeps pinging.
            p.send_signal(signal.SIGHUP)
            while sock.recv(4096).decode() != "WATCHDOG=1":
                pass
            self.assertIsNone(p.poll())
            p.send_signal(signal.SIGTERM)
            while True:
                msg = sock.recv(4096).decode()
                if msg == "STOPPING=1":
                    break
                self.assertIn(msg.split("=")[0], ("WATCHDOG", "STATUS"))
            self.assertEqual(p.wait(15), 0)
        finally:
            sock.close()
            sim.stop()

    def test_ready_does_not_wait_for_a_hanging_keepa(self):
        # Every request hangs, /token included: READY comes anyway (the first
        # reading follows it), so systemd's start timeout is never at risk.
        sim = Sim("--products", 200, "--phang", 1.0, "--hang-ms", 60000)
        env = Env()
        path, sock = self.notify_socket(env, 20)
        try:
            env.write_config(sim, [backfiller()])
            p = self.notify_run(sim, path, env)
            ready = sock.recv(4096).decode()
            self.assertIn("READY=1", ready)
            self.assertIn("waiting for the first Keepa reading", ready)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(15), 0)
        finally:
            sock.close()
            sim.stop()

    def test_sigterm_during_startup(self):
        # Every request hangs, /token included: the daemon is still starting
        # (waiting for its first reading) when SIGTERM comes.
        import time
        sim = Sim("--products", 200, "--phang", 1.0, "--hang-ms", 60000)
        try:
            env = Env()
            env.write_config(sim, [backfiller()])
            p = subprocess.Popen([TOLLGATE, "--config", env.cfg, "run"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=dict(os.environ, KEEPA_API_KEY=sim.key))
            time.sleep(1.0)
            self.assertIsNone(p.poll(), "the daemon should still be starting")
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            rc = p.wait(15)
            took = time.monotonic() - t0
            out = p.stdout.read()
            p.stdout.close()
            self.assertEqual(rc, 0, out)
            # The answer hangs for 60 s and the timeout is 20 s: stopping in
            # seconds proves the wait was interrupted (not a figure of speed).
            self.assertLess(took, 5.0, out)
            self.assertIn("tollgate stopped", out)
        finally:
            sim.stop()

    def test_journal_priorities_in_every_command(self):
        # Under systemd, stderr is the journal and JOURNAL_STREAM names it:
        # every command's lines then carry a priority, so `journalctl -p err`
        # shows why `check` (ExecStartPre) refused a start.
        env = Env()
        with open(env.cfg, "w") as f:
            f.write(f'plugin_path = ["{PLUGIN_DIRS[0]}"];\nstorage: {{ path = "{env.dir}/nodir/x.db"; }};\n'
                    'tasks = ();\n')
        bad = os.path.join(env.dir, "bad-plugins")
        os.mkdir(bad)
        with open(os.path.join(bad, "junk.so"), "w") as f:
            f.write("not an ELF file\n")
        os.chmod(bad, 0o755)
        os.chmod(os.path.join(bad, "junk.so"), 0o644)
        for argv, prefix in ((["--config", env.cfg, "check"], "<3>tollgate: cannot start: "),
                             (["--config", env.cfg, "run"], "<3>cannot start: "),
                             (["--config", "/nonexistent.cfg", "check"], "<3>tollgate: /nonexistent.cfg"),
                             (["--plugin-dir", bad, "plugins"], "<4>tollgate: refused: ")):
            rd, wr = os.pipe()
            st = os.fstat(wr)
            p = subprocess.Popen([TOLLGATE, *argv], stdout=subprocess.DEVNULL, stderr=wr,
                                 env=dict(os.environ, KEEPA_API_KEY="k", JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"))
            os.close(wr)
            with os.fdopen(rd) as f:
                err = f.read()
            p.wait(60)
            lines = [x for x in err.splitlines() if x]
            self.assertTrue(lines, argv)
            self.assertTrue(any(x.startswith(prefix) for x in lines), (argv, err))
            self.assertTrue(all(re.match(r"^<[0-7]>", x) for x in lines), (argv, err))

    def test_status_of_a_wedged_daemon(self):
        # Something accepts on the socket but never answers (a stopped
        # daemon): the check must still end, CRITICAL, in bounded time.
        import time
        env = Env()
        path = os.path.join(env.dir, "wedged.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        try:
            t0 = time.monotonic()
            r = subprocess.run([TOLLGATE, "status", "--socket", path], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertTrue(r.stdout.startswith("TOLLGATE CRITICAL - "), r.stdout)
            self.assertIn("does not answer", r.stdout)
            self.assertLess(time.monotonic() - t0, 15)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
