"""--qemu-ram reads a guest that keeps running: an entry that differs between
the reads before and after the reported walk is reported ({"type":"changed"}
in JSON, a "# changed during the walk" line in tables) and a walk that fails
because the tables changed under it is reported per VMA, never a crash.
Deterministic: a fake target whose entries change between reads (the real
guest is in test_live_61.py::test_qemu_ram_tolerates_changing_tables)."""
from __future__ import annotations

import json
import os
import sys

import live_support as L  # noqa: F401  (sys.path)
from pfnscope import cli
from pfnscope import target as target_mod

class _E:
    def __init__(self, addr, raw):
        self.addr, self.raw = addr, raw

class _FakeTarget:
    def __init__(self, passes, fail_write=False):
        self.passes = list(passes)
        self.fail_write = fail_write
        self.flushes = 0

    def flush_cache(self):
        self.flushes += 1

    def walk(self, mm, vt, start, end, flags):
        p = self.passes.pop(0)
        if isinstance(p, Exception):
            raise p
        return [_E(a, r) for a, r in p]

    def walk_write(self, fd, mm, vt, pid, mode, flags):
        if self.fail_write:
            raise target_mod.core().Error("table changed")
        os.write(fd, b'{"type":"entry"}\n')
        return (1, 0, {})

class _Sess:
    live = True

    def __init__(self, t):
        self.target = t

def _run(passes, as_json, fail_write=False, capfd=None):
    from pfnscope.api import Task
    t = Task(0xffff0000, 42, 42, 0xffff1000, "churn")
    vt = (0xffff2000, 0x1000, 0x5000, 0x73, 0, 0, 0)
    sess = _Sess(_FakeTarget(passes, fail_write))
    cli._walk_live(sess, t, vt, sys.stdout.fileno(), "json" if as_json else "table", 0, as_json)
    sys.stdout.flush()
    return sess

def test_changed_entries_are_reported_json(capfd):
    before = [(0x1000, 0x1025), (0x2000, 0x2025), (0x3000, 0x3025)]
    after = [(0x1000, 0x1025), (0x2000, 0x9025), (0x4000, 0x4025)]
    sess = _run([before, after], True)
    out, err = capfd.readouterr()
    objs = [json.loads(line) for line in out.splitlines()]
    ch = [o for o in objs if o["type"] == "changed"]
    assert [(o["addr"], o["raw_before"], o["raw_after"]) for o in ch] == [
        ("0x2000", "0x2025", "0x9025"), ("0x3000", "0x3025", "0x0"), ("0x4000", "0x0", "0x4025")]
    assert objs[0]["type"] == "entry" and all(o["pid"] == 42 for o in ch)
    assert sess.target.flushes >= 3        # every read starts from the guest's memory

def test_walk_failing_under_changes_is_reported_not_raised(capfd):
    err_cls = target_mod.core().Error
    _run([err_cls("gone"), []], False, fail_write=True)
    out, err = capfd.readouterr()
    assert "changed under the walk" in err and "Traceback" not in err
    _run([[(0x1000, 1)], [(0x1000, 2)]], False)
    out, err = capfd.readouterr()
    assert "# changed during the walk: 0x0000000000001000 raw 0x0000000000000001 -> " \
           "0x0000000000000002" in out


class _Flaky:
    """vmas()/tasks() that fail `fails` times (a maple tree or task list
    changing under the iteration), then answer."""

    def __init__(self, fails):
        self.fails = fails
        self.calls = 0
        self.flushes = 0

    def flush_cache(self):
        self.flushes += 1

    def vmas(self, mm=None):
        self.calls += 1
        if self.calls <= self.fails:
            raise target_mod.core().Error("malformed structure: maple child at 0xffff888000001000")
        return [(0xffff2000, 0x1000, 0x5000, 0x73, 0, 0, 0)]

    tasks = vmas


def _live_session(fails, confirm=True):
    import types
    s = types.SimpleNamespace(confirm=confirm, target=_Flaky(fails),
                              VMA_TREE_READS=target_mod.Session.VMA_TREE_READS)
    s._live_read = lambda *a: target_mod.Session._live_read(s, *a)
    return s


def test_live_vma_tree_is_read_again_when_it_changes():
    s = _live_session(2)
    assert target_mod.Session.vmas(s, 0xffff1000) == [(0xffff2000, 0x1000, 0x5000, 0x73, 0, 0, 0)]
    assert s.target.calls == 3 and s.target.flushes == 2   # each retry reads memory again
    s = _live_session(2)
    assert len(target_mod.Session.tasks(s)) == 1


def test_live_vma_tree_that_keeps_changing_is_an_error():
    s = _live_session(99)
    try:
        target_mod.Session.vmas(s, 0xffff1000)
    except target_mod.core().Error as e:
        assert "maple child" in str(e) and "read 3 times" in str(e), str(e)
    else:
        raise AssertionError("no error")
    assert s.target.calls == 3


def test_dump_vma_tree_is_read_once():
    s = _live_session(1, confirm=False)
    try:
        target_mod.Session.vmas(s, 0xffff1000)
    except target_mod.core().Error:
        pass
    else:
        raise AssertionError("a dump is not read again")
    assert s.target.calls == 1
