"""Live targets on the lab's default scenario (6.1, -cpu max = 5-level paging,
KASLR on), one guest boot for the whole module:

* the GDB command over QEMU's gdbstub,
* --qemu-ram on the running guest's RAM file,
* -k inside the guest (chroot into the host's root over 9p, the CLI against
  the guest's own /proc/kcore),

each walk every VMA of every scenario process; a QEMU dump of the same guest
taken right after is read by the CLI (-c), and the entries must agree modulo
the fields live_support names as legitimately changing (accessed/dirty bits,
referenced/active/lru/workingset page flags, refcounts of shared pages in
flux).  Also: `pfnscope -k check` inside the healthy guest exits 0, KASLR is
found by the GDB command (and can be given by hand), and --qemu-ram walks of
a process that keeps changing its page tables never fail.
"""
from __future__ import annotations

import pytest

import live_support as L


@pytest.fixture(scope="module")
def guest():
    lv = L.lab.live(kernel="6.1", cpu="max", scenario="healthy")
    try:
        yield lv
    finally:
        lv.stop()


@pytest.fixture(scope="module")
def runs(guest):
    """Every live reading first (guest running, except while GDB holds it),
    then the dump; the CLI reads the dump last."""
    pids = L.scenario_pids(guest)
    assert len(pids) >= 10, guest.manifest
    walk = L.walk_args(pids)
    r = {"pids": pids}
    # -k inside the guest: the scripted check a kernel test would run
    rc, out, err = guest.run(f"{L.GUEST_CLI} -k -s {guest.vmlinux} {' '.join(walk)}", timeout=600)
    r["kcore"] = (rc, out, err)
    rc, out, err = guest.run(f"{L.GUEST_CLI} -k -s {guest.vmlinux} check --json --summary",
                             timeout=600)
    r["kcore_check"] = (rc, out, err)
    # --qemu-ram: the guest keeps running
    r["ram"] = L.cli("--qemu-ram", guest.ram_file, "-s", guest.vmlinux, *walk)
    # the GDB command over the gdbstub (the guest is stopped while GDB is attached)
    g = L.gdb_run(guest, ["pfnscope " + " ".join(walk), "pfnscope check --json",
                          "python print('KASLR', hex(current_session().kaslr_offset))"])
    r["gdb"] = g
    # the dump, right after
    dump = L.take_dump(guest)
    r["dump"] = L.cli("-c", dump, "-s", guest.vmlinux, *walk)
    r["dump_check"] = L.cli("-c", dump, "-s", guest.vmlinux, "check", "--json")
    r["dump_path"] = dump
    assert r["dump"][0] == 0, r["dump"]
    return r


