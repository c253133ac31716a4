#!/usr/bin/env python3
"""valgrind memcheck over one end-to-end run (CI runs this; so can anyone).

    python3 tests/memcheck/memcheck.py [BUILD_DIR]        (default: build)

The daemon runs under valgrind against `tollgate sim` on 127.0.0.1 (the
simulator runs natively: it is the test's server, not what is checked) with
the three shipped plugins: the backfiller walks the whole query, the upserter
runs on its schedule, the janitor refreshes rows, and about one in six requests
meets an injected fault (HTTP 500, a hang ended by a closed connection, a
truncated body, an in-body error), so
the client's retry and error paths run too. Then SIGTERM, and the verdict:

- valgrind reports no error (invalid reads or writes, uninitialised values
  that decide a jump, bad frees, overlapping copies ...);
- nothing is definitely or indirectly lost (valgrind's own exit status,
  --errors-for-leak-kinds=definite,indirect);
- the daemon exits 0 and the database holds the simulator's ground truth.

Prints the figures (errors, bytes lost by kind, calls, rows, seconds).
"""
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
os.environ.setdefault("TOLLGATE", os.path.join(BUILD, "host", "tollgate"))
os.environ.setdefault("TOLLGATE_PLUGIN_DIRS", os.path.join(BUILD, "plugins"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from harness import QUERY, TOLLGATE, Env, Sim, backfiller, upserter  # noqa: E402

VALGRIND_EXIT = 99
DEADLINE_S = 600  # valgrind is 20-50x slower: generous, and still bounded


def wait_for(what, cond, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"memcheck: the daemon exited ({proc.returncode}) while waiting for {what}")
        try:
            v = cond()
            if v:
                return v
        except Exception:  # a database not created yet, a status not served yet
            pass
        time.sleep(0.5)
    raise SystemExit(f"memcheck: timed out waiting for {what}")


def status(env):
    import json
    r = subprocess.run([TOLLGATE, "status", "--json", "--socket", env.socket], capture_output=True,
                       text=True, timeout=60)
    return json.loads(r.stdout) if r.stdout.strip() else None


def task(env, name):
    st = status(env)
    return next((t for t in st["tasks"] if t["name"] == name), None) if st else None


def main():
    t0 = time.monotonic()
    sim = Sim("--rate", 3000, "--minute-ms", 3600000, "--products", 4000, "--seed", 13,
              "--p500", 0.08, "--pgarbage", 0.06, "--perror", 0.02, "--phang", 0.03, "--hang-ms", 300)
    env = Env(prefix="tg-memcheck-")
    env.write_config(sim, [backfiller(rewalk_after_s=-1), upserter(schedule=2),
                           {"name": "janitor", "plugin": "janitor", "schedule": 5,
                            "settings": {"refresh_after_h": 1, "max_rows_per_run": 50}}],
                     extra="")
    vlog = os.path.join(env.dir, "valgrind.log")
    cmd = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,indirect",
           "--errors-for-leak-kinds=definite,indirect", f"--error-exitcode={VALGRIND_EXIT}",
           "--track-origins=yes", "--num-callers=30", f"--log-file={vlog}",
           TOLLGATE, "--config", env.cfg, "run"]
    logf = open(env.log, "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                            env=dict(os.environ, KEEPA_API_KEY=sim.key))
    deadline = time.monotonic() + DEADLINE_S
    try:
        wait_for("the walk to complete", lambda: task(env, "backfiller")["state"] == "done", proc, deadline)
        runs = wait_for("the janitor to run", lambda: task(env, "janitor")["runs"] >= 1 and
                        task(env, "upserter")["runs"], proc, deadline)
        wait_for("another upserter run", lambda: task(env, "upserter")["runs"] > runs, proc, deadline)
        st = status(env)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        logf.close()
        stats = sim.stats()
        truth = {d["asin"] for d in sim.truth(QUERY)["deals"]["dr"]}
        sim.stop()
    with open(vlog) as f:
        report = f.read()
    m = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    errors = int(m.group(1)) if m else -1
    lost = {k: int(v.replace(",", "")) for k, v in
            re.findall(r"(definitely|indirectly|possibly) lost: ([\d,]+) bytes", report)}
    rows = env.rows("select asin from deals")
    calls = sum(t.get("tokens", {}).get("calls_ok", 0) + t.get("tokens", {}).get("calls_error", 0)
                for t in st["tasks"])
    print(f"memcheck: daemon exit {rc}, valgrind errors {errors}, definitely lost {lost.get('definitely', 0)} B, "
          f"indirectly lost {lost.get('indirectly', 0)} B, possibly lost {lost.get('possibly', 0)} B")
    print(f"memcheck: {stats['requestsTotal']} requests served, faults injected {stats['faults']}, "
          f"{calls} calls by the tasks, {len(rows)} rows (ground truth {len(truth)}), "
          f"{time.monotonic() - t0:.0f} s")
    failed = []
    if rc == VALGRIND_EXIT or errors != 0:
        failed.append("valgrind found errors")
    elif rc != 0:
        failed.append(f"the daemon exited {rc}")
    if lost.get("definitely", 0) or lost.get("indirectly", 0):
        failed.append("memory definitely or indirectly lost")
    if {r[0] for r in rows} != truth or len(rows) != len(truth):
        failed.append("the database differs from the ground truth")
    if failed:
        print(report[-20000:])
        with open(env.log) as f:
            print(f.read()[-5000:])
        raise SystemExit("memcheck: FAILED: " + "; ".join(failed))
    print("memcheck: ok")


if __name__ == "__main__":
    main()
