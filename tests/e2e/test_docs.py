#!/usr/bin/env python3
"""The man pages say what the program does: every command and option of
--help is in tollgate(1), the exit statuses agree, the required sections
exist, groff finds nothing to warn about, and every column of the deals
table is described in tollgate(1) and in the plugin author's guide."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOLLGATE  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAN1 = os.path.join(SRC, "packaging", "man", "tollgate.1")
MAN5 = os.path.join(SRC, "packaging", "man", "tollgate.cfg.5")


def tg(*args):
    return subprocess.run([TOLLGATE, *args], capture_output=True, text=True, timeout=60).stdout


def sections(path):
    out, name = {}, None
    with open(path) as f:
        text = f.read()
    for line in text.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]+)"?$', line)
        if m:
            name = m.group(1)
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def plain(roff):
    """Roff text with escapes undone enough to search for option names."""
    return roff.replace("\\-", "-").replace("\\e", "\\")


def entries(section):
    """.TP entries of a section: first word of the tag line -> its text."""
    out = {}
    for chunk in section.split(".TP\n")[1:]:
        tag = chunk.split("\n", 1)[0]
        word = re.sub(r'^\.(B|BR|BI|I|IR)\s+', "", tag).split()[0].strip('"')
        out[plain(word)] = plain(chunk)
    return out


def help_options(text):
    m = re.search(r"^options:\n", text, re.M)
    if not m:
        return []
    return re.findall(r"^  --([a-z0-9-]+)", text[m.end():].split("\n\n", 1)[0], re.M)


class ManPages(unittest.TestCase):
    def test_required_sections(self):
        s = sections(MAN1)
        for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS", "SIGNALS",
                     "ENVIRONMENT", "FILES", "DATABASE", "SEE ALSO"):
            self.assertIn(name, s)
            self.assertTrue(s[name].strip(), name)

    def test_groff_has_no_warnings(self):
        for page in (MAN1, MAN5):
            r = subprocess.run(["groff", "-man", "-ww", "-z", "-t", page], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    def test_every_command_and_option_of_help(self):
        top = tg("--help")
        commands = [line.split()[0] for line in top.split("commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()]
        man = entries(sections(MAN1)["COMMANDS"])
        self.assertEqual(sorted(man), sorted(commands), "COMMANDS lists exactly the commands of --help")
        for cmd in commands:
            for opt in help_options(tg(cmd, "--help")):
                self.assertIn("--" + opt, man[cmd], f"tollgate(1) COMMANDS {cmd} does not name --{opt}")
        globals_ = help_options(top.replace("global options (before or after the command):", "options:"))
        self.assertIn("config", globals_)
        opts = plain(sections(MAN1)["OPTIONS"])
        for opt in globals_:
            self.assertIn("--" + opt, opts)
        # And nothing in the man page that the program does not have.
        for cmd, text in man.items():
            known = set(help_options(tg(cmd, "--help")) + globals_)
            for opt in re.findall(r"--([a-z][a-z0-9-]+)", text):
                self.assertIn(opt, known | {"help"}, f"tollgate(1) {cmd}: --{opt} is not an option")

    def test_exit_statuses_agree(self):
        top = tg("--help")
        said = top[top.index("exit status"):]
        codes = set(re.findall(r"\b(\d+) [a-z]", said))
        man = sections(MAN1)["EXIT STATUS"]
        documented = set(re.findall(r"^\.B (\d+)$", man, re.M)) | set(re.findall(r"^\.B\n(\d+)$", man, re.M))
        self.assertEqual(documented, codes, "tollgate(1) EXIT STATUS vs tollgate --help")

    def test_deals_columns_documented(self):
        with open(os.path.join(SRC, "plugins", "common", "deals.h")) as f:
            header = f.read()
        columns = re.findall(r'#define COL_[A-Z0-9_]+ "([a-z0-9_]+)"', header)
        self.assertGreater(len(columns), 20)
        man = sections(MAN1)["DATABASE"]
        with open(os.path.join(SRC, "sdk", "GUIDE.md")) as f:
            guide = f.read()
        for c in columns:
            self.assertRegex(man, rf'(?m)^\.BR? {c}\b|^\.BR .*", " {c} "', f"tollgate(1) DATABASE: {c}")
            self.assertIn(f"| `{c}` |", guide, f"sdk/GUIDE.md: {c}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
