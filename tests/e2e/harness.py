"""Shared pieces of the end-to-end tests: the simulator, the daemon, configs.

Everything runs on 127.0.0.1 only. Each helper bounds its waits, so a broken
build fails a test instead of hanging CI.
"""
import atexit
import http.server
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

TOLLGATE = os.environ.get("TOLLGATE", "build/host/tollgate")
# The storage under test: "sqlite" (a file per Env), or "postgresql" (a
# database per Env on the cluster tests/pg/with-cluster started).
STORAGE = os.environ.get("TG_TEST_STORAGE", "sqlite")
PG_CLUSTER = os.environ.get("TG_TEST_PG_CONNINFO", "")
PSQL = os.path.join(os.environ.get("TG_TEST_PG_BINDIR", "/usr/bin"), "psql")
PLUGIN_DIRS = [d for d in os.environ.get("TOLLGATE_PLUGIN_DIRS", "").split(":") if d]
# TOLLGATE_WORKERS=0 runs every daemon of the suite in-process (tasks as
# threads of the daemon), =1 in worker mode; unset: the config's default
# (worker mode).
WORKERS = os.environ.get("TOLLGATE_WORKERS", "")

# The seed operator's kind of query, loosened so a small catalog has deals.
# What a sanitizer prints when it finds something: a daemon's log or a
# simulator's stderr holding one fails the test that ran it (the sanitizer
# builds run this suite too, and a report in a child process would otherwise
# go unseen).
SANITIZER_MARKS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def sanitizer_report(text):
    """The first sanitizer report in text (with some context), or None."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 3000]
    return None


QUERY = {
    "domainId": 1,
    "priceTypes": [2],
    "dateRange": 3,
    "currentRange": [500, 45100],
    "deltaPercentRange": [10, 100],
    "isRangeEnabled": True,
}


def libconfig_value(v, indent="  "):
    """A Python value as libconfig text (numbers stay numbers)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return "[ " + ", ".join(repr(x) for x in v) + " ]"
        return "( " + ", ".join(libconfig_value(x, indent) for x in v) + " )"
    if isinstance(v, dict):
        inner = "".join(f"{indent}  {k} = {libconfig_value(x, indent + '  ')};\n" for k, x in v.items())
        return "{\n" + inner + indent + "}"
    raise TypeError(v)


class Sim:
    """`tollgate sim` as a child process on a free loopback port."""

    def __init__(self, *args, key="e2e-key"):
        self.key = key
        self.err = ""
        self.proc = subprocess.Popen([TOLLGATE, "sim", "--port", "0", "--key", key, *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"sim did not start: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}{'?' + q if q else ''}", timeout=30) as r:
            return json.loads(r.read())

    def stats(self):
        return self.get("/_sim/stats")

    def truth(self, selection):
        return self.get("/_sim/deals", selection=json.dumps(selection))

    def control(self, **params):
        return self.get("/_sim/control", **params)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.proc.stderr.closed:
            self.err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()


class Proxy:
    """An HTTP proxy on a free loopback port in front of upstream (a Sim's
    url): the daemon is pointed at proxy.url. Every request is recorded
    (path; monotonic times: when it arrived, when upstream answered, when the
    answer was written to the daemon's socket), and
    rewrite(path, doc), when given, may change a 200 JSON answer in place
    (Python's json keeps integers exact)."""

    def __init__(self, upstream, rewrite=None):
        self.upstream = upstream
        self.rewrite = rewrite
        self.lock = threading.Lock()
        self.requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.forward(self)

            def do_POST(self):
                proxy.forward(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward(self, h):
        rec = {"path": h.path.split("?")[0], "started": time.monotonic(), "upstream": None, "answered": None}
        with self.lock:
            self.requests.append(rec)
        n = int(h.headers.get("Content-Length") or 0)
        data = h.rfile.read(n) if n else None
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("content-type", "user-agent")}
        req = urllib.request.Request(self.upstream + h.path, data=data, headers=headers, method=h.command)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        with self.lock:
            rec["upstream"] = time.monotonic()
        if self.rewrite and status == 200 and "json" in ctype:
            doc = json.loads(body)
            with self.lock:
                self.rewrite(rec["path"], doc)
            body = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype or "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        with self.lock:
            rec["answered"] = time.monotonic()

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.requests]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class DbError(OSError):
    """A query of the database under test failed (waits retry on it)."""


def psql(conninfo, sql):
    """Run sql with psql; its output, or DbError with psql's reason."""
    r = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise DbError(r.stderr.strip())
    return r.stdout


_env_dirs = []  # every Env's directory, removed when the test program ends


@atexit.register
def _remove_env_dirs():
    # A failing test has already printed its daemon's log tail; to look
    # inside the directories afterwards, run with TG_E2E_KEEP=1.
    if os.environ.get("TG_E2E_KEEP"):
        return
    for path in _env_dirs:
        shutil.rmtree(path, ignore_errors=True)


