#!/usr/bin/env python3
"""End-to-end: Keepa integers a double cannot hold are stored exactly.

A small proxy on 127.0.0.1 sits between the daemon and the simulator and
rewrites the root category of the deals and products it passes on (Python's
json keeps integers exact): by the ASIN's hash, a deal gets 2^63-1, 2^53+1
(the first integer a double cannot tell from its neighbour), 2^63 (beyond
int64) or keeps its own. The real backfiller walks the query; afterwards the
database must hold 9223372036854775807 and 9007199254740993 exactly (both
were NULL before the host kept the digits), leave the column NULL for 2^63,
and the log must say so with a warning: a refused number is malformed input,
not a silent NULL.
"""
import os
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from harness import E2ETest, Env, Proxy, backfiller  # noqa: E402

INT64_MAX = 2**63 - 1
AFTER_2_53 = 2**53 + 1
BEYOND_INT64 = 2**63


def case_of(asin):
    return zlib.crc32(asin.encode()) % 4


def rewritten(asin, original):
    """The root category the daemon is shown for asin."""
    return {0: INT64_MAX, 1: AFTER_2_53, 2: BEYOND_INT64, 3: original}[case_of(asin)]


class Rewriter:
    """Rewrites the root categories of /deal and /product answers for a
    harness.Proxy; originals: asin -> the deal's own root category."""

    def __init__(self):
        self.originals = {}

    def __call__(self, path, doc):
        if path.startswith("/deal"):
            for d in (doc.get("deals") or {}).get("dr") or []:
                if isinstance(d, dict) and isinstance(d.get("asin"), str):
                    self.originals.setdefault(d["asin"], d.get("rootCat"))
                    d["rootCat"] = rewritten(d["asin"], d.get("rootCat"))
        if path.startswith("/product"):
            for p in doc.get("products") or []:
                if isinstance(p, dict) and isinstance(p.get("asin"), str) and case_of(p["asin"]) != 3:
                    # The deal's value wins; for 2^63 the product's must not
                    # stand in, so it is beyond int64 too.
                    p["rootCategory"] = 2**64 if case_of(p["asin"]) == 2 else rewritten(p["asin"], None)


class ExactIntegers(E2ETest):
    def test_root_categories_beyond_2_53_are_stored_exactly(self):
        sim = self.sim("--rate", 300, "--minute-ms", 200, "--products", 1500)
        rewriter = Rewriter()
        proxy = Proxy(sim.url, rewriter)
        self.addCleanup(proxy.stop)
        env = Env()
        env.write_config(proxy, [backfiller(rewalk_after_s=-1)], minute_ms=200)
        d = self.daemon(env)
        d.wait_for(lambda: d.task("backfiller")["state"] == "done", 240, "the walk to complete")

        rows = env.rows("select asin, root_category from deals")
        self.assertTrue(rows, "no deals stored")
        seen = {0: 0, 1: 0, 2: 0, 3: 0}
        for asin, stored in rows:
            self.assertIn(asin, rewriter.originals, f"{asin} stored but never served")
            c = case_of(asin)
            seen[c] += 1
            expect = None if c == 2 else rewritten(asin, rewriter.originals[asin])
            self.assertEqual(stored, expect, f"{asin} (case {c})")
            self.assertIs(type(stored), type(expect))
        self.assertTrue(all(seen.values()), f"every case needs a deal: {seen}")
        print(f"deals per case (2^63-1, 2^53+1, 2^63, own): {seen}", file=sys.stderr)

        # Refused, not silently NULL: the chunks' warnings count them, two
        # per such deal (the deal's and the product's).
        log = d.log_text()
        refused = 0
        for line in log.splitlines():
            if "numbers refused (not a 64-bit integer)" in line and "warn" in line:
                refused += int(line.split(" numbers refused")[0].rsplit(" ", 1)[1])
        self.assertGreaterEqual(refused, seen[2], log[-2000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
