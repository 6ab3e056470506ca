"""check and walk --all draw a progress line on stderr when it is a terminal
(a pty here), redrawn in place and cleared at the end; nothing on a pipe or
with --json, and stdout is the same either way."""
import os
import pty
import re
import subprocess
import tempfile

import pytest

import lab_support as L

KEY = ("6.1", "max", "healthy")
CLEAR = "\r\x1b[K"
LINE = re.compile(r"(check|walk|rmap): (\d+)/(\d+) tasks(?: \(pid \d+ [^)]*\))?, (\d+) VMAs, "
                  r"([\d.]+[kMG]?) (entries|found)(?:, ([\d.]+[kMG]?) entries/s)?")


def env() -> dict:
    e = dict(os.environ)
    e.pop("PFNSCOPE_NO_PROGRESS", None)
    e.pop("PFNSCOPE_DEBUG", None)
    return e


def run_on_pty(args):
    """Run the CLI with stderr on a pty and stdout in a file: (rc, stdout,
    what the terminal received)."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([L.BIN, *args], stdout=out, stderr=slave, stdin=subprocess.DEVNULL,
                             env=env())
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not b:
                break
            chunks.append(b)
        rc = p.wait(timeout=900)
        os.close(master)
        out.seek(0)
        return rc, out.read().decode(), b"".join(chunks).decode(errors="replace")


def run_on_pipe(args):
    cp = subprocess.run([L.BIN, *args], capture_output=True, text=True, env=env(), timeout=900)
    return cp.returncode, cp.stdout, cp.stderr


def lines_drawn(tty: str):
    """The progress lines drawn, in order (each starts with CR + erase)."""
    assert tty.startswith(CLEAR), repr(tty[:200])
    return [s for s in tty.split(CLEAR) if s]


def base():
    fx = L.fixture(*KEY)
    return fx, ["-c", fx.dumps["kdump-real"], "-s", fx.vmlinux]


def check_drawn(tty: str, what: str, ntasks: int):
    assert tty.endswith(CLEAR), repr(tty[-200:])   # cleared at the end
    assert "\n" not in tty                         # redrawn in place, never scrolls
    drawn = lines_drawn(tty)
    assert drawn
    parsed = []
    for s in drawn:
        m = LINE.fullmatch(s)
        assert m, repr(s)
        assert m.group(1) == what
        parsed.append((int(m.group(2)), int(m.group(3)), int(m.group(4))))
    done, total, vmas = parsed[-1]
    assert done == total == ntasks, parsed[-1]
    assert vmas > 0
    # counters never go back
    assert [p[2] for p in parsed] == sorted(p[2] for p in parsed)
    return parsed


def test_check_progress_on_a_terminal_only():
    fx, b = base()
    rc, out, tty = run_on_pty([*b, "check"])
    rc2, out2, err2 = run_on_pipe([*b, "check"])
    assert rc == rc2 == 0, (rc, rc2, err2)
    assert out == out2 and out
    assert err2 == ""                               # nothing on a pipe
    tasks = L.run(*b, "tasks", "--json").json()
    ntasks = sum(1 for t in tasks if t["mm"] != "0x0")
    check_drawn(tty, "check", ntasks)


def test_rmap_progress_on_a_terminal_only():
    fx, b = base()
    pfn = next(e["pfn"] for e in L.run(*b, "walk", "-p", str(L.manifest_pids(fx)[0]), "--all", "--json").json()
               if e["type"] == "entry" and e["pfn"] is not None)
    args = [*b, "rmap", hex(pfn)]
    rc, out, tty = run_on_pty(args)
    rc2, out2, err2 = run_on_pipe(args)
    assert rc == rc2 == 0, (rc, rc2, err2)
    assert out == out2 and out.startswith("# pid ")
    assert err2 == ""
    tasks = L.run(*b, "tasks", "--json").json()
    parsed = check_drawn(tty, "rmap", sum(1 for t in tasks if t["mm"] != "0x0"))
    assert "found" in lines_drawn(tty)[-1]
    rc, out, tty = run_on_pty([*args, "--json"])
    assert rc == 0 and out and tty == ""


def test_walk_all_progress_and_none_with_json():
    fx, b = base()
    pids = L.manifest_pids(fx)[:3]
    pflags = [a for p in pids for a in ("-p", str(p))]
    rc, out, tty = run_on_pty([*b, "walk", "--all", *pflags, "--summary"])
    rc2, out2, err2 = run_on_pipe([*b, "walk", "--all", *pflags, "--summary"])
    assert rc == rc2 == 0, (rc, rc2, err2)
    assert out == out2 and out
    assert err2 == ""
    parsed = check_drawn(tty, "walk", len(pids))
    vmas = sum(1 for l in out.splitlines() if l.startswith("# pid "))
    assert parsed[-1][2] == vmas
    # --json on a terminal: no progress
    for args in ([*b, "walk", "--all", *pflags, "--json", "--summary"], [*b, "check", "--json"]):
        rc, out, tty = run_on_pty(args)
        assert rc == 0 and out
        assert tty == "", repr(tty[:200])
    # a single VMA walk is not long work: no progress
    start = L.run(*b, "vmas", "-p", str(pids[0]), "--json").json()[0]["start"]
    rc, out, tty = run_on_pty([*b, "walk", "-p", str(pids[0]), "-a", start])
    assert rc == 0 and out.startswith("# pid ") and tty == ""


@pytest.mark.parametrize("flag", ["PFNSCOPE_NO_PROGRESS"])
def test_progress_can_be_turned_off(flag):
    fx, b = base()
    master, slave = pty.openpty()
    e = dict(env(), **{flag: "1"})
    p = subprocess.run([L.BIN, *b, "check"], stdout=subprocess.DEVNULL, stderr=slave, env=e,
                       timeout=900)
    os.close(slave)
    got = b""
    while True:
        try:
            c = os.read(master, 65536)
        except OSError:
            break
        if not c:
            break
        got += c
    os.close(master)
    assert p.returncode == 0 and got == b""


def screen(stream: str):
    """The lines a terminal shows for stream: CR + erase-line wipes the line
    being drawn, CR LF (the pty's output processing of LF) ends it."""
    lines, cur, i = [], "", 0
    while i < len(stream):
        if stream.startswith(CLEAR, i):
            cur, i = "", i + len(CLEAR)
        elif stream.startswith("\r\n", i):
            lines.append(cur)
            cur, i = "", i + 2
        else:
            cur, i = cur + stream[i], i + 1
    return lines, cur


def test_walk_all_progress_on_the_same_terminal_as_the_output():
    """stdout and stderr on one terminal: the progress line never mixes into
    the output and nothing of it is left on screen."""
    fx, b = base()
    pids = L.manifest_pids(fx)[:3]
    args = [*b, "walk", "--all", *[a for p in pids for a in ("-p", str(p))], "--summary"]
    master, slave = pty.openpty()
    p = subprocess.Popen([L.BIN, *args], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env())
    os.close(slave)
    chunks = []
    while True:
        try:
            c = os.read(master, 65536)
        except OSError:
            break
        if not c:
            break
        chunks.append(c)
    assert p.wait(timeout=900) == 0
    os.close(master)
    tty = b"".join(chunks).decode()
    assert "walk: " in tty                      # it was drawn
    lines, last = screen(tty)
    assert last == ""                           # and erased at the end
    rc, out, err = run_on_pipe(args)
    assert rc == 0 and lines == out.splitlines()