class Env:
    """A directory with a config, a database and a runtime dir."""

    serial = 0

    def __init__(self, prefix="tg-e2e-", share=None):
        """share: another Env whose PostgreSQL database this one uses too
        (a second host of a hot-standby pair)."""
        self.dir = tempfile.mkdtemp(prefix=prefix)
        _env_dirs.append(self.dir)
        self.conninfo = share.conninfo if share else None
        if STORAGE == "postgresql" and not share:
            Env.serial += 1
            name = f"tg_e2e_{os.getpid()}_{Env.serial}"
            psql(PG_CLUSTER, f"CREATE DATABASE {name}")
            # A later keyword wins in a connection string.
            self.conninfo = f"{PG_CLUSTER} dbname={name}"
        os.chmod(self.dir, 0o755)
        self.db = os.path.join(self.dir, "tollgate.db")
        self.run = os.path.join(self.dir, "run")
        self.socket = os.path.join(self.run, "status.sock")
        self.cfg = os.path.join(self.dir, "tollgate.cfg")
        self.log = os.path.join(self.dir, "daemon.log")

    def write_config(self, sim, tasks, minute_ms=60000, extra="", tokens="", status="", latency_target_s=30):
        text = f"""keepa: {{ endpoint = "{sim.url}"; domain = 1; timeout_s = 20; max_retries = 3; }};
tokens: {{ policy = "reserve"; deepest_deficit = 100; latency_target_s = {latency_target_s}; minute_ms = {minute_ms}; {tokens} }};
storage: {{ {self.storage_settings()} }};
runtime_dir = "{self.run}";
plugin_path = [ {", ".join(json.dumps(d) for d in PLUGIN_DIRS)} ];
log: {{ level = "info"; progress_interval_s = 5; }};
status: {{ socket = "{self.socket}"; {status} }};
{"workers = " + ("true" if WORKERS == "1" else "false") + ";" if WORKERS in ("0", "1") else ""}
{extra}
tasks = (
"""
        text += ",\n".join("  " + libconfig_value(t) for t in tasks) + "\n);\n"
        with open(self.cfg, "w") as f:
            f.write(text)
        return self.cfg

    def storage_settings(self):
        if self.conninfo:
            return f'backend = "postgresql"; conninfo = "{self.conninfo}";'
        return f'backend = "sqlite"; path = "{self.db}";'

    def rows(self, sql, *args):
        if self.conninfo:
            # Typed values through JSON, rows as tuples in column order.
            assert not args, "parameters are for SQLite only"
            out = psql(self.conninfo, f"SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM ({sql}) q")
            return [tuple(r.values()) for r in json.loads(out)]
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


class Daemon:
    """`tollgate run` with its log in a file."""

    def __init__(self, env, key="e2e-key"):
        self.env = env
        # Several daemons may share one log (a restart); each reads its own part.
        self.log_start = os.path.getsize(env.log) if os.path.exists(env.log) else 0
        self.logf = open(env.log, "a")
        e = dict(os.environ, KEEPA_API_KEY=key)
        self.proc = subprocess.Popen([TOLLGATE, "--config", env.cfg, "run"], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=e)

    def status(self):
        r = subprocess.run([TOLLGATE, "status", "--json", "--socket", self.env.socket],
                           capture_output=True, text=True, timeout=30)
        if not r.stdout.strip():
            return None, r.returncode
        return json.loads(r.stdout), r.returncode

    def task(self, name):
        st, _ = self.status()
        if not st:
            return None
        for t in st["tasks"]:
            if t["name"] == name:
                return t
        return None

    def wait_for(self, cond, timeout, what):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) while waiting for {what}:\n"
                                     + self.log_text()[-3000:])
            try:
                last = cond()
                if last:
                    return last
            except (OSError, ValueError, KeyError, TypeError, IndexError, sqlite3.Error):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; log tail:\n"
                             + self.log_text()[-3000:])

    def log_text(self):
        if not self.logf.closed:
            self.logf.flush()
        # A stray byte in the log must not hide the failure being reported.
        with open(self.env.log, errors="backslashreplace") as f:
            f.seek(self.log_start)
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not stop on SIGTERM within %ss" % timeout)
            self.stop_seconds = time.monotonic() - t0
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode


def backfiller(query=QUERY, **settings):
    return {"name": "backfiller", "plugin": "backfiller", "required": True, "weight": 1,
            "schedule": "continuous", "settings": dict({"query": query}, **settings)}


def upserter(query=QUERY, schedule=2, weight=2, **settings):
    return {"name": "upserter", "plugin": "upserter", "required": True, "weight": weight,
            "schedule": schedule, "settings": dict({"query": query}, **settings)}


class E2ETest(unittest.TestCase):
    """Starts simulators and daemons for a test and always stops them."""

    def setUp(self):
        self.sims, self.daemons = [], []

    def tearDown(self):
        for d in self.daemons:
            try:
                d.stop()
            except AssertionError:
                pass
        for s in self.sims:
            s.stop()
        for what, text in [("daemon log", d.log_text()) for d in self.daemons] + \
                          [("simulator stderr", s.err) for s in self.sims]:
            report = sanitizer_report(text)
            if report:
                self.fail(f"sanitizer report in the {what}:\n{report}")

    def sim(self, *args, key="e2e-key"):
        s = Sim(*args, key=key)
        self.sims.append(s)
        return s

    def daemon(self, env, key="e2e-key"):
        d = Daemon(env, key=key)
        self.daemons.append(d)
        return d