def _check_same(name, live_objs, r):
    dump_objs = L.jsonl(r["dump"][1])
    diffs, flux, n = L.compare(live_objs, dump_objs)
    assert n >= 200, (name, n)
    # every scenario pid is there
    assert {o["pid"] for o in live_objs if o["type"] == "entry"} >= set(r["pids"][:5])
    assert not diffs, (name, diffs[:20])
    # refcounts in flux are reported, and must stay a small minority
    assert len(flux) <= max(5, n // 4), (name, flux[:20])
    print(f"{name}: {n} entries compared, {len(flux)} shared pages in flux", *flux[:10], sep="\n  ")
    return n, flux


def test_gdb_matches_dump(runs):
    rc, out = runs["gdb"][0]
    assert rc == 0, out[-3000:]
    _check_same("gdb", L.jsonl(out), runs)


def test_qemu_ram_matches_dump(runs):
    rc, out, err = runs["ram"]
    assert rc == 0, err
    objs = L.jsonl(out)
    # the scenario processes sleep: nothing changed under these walks
    changed = [o for o in objs if o["type"] == "changed"]
    assert len(changed) <= 2, changed
    _check_same("qemu-ram", objs, runs)


def test_kcore_in_guest_matches_dump(runs):
    rc, out, err = runs["kcore"]
    assert rc == 0, err[-3000:]
    _check_same("-k", L.jsonl(out), runs)


def test_check_agrees_and_healthy_exits_0(runs):
    """`pfnscope -k check` inside the healthy guest exits 0; the GDB command's
    and the dump's findings are the same (code, pid, range)."""
    rc, out, err = runs["kcore_check"]
    assert rc == 0, (out, err[-2000:])
    key = lambda o: (o["pid"], o["code"], o["severity"], o["start"], o["end"])  # noqa: E731
    grc, gout = runs["gdb"][1]
    dump = sorted(key(o) for o in L.jsonl(runs["dump_check"][1]) if o["type"] == "finding")
    assert grc == runs["dump_check"][0], (gout, runs["dump_check"])
    assert sorted(key(o) for o in L.jsonl(gout) if o["type"] == "finding") == dump
    assert sorted(key(o) for o in L.jsonl(out) if o["type"] == "finding") == dump


def test_gdb_finds_kaslr_and_takes_it_by_hand(runs, guest):
    """KASLR is on: the offset the GDB command finds is the dump's
    KERNELOFFSET, and --kaslr-offset given by hand gives the same entries."""
    out = runs["gdb"][2][1]
    off = int(out.split("KASLR", 1)[1].split()[0], 16)
    assert off != 0
    from pfnscope import _core
    kf = _core.KdumpFile(runs["dump_path"])
    try:
        from pfnscope.vmcoreinfo import VmcoreInfo
        assert VmcoreInfo(kf.vmcoreinfo).kaslr_offset == off
    finally:
        kf.close()
    pid = runs["pids"][0]
    g = L.gdb_run(guest, [f"pfnscope walk -p {pid} --all --json",
                          f"pfnscope --kaslr-offset {off:#x} walk -p {pid} --all --json"])
    assert g[0][0] == 0 and g[1][0] == 0, g
    assert L.jsonl(g[0][1]) == L.jsonl(g[1][1]) and L.jsonl(g[0][1])


def test_qemu_ram_tolerates_changing_tables(guest):
    """A process that keeps mapping, touching and unmapping memory: every
    --qemu-ram walk of it exits 0 with well-formed output; entries that changed
    between the reads are reported as {"type":"changed"} (never a crash)."""
    rc, out, err = guest.run(
        "nohup /usr/bin/python3 -c 'import mmap\n"
        "while True:\n"
        "    m = mmap.mmap(-1, 1 << 20)\n"
        "    for i in range(0, 1 << 20, 4096): m[i] = 1\n"
        "    m.close()' > /dev/null 2>&1 &\necho $!")
    assert rc == 0, err
    pid = int(out.split()[-1])
    seen = {"entry": 0, "changed": 0}
    for _ in range(6):
        rc, o, e = L.cli("--qemu-ram", guest.ram_file, "-s", guest.vmlinux,
                         "walk", "-p", str(pid), "--all", "--json")
        assert rc == 0, e
        assert "Traceback" not in e and "internal error" not in e, e
        for obj in L.jsonl(o):
            if obj["type"] in seen:
                seen[obj["type"]] += 1
    assert seen["entry"] > 0, seen
    guest.run(f"kill {pid}")
    print("qemu-ram walks of a changing process:", seen)


def test_example_gdb_session(guest, runs):
    """examples/gdb_session.gdb, as a user runs it."""
    import os
    import subprocess
    cp = subprocess.run(["gdb", "-q", "-batch", "-x", "examples/gdb_session.gdb", guest.vmlinux],
                        cwd=L.ROOT, env=dict(os.environ, PFNSCOPE_GDB=guest.gdb_socket),
                        capture_output=True, text=True, timeout=600)
    out = cp.stdout
    assert cp.returncode == 0, (out[-2000:], cp.stderr[-2000:])
    for marker in ("=== pfnscope tasks", "=== pfnscope vmas -p", "=== pfnscope walk -p",
                   "ADDRESS", "=== pfnscope check", "exit status of the check: "):
        assert marker in out, (marker, out[-3000:], cp.stderr[-2000:])
    assert "Error" not in cp.stderr and "Traceback" not in cp.stderr, cp.stderr[-2000:]


def test_examples_on_the_dump(runs, guest):
    """examples/vmcore_triage.py and examples/drgn_session.py on the dump of
    the live guest (standalone form: /usr/bin/python3 EXAMPLE VMCORE VMLINUX)."""
    import os
    import subprocess
    for ex, ok in (("vmcore_triage.py", (0, 1)), ("drgn_session.py", (0,))):
        cp = subprocess.run(["/usr/bin/python3", os.path.join(L.ROOT, "examples", ex),
                             runs["dump_path"], guest.vmlinux],
                            capture_output=True, text=True, timeout=600)
        assert cp.returncode in ok, (ex, cp.returncode, cp.stdout[-2000:], cp.stderr[-2000:])
        assert "Traceback" not in cp.stderr, (ex, cp.stderr[-2000:])
