"""`tollgate export`: a table as CSV or JSON Lines on stdout, with filters, a
search, an order and a limit; clear exit codes; a missing database is never
created. The rows come from a database written here with Python's sqlite3.
"""
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from harness import TOLLGATE

ROWS = [
    # domain, asin, title, current_cents, drop_pct, est_profit_cents, score
    (1, "A000000001", "Plain novel", 1999, 35, 500, 1.5),
    (1, "A000000002", 'Comma, "quoted"\nand a newline', 2999, 10, -120, None),
    (1, "A000000003", "100% off_sale", 999, 60, 2500, 0.25),
    (3, "A000000001", "=SUM(A1:A9) formula", 4999, 30, None, 2.0),
    (1, "A000000004", "<img src=x onerror=alert(1)>", 1500, 45, 800, 3.0),
]


class ExportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tg-export-")
        self.db = os.path.join(self.dir, "tollgate.db")
        self.cfg = os.path.join(self.dir, "tollgate.cfg")
        with open(self.cfg, "w") as f:
            f.write(f'storage: {{ backend = "sqlite"; path = "{self.db}"; }};\nplugin_path = [ "/nonexistent" ];\n')
        con = sqlite3.connect(self.db)
        con.execute("create table deals (domain INTEGER NOT NULL, asin TEXT NOT NULL, title TEXT, "
                    "current_cents INTEGER, drop_pct INTEGER, est_profit_cents INTEGER, score REAL, "
                    "PRIMARY KEY (domain, asin))")
        con.executemany("insert into deals values (?, ?, ?, ?, ?, ?, ?)", ROWS)
        con.commit()
        con.close()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def export(self, *args, code=0):
        r = subprocess.run([TOLLGATE, "--config", self.cfg, "export", *args], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, code, r.stderr.decode())
        return r.stdout.decode(), r.stderr.decode()

    def test_csv_is_rfc4180_with_a_header(self):
        out, _ = self.export()
        self.assertTrue(out.endswith("\r\n"))
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], ["domain", "asin", "title", "current_cents", "drop_pct", "est_profit_cents", "score"])
        # Key order (domain, asin) by default; NULL is an empty field.
        self.assertEqual([(r[0], r[1]) for r in rows[1:]],
                         [("1", "A000000001"), ("1", "A000000002"), ("1", "A000000003"), ("1", "A000000004"),
                          ("3", "A000000001")])
        self.assertEqual(rows[2][2], 'Comma, "quoted"\nand a newline')
        self.assertEqual(rows[2][6], "")
        # A text a spreadsheet would run as a formula is defused.
        self.assertEqual(rows[5][2], "'=SUM(A1:A9) formula")
        self.assertEqual(rows[5][5], "")

    def test_json_lines_keep_types_and_nulls(self):
        out, _ = self.export("--format", "jsonl")
        lines = out.splitlines()
        self.assertEqual(len(lines), len(ROWS))
        objs = [json.loads(line) for line in lines]
        self.assertEqual(objs[0], {"domain": 1, "asin": "A000000001", "title": "Plain novel", "current_cents": 1999,
                                   "drop_pct": 35, "est_profit_cents": 500, "score": 1.5})
        self.assertIsNone(objs[1]["score"])
        self.assertEqual(objs[4]["title"], "=SUM(A1:A9) formula")  # JSON carries the text as it is
        self.assertEqual(objs[3]["title"], "<img src=x onerror=alert(1)>")
        self.assertNotIn("<img", out)  # escaped as \u003c, safe inside HTML too

    def test_filter_sort_search_limit(self):
        out, _ = self.export("--format", "jsonl", "--where", "drop_pct>=30", "--sort", "-est_profit_cents")
        got = [(o["domain"], o["asin"]) for o in map(json.loads, out.splitlines())]
        # NULL profit sorts last when descending.
        self.assertEqual(got, [(1, "A000000003"), (1, "A000000004"), (1, "A000000001"), (3, "A000000001")])
        out, _ = self.export("--format", "jsonl", "--where", "drop_pct>=30", "--where", "current_cents<2000",
                             "--sort", "current_cents", "--limit", "2")
        self.assertEqual([json.loads(x)["asin"] for x in out.splitlines()], ["A000000003", "A000000004"])
        for expr, n in (("drop_pct=10", 1), ("drop_pct!=10", 4), ("drop_pct<35", 2), ("drop_pct<=35", 3),
                        ("drop_pct>45", 1), ("score=null", 1), ("score!=null", 4), ("score>=1.5", 3),
                        ("asin=A000000001", 2)):
            out, _ = self.export("--format", "jsonl", "--where", expr)
            self.assertEqual(len(out.splitlines()), n, expr)
        # The search is literal: % and _ are characters, not wildcards; ASCII case is ignored.
        out, _ = self.export("--format", "jsonl", "--search", "0% OFF_")
        self.assertEqual([json.loads(x)["asin"] for x in out.splitlines()], ["A000000003"])
        out, _ = self.export("--format", "jsonl", "--search", "1_0")
        self.assertEqual(out, "")
        out, _ = self.export("--limit", "0")
        self.assertEqual(out.count("\r\n"), 1)  # the header alone

    def test_errors_say_what_and_exit_with_sysexits(self):
        _, err = self.export("--where", "nope>=1", code=65)
        self.assertIn("table 'deals' has no column 'nope'", err)
        _, err = self.export("--where", "drop_pct>=ten", code=65)
        self.assertIn("holds integers", err)
        _, err = self.export("--where", "drop_pct~1", code=64)
        self.assertIn("is not COLUMN OP VALUE", err)
        _, err = self.export("--format", "xml", code=64)
        _, err = self.export("--sort", "-nope", code=65)
        self.assertIn("unknown column", err)
        _, err = self.export("--table", "nosuch", code=65)
        self.assertIn("not declared", err)
        _, err = self.export("--limit", "-1", code=64)
        _, err = self.export("--bogus", "1", code=64)
        out, _ = self.export("--help")
        self.assertIn("usage: tollgate export", out)
        # A typo in storage.path must not leave an empty database behind.
        os.remove(self.db)
        _, err = self.export(code=66)
        self.assertIn("no database at", err)
        self.assertFalse(os.path.exists(self.db))


if __name__ == "__main__":
    unittest.main()
