#!/usr/bin/env python3
"""Broken and hostile configuration files: each must be refused with exit 78
(EX_CONFIG) and a message naming the file and the line (file:line: ..., line
0 for what is wrong with the file as a whole), never a crash, a hang or a
sanitizer report.

    check_configs.py TOLLGATE PLUGIN_DIR

broken/*.cfg are the files, expected.txt what each is refused for (@PLUGINS@ stands for PLUGIN_DIR, so errors a
plugin's declared settings catch are reached too); a few more are made here
because they cannot be committed: a FIFO, a directory, a character device, a
file over the size limit, a symlink loop, a missing file. Under the sanitizer
builds the same run checks that none of them trips ASan/UBSan/TSan.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SANITIZER = re.compile(r"Sanitizer|runtime error:")


def made_cases(tmp):
    """Hostile files that cannot live in git."""
    fifo = os.path.join(tmp, "fifo.cfg")
    os.mkfifo(fifo)
    d = os.path.join(tmp, "directory.cfg")
    os.mkdir(d)
    dev = os.path.join(tmp, "device.cfg")
    os.symlink("/dev/zero", dev)
    big = os.path.join(tmp, "too-big.cfg")
    with open(big, "w") as f:
        f.write("# padding\n" * 300000)  # 3 MB of comments
    loop = os.path.join(tmp, "loop.cfg")
    os.symlink(loop, loop)
    missing = os.path.join(tmp, "missing.cfg")
    return [fifo, d, dev, big, loop, missing]


def main():
    tollgate, plugins = sys.argv[1], os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="tg-configs-")
    cases = []
    for name in sorted(os.listdir(os.path.join(HERE, "broken"))):
        with open(os.path.join(HERE, "broken", name), "rb") as f:
            text = f.read().replace(b"@PLUGINS@", plugins.encode())
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(text)
        cases.append(path)
    cases += made_cases(tmp)
    env = dict(os.environ, KEEPA_API_KEY="corpus-key")
    # What each file is refused for (a word of the message), so a file
    # cannot pass by tripping over some other error first.
    expect = {}
    with open(os.path.join(HERE, "expected.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, _, text = line.rstrip("\n").partition("\t")
                expect[name] = text
    bad = []
    for path in cases:
        try:
            r = subprocess.run([tollgate, "--config", path, "check"], capture_output=True, text=True,
                               errors="replace", timeout=60, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            bad.append(f"{path}: hung (no answer in 60 s)")
            continue
        where = re.search(re.escape(path) + r":(\d+): \S", r.stderr)
        if r.returncode != 78:
            bad.append(f"{path}: exit {r.returncode}, not 78:\n{r.stderr[-1500:]}")
        elif not where:
            bad.append(f"{path}: the message does not say {path}:LINE:\n{r.stderr[-1500:]}")
        elif SANITIZER.search(r.stderr):
            bad.append(f"{path}: sanitizer report:\n{r.stderr[-3000:]}")
        elif expect.get(os.path.basename(path), "") not in r.stderr:
            bad.append(f"{path}: refused, but not for the reason expected "
                       f"({expect[os.path.basename(path)]!r}):\n{r.stderr[-1500:]}")
        else:
            print(f"ok  {os.path.basename(path)}: {r.stderr.strip().splitlines()[0][:160]}")
    print(f"{len(cases)} broken or hostile configs: {len(cases) - len(bad)} refused with exit 78 and file:line, "
          f"{len(bad)} not")
    for b in bad:
        print("FAIL", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
