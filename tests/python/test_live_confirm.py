"""The live re-read (WALK_CONFIRM) on memory that does not change: a dump
opened as if it were live.  Every finding must be confirmed (same findings,
same walk bytes, no `changed` record) -- so the re-read decodes the struct
page, the path and the VMA exactly as the walk did, on every lab kernel's
real buggy mappings -- and the re-reads must really happen (the reader sees
more reads).  Dumps themselves are never re-read: the CLI's output on them
is what it was without the re-read (the same bytes with the flag off)."""
from __future__ import annotations

import os

import pytest

import lab_support as L
from pfnscope import api
from pfnscope import target as target_mod

KEYS = L.buggy_keys()
FMT = "elf-nopaging"


@pytest.mark.parametrize("key", KEYS, ids=[L.key_id(k) for k in KEYS])
def test_static_findings_are_confirmed(key):
    fx = L.fixture(*key)
    sess = target_mod.open_dump(fx.dumps[FMT], fx.vmlinux)
    c = target_mod.core()
    e0, ch0 = [], []
    plain = api.check(sess.prog, None, None, e0, changed=ch0)
    reads0 = sess.target.stats()["reads"]
    assert not getattr(sess, "confirm", False)
    sess.confirm = True
    e1, ch1 = [], []
    confirmed = api.check(sess.prog, None, None, e1, changed=ch1)
    reads1 = sess.target.stats()["reads"] - reads0
    weighty = [f for f in plain if api.severity_rank(f.severity) >= 1]
    assert weighty, "the buggy fixture has findings at medium or above"
    assert ch0 == [] and ch1 == [], ch1[:5]
    assert confirmed == plain
    assert [e.pid for e in e1] == [e.pid for e in e0]
    # the confirmed check read more: each weighty entry once more
    assert reads1 > reads0, (reads0, reads1)
    # walk output with the flag is byte for byte the walk without it
    pids = sorted({f.pid for f in weighty})
    for pid in pids:
        t = api.Task(*sess.find_task(pid))
        for vt in sess.vmas(t.mm):
            outs = []
            for flags in (0, c.WALK_CONFIRM):
                fd = os.memfd_create("confirm")
                try:
                    sess.target.walk_write(fd, t.mm, vt, t.pid, mode="json", flags=flags)
                    os.lseek(fd, 0, os.SEEK_SET)
                    outs.append(os.read(fd, 1 << 26))
                finally:
                    os.close(fd)
            assert outs[0] == outs[1], (pid, hex(vt[1]))
