#!/usr/bin/env python3
"""Takeover time of hot standby: kill -9 of the active, and SIGSTOP of the
active (longer than its lease), N trials each, with the default lease
(8 s) and heartbeat (2 s). Prints p50 and max. Figures, not a test.

    tests/pg/with-cluster env TG_TEST_STORAGE=postgresql \
        TOLLGATE=build/host/tollgate TOLLGATE_PLUGIN_DIRS=$PWD/build/plugins \
        python3 tests/bench/ha_takeover.py [trials]

Takeover time: from the signal to the standby's status saying active.
"""
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from harness import Daemon, Env, Sim, backfiller  # noqa: E402


def role(d):
    try:
        st, _ = d.status()
        return st["ha"]["role"] if st else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait_role(d, want, deadline_s=120):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if d.proc.poll() is not None:
            raise RuntimeError("daemon exited:\n" + d.log_text()[-2000:])
        if role(d) == want:
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"no {want} within {deadline_s} s:\n" + d.log_text()[-2000:])


def trial(sim, how):
    env_a = Env()
    env_b = Env(share=env_a)
    for env, node in ((env_a, "a"), (env_b, "b")):
        env.write_config(sim, [backfiller(rewalk_after_s=-1)], extra=f'ha: {{ node = "{node}"; }};')
    a = Daemon(env_a)
    b = None
    try:
        wait_role(a, "active")
        b = Daemon(env_b)
        wait_role(b, "standby")
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGSTOP)
        took = wait_role(b, "active") - t0
        if how == "SIGSTOP":
            a.proc.send_signal(signal.SIGCONT)
            wait_role(a, "standby")
        return took
    finally:
        # Every daemon is stopped, also when stopping another one failed.
        for d in (a, b):
            if d:
                d.proc.send_signal(signal.SIGCONT)
        for d in (a, b):
            if d:
                try:
                    d.stop(30)
                except AssertionError as e:
                    print(f"warning: {e}", file=sys.stderr)


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    sim = Sim("--rate", 2000, "--minute-ms", 3600000, "--products", 3000, "--seed", 2)
    try:
        for how in ("kill -9", "SIGSTOP"):
            times = [trial(sim, how) for _ in range(trials)]
            print(f"takeover after {how:8}: p50 {statistics.median(times):5.2f} s, max {max(times):5.2f} s "
                  f"over {trials} trials (lease 8 s, heartbeat 2 s)", flush=True)
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
