#!/usr/bin/env python3
"""Benchmark: what worker mode costs, in-process (workers = false) beside it.

Two figures per mode, each printed, none asserted:

1. Host-side CPU per Keepa call. The `pinger` and `caller` test plugins
   (tests/plugins) do nothing but Keepa calls - the free /token (200 bytes:
   the fixed cost of a call) and /deal (pages of 150 deals, 178 kB of JSON) -
   against `tollgate sim` with tokens to spare, so every call is sent at once;
   over 15 s after a warm-up, three rounds with the modes alternating, CPU is utime + stime from /proc/PID/stat of the
   daemon and, in worker mode, of its worker, divided by the calls status
   counts. In-process the
   daemon's CPU includes the plugin's; in worker mode the host's does not,
   but it includes the boundary (a call's request and its answer cross the
   socket as JSON): the boundary's cost per call is (host + workers) in
   worker mode minus the daemon in-process.
2. The three shipped tasks at 4,000 tokens a minute (a plan of 400 tokens per
   6-second simulator minute): CPU of all processes in % of one core over 30
   s, and memory - PSS summed from /proc/PID/smaps_rollup over the daemon
   and its workers, so shared libraries count once - and the daemon's RSS.

Run: meson test -C build --benchmark workers -v   (or python3 tests/bench/workers.py
with TOLLGATE and TOLLGATE_PLUGIN_DIRS set as for the e2e tests).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from harness import Daemon, Env, Sim, backfiller, upserter  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def kb(pid, path, key):
    with open(f"/proc/{pid}/{path}") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def calls(d):
    st, _ = d.status()
    return sum(t.get("tokens", {}).get("calls_ok", 0) + t.get("tokens", {}).get("calls_error", 0)
               for t in st["tasks"])


def start(workers, sim, tasks, minute_ms):
    env = Env("tg-bench-workers-")
    env.write_config(sim, tasks, minute_ms=minute_ms, extra=f"workers = {'true' if workers else 'false'};")
    d = Daemon(env, key=sim.key)
    d.wait_for(lambda: d.status()[0], 60, "the daemon's status")
    return env, d


def per_call(workers, plugin, seconds=15):
    sim = Sim("--rate", 10000000, "--products", 3000, "--seed", 7)
    try:
        env, d = start(workers, sim, [{"name": plugin, "plugin": plugin, "schedule": "continuous"}], 60000)
        d.wait_for(lambda: calls(d) > 20, 60, "the first calls")
        pids = [d.proc.pid] + children(d.proc.pid)
        host0, work0, n0 = cpu_s(pids[0]), sum(cpu_s(p) for p in pids[1:]), calls(d)
        time.sleep(seconds)
        host1, work1, n1 = cpu_s(pids[0]), sum(cpu_s(p) for p in pids[1:]), calls(d)
        d.stop()
        return n1 - n0, host1 - host0, work1 - work0
    finally:
        sim.stop()


def steady(workers, seconds=30):
    sim = Sim("--rate", 400, "--minute-ms", 6000, "--products", 20000, "--start-tokens", 400)
    try:
        tasks = [backfiller(), upserter(schedule=6),
                 {"name": "janitor", "plugin": "janitor", "schedule": 30}]
        env, d = start(workers, sim, tasks, 6000)
        time.sleep(5)  # past start-up: the figure is the steady state
        pids = [d.proc.pid] + children(d.proc.pid)
        c0, t0, n0 = sum(cpu_s(p) for p in pids), time.monotonic(), calls(d)
        time.sleep(seconds)
        pids = [d.proc.pid] + children(d.proc.pid)
        c1, t1, n1 = sum(cpu_s(p) for p in pids), time.monotonic(), calls(d)
        pss = sum(kb(p, "smaps_rollup", "Pss") for p in pids)
        rss = kb(d.proc.pid, "status", "VmRSS")
        st, _ = d.status()
        spent = sum(t.get("tokens", {}).get("consumed", 0) for t in st["tasks"])
        d.stop()
        return (c1 - c0) / (t1 - t0) * 100, pss, rss, len(pids), n1 - n0, spent
    finally:
        sim.stop()


def main():
    # Modes alternate, three rounds each, and the median round is printed:
    # on a shared machine the load drifts from one minute to the next.
    for plugin, what in (("pinger", "/token, an answer of 200 bytes"), ("caller", "/deal pages of 178 kB")):
        print(f"mode        calls  daemon CPU/call  worker CPU/call  total CPU/call  "
              f"({what}, as fast as they come, median of 3 x 15 s)")
        runs = {False: [], True: []}
        for _ in range(3):
            for workers in (False, True):
                n, host, work = per_call(workers, plugin)
                runs[workers].append((host / n, work / n, n))
        rows = {}
        for workers in (False, True):
            host, work, n = sorted(runs[workers])[1]
            rows[workers] = (host, work)
            print(f"{'workers' if workers else 'in-process':<10} {n:6d}  {host * 1e6:12.0f} µs  "
                  f"{work * 1e6:12.0f} µs  {(host + work) * 1e6:11.0f} µs")
        print(f"host-side cost of the boundary per call (daemon, workers - in-process): "
              f"{(rows[True][0] - rows[False][0]) * 1e6:.0f} µs; all processes: "
              f"{(sum(rows[True]) - sum(rows[False])) * 1e6:.0f} µs")
        print()
    print("mode        CPU % of one core  PSS all processes  daemon RSS  processes  calls  (3 tasks, 4,000 tokens/min, 30 s)")
    for workers in (False, True):
        cpu, pss, rss, nproc, n, spent = steady(workers)
        print(f"{'workers' if workers else 'in-process':<10} {cpu:14.2f} %  {pss / 1024:13.1f} MB  "
              f"{rss / 1024:7.1f} MB  {nproc:9d}  {n:5d}")


if __name__ == "__main__":
    main()
