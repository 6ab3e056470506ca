"""The GDB command on running arm64 guests, over qemu-system-aarch64's gdbstub
(gdb-multiarch), one guest at a time: 6.1 (48-bit VAs, 4 levels), 6.12 on
-cpu max (52-bit LPA2 VAs, 5 levels) and 6.12 on cortex-a57 (the same kernel
at 48 bits, KPTI).  Each guest boots the healthy scenario (tests/arm64/lab.py:
kernel, initramfs, Guest), is paused (QMP stop) once READY, dumped (QEMU ELF)
in that state, and GDB then attaches to the same paused vCPU.

Per guest, `pfnscope tasks/walk/check --json` in GDB must
* find the kernel's KASLR offset, kimage_voffset, PHYS_OFFSET, vabits_actual
  and levels as the dump's VMCOREINFO says (the CPU's VA size);
* give entry for entry, finding for finding, task for task the CLI's records
  on the dump of the same paused state (nothing ran in between: no field
  may differ);
* agree with the guest kernel's own truth: pfns with pagemap, anon/reserved/
  lru/swapbacked/mlocked with kpageflags, special and normal_page (and pfns)
  with the scenario manifest; healthy: check exits 0.
Each test prints what it compared (pytest -s).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (ROOT, os.path.join(ROOT, "src", "python"), os.path.join(ROOT, "tests", "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

import lab_support as L  # noqa: E402
from tests.arm64 import lab as alab  # noqa: E402
from tests.vm import lab as xlab  # noqa: E402

GDB = "gdb-multiarch"
PLUGIN = os.path.join(ROOT, "plugins", "gdb", "pfnscope.py")
# the healthy fixtures' guests (PFNSCOPE_ARM64_KERNELS narrows them as it does the fixtures)
KEYS = [k[:2] for k in alab.arm64_set() if k[2] == "healthy"]
IDS = ["-".join(k) for k in KEYS]
# vabits_actual and levels the QEMU CPU gives the kernel (4 KiB pages)
VA = {("6.1", "max"): (48, 4), ("6.12", "max"): (52, 5), ("6.12", "cortex-a57"): (48, 4)}

# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h + kernel-private)
KPF_LRU, KPF_ANON, KPF_SWAPBACKED, KPF_HEAD, KPF_TAIL = 5, 12, 14, 15, 16
KPF_RESERVED, KPF_MLOCKED = 32, 33
DIRS = []       # the guests' directories (truth files), removed after the module


def gdb_run(vmlinux, sock, commands, timeout=900):
    """pfnscope commands in one gdb-multiarch attached to the gdbstub SOCK;
    [(rc, output)] per command ($pfnscope_rc; None when the command errored)."""
    argv = [GDB, "-q", "-batch", "-nx", vmlinux, "-ex", "set pagination off",
            "-ex", "target remote " + sock, "-ex", "source " + PLUGIN]
    for i, c in enumerate(commands):
        argv += ["-ex", "set $pfnscope_rc = -1", "-ex", "python print('@@BEGIN %d')" % i,
                 "-ex", c, "-ex", "python print('@@END %d', gdb.convenience_variable('pfnscope_rc'))" % i]
    argv += ["-ex", "detach"]
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    out = []
    for i in range(len(commands)):
        b = cp.stdout.find("@@BEGIN %d\n" % i)
        e = cp.stdout.find("@@END %d " % i)
        assert b >= 0 and e > b, ("gdb: command %d (%r) did not run" % (i, commands[i]),
                                  cp.stdout[-3000:], cp.stderr[-3000:])
        rc = cp.stdout[e:].split("\n", 1)[0].split()[-1]
        out.append((int(rc) if rc.lstrip("-").isdigit() else None,
                    cp.stdout[b + len("@@BEGIN %d\n" % i):e], cp.stderr))
    return out


def records(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


_RUNS = {}


def run(gen, cpu):
    """_run() once per guest; a failure fails every test of that guest
    without booting it again."""
    if (gen, cpu) not in _RUNS:
        try:
            _RUNS[gen, cpu] = _run(gen, cpu)
        except Exception as e:
            _RUNS[gen, cpu] = e
    v = _RUNS[gen, cpu]
    if isinstance(v, Exception):
        raise AssertionError("arm64 live guest %s/%s: %s" % (gen, cpu, v)) from v
    return v


def _run(gen, cpu):
    """Boot, READY, pause, dump, GDB, CLI on the dump; the guest is gone after."""
    k = alab.kernel(gen)
    d = tempfile.mkdtemp(prefix="live-gdb-%s-%s-" % (k.release, cpu), dir=alab.CACHE)
    DIRS.append(d)
    r = {"dir": d, "k": k}
    try:
        initrd = os.path.join(d, "initrd.cpio.gz")
        alab.build_initrd(k, initrd, "healthy")
        t0 = time.time()
        guest = alab.Guest(k, cpu, initrd, os.path.join(d, "serial.log"), d,
                           alab._append("healthy"))
        try:
            guest.wait_marker("live boot (READY)", "PFNLAB-READY", alab.TIMEOUT_READY)
            r["boot_s"] = time.time() - t0
            qmp = guest.connect_qmp()
            qmp.cmd("stop")
            # the gdbstub, added to the running QEMU (HMP gdbserver): the lab's
            # Guest stays as the fixtures use it
            sock = os.path.join(guest.sockdir, "gdb.sock")
            qmp.cmd("human-monitor-command",
                    **{"command-line": "gdbserver unix:%s,server=on,wait=off" % sock})
            dump = os.path.join(d, "paused.vmcore")
            qmp.cmd("dump-guest-memory", timeout=alab.TIMEOUT_DUMP, paging=False,
                    protocol="file:" + dump, format="elf")
            with open(os.path.join(d, "fixture.json"), "w") as f:
                json.dump({"kernel": gen, "release": k.release, "cpu": cpu, "scenario": "healthy",
                           "vmlinux": k.vmlinux, "kernel_dir": k.dir, "levels": None,
                           "dumps": {"paused": dump}}, f)
            fx = xlab.Fixture(d)
            walk = L.walk_all_args(fx)
            t1 = time.time()
            r["gdb"] = gdb_run(k.vmlinux, sock, [
                "pfnscope tasks --json", "pfnscope " + " ".join(walk), "pfnscope check --json",
                "python s = current_session(); print('FACTS', s.kaslr_offset, "
                "*(s.layout_dict[f] for f in ('kimage_voffset', 'phys_offset', 'va_bits', "
                "'pgtable_levels', 'vmemmap_base', 'zero_pfn')))",
                # the offset given by hand (a new session, the vmlinux relocated by it)
                "python gdb.execute('pfnscope --kaslr-offset %#x walk -p " +
                str(L.manifest_pids(fx)[0]) + " --all --json' % current_session().kaslr_offset)",
                # TTBR1_EL1 as KPTI leaves it in user mode (entry.S tramp_unmap_kernel:
                # tramp_pg_dir = swapper_pg_dir - TRAMP_SWAPPER_OFFSET, USER_ASID_FLAG
                # set), which a vCPU stopped in EL0 shows: given to the plugin's
                # register reader, the kernel must be found all the same.  A vCPU
                # the QMP stop caught in EL0 already shows it: TTBR1_EL1 is moved
                # only when it holds swapper_pg_dir (its physical address:
                # the linked one + KASLR - kimage_voffset)
                "python real = _register; s = current_session(); "
                "sw = (linked_address('swapper_pg_dir') + s.kaslr_offset - "
                "s.layout_dict['kimage_voffset']) & U64; "
                "off = linked_address('swapper_pg_dir') - linked_address('tramp_pg_dir'); "
                "at = _arm64.ttbr_baddr(real('TTBR1_EL1')); "
                "print('STOPPED EL%d' % ((int(gdb.parse_and_eval('$cpsr')) >> 2) & 3), "
                "'swapper_pg_dir' if at == sw else 'tramp_pg_dir' if at == sw - off else hex(at)); "
                "globals()['_register'] = lambda n: ((real(n) - off) | (1 << 48) "
                "if _arm64.ttbr_baddr(real(n)) == sw else real(n)) if n == 'TTBR1_EL1' else real(n); "
                "gdb.execute('pfnscope --reload tasks --json'); globals()['_register'] = real"])
            r["gdb_s"] = time.time() - t1
        finally:
            guest.stop()
        r["fx"] = fx
        env_args = ("-c", dump, "-s", k.vmlinux)
        r["cli"] = [L.run(*env_args, "tasks", "--json", layout_cache=False),
                    L.run(*env_args, *walk, layout_cache=False),
                    L.run(*env_args, "check", "--json", layout_cache=False)]
        from pfnscope import target
        sess = target.open_dump(dump, k.vmlinux)
        r["dump_layout"] = dict(sess.layout_dict)
        r["dump_kaslr"] = sess.vmci.kaslr_offset
        del sess
        os.unlink(dump)
        return r
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise


def _say(key, what):
    print("\n[%s gdb] %s" % ("-".join(key), what))


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    while DIRS:
        shutil.rmtree(DIRS.pop(), ignore_errors=True)


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_gdb_finds_the_layout(key):
    """KASLR, kimage_voffset, PHYS_OFFSET, vabits_actual, levels, vmemmap
    and the zero page as the dump's VMCOREINFO gives them; the KASLR offset
    given by hand (--kaslr-offset) gives the same entries; TTBR1_EL1 as
    KPTI leaves it in user mode (the trampoline's table) finds the same
    kernel."""
    r = run(*key)
    rc, out, err = r["gdb"][3]
    line = out.split("FACTS", 1)[1].split()
    kaslr, kvo, po, vab, lev, vmm, zp = (int(x) for x in line[:7])
    lo = r["dump_layout"]
    assert (vab, lev) == VA[key], line
    assert kaslr == r["dump_kaslr"] and kaslr != 0, (kaslr, r["dump_kaslr"])
    assert (kvo, po, vab, lev, vmm, zp) == (lo["kimage_voffset"], lo["phys_offset"], lo["va_bits"],
                                            lo["pgtable_levels"], lo["vmemmap_base"], lo["zero_pfn"])
    # --kaslr-offset given by hand: the same records for that process
    pid = L.manifest_pids(r["fx"])[0]
    by_hand = _payload(records(r["gdb"][4][1]))
    found = [o for o in _payload(records(r["gdb"][1][1])) if o["pid"] == pid]
    assert by_hand == found and len(found) > 10, (len(by_hand), len(found))
    # the kernel found from the trampoline's page table (KPTI, user mode)
    rc5, out5, err5 = r["gdb"][5]
    stopped = out5.split("STOPPED ", 1)[1].split("\n", 1)[0].split() if "STOPPED " in out5 else []
    # where the stop caught the vCPU: the kernel's table, or (in EL0, with
    # KPTI) already the trampoline's
    assert len(stopped) == 2 and stopped[1] in ("swapper_pg_dir", "tramp_pg_dir"), \
        (stopped, out5[-2000:], err5[-2000:])
    tramp = _payload(records(out5))
    assert rc5 == 0 and tramp == _payload(records(r["gdb"][0][1])) and tramp, \
        (rc5, stopped, out5[-2000:], err5[-2000:])
    _say(key, "boot %.0fs, GDB commands %.0fs; KASLR %#x, kimage_voffset %#x, PHYS_OFFSET %#x, "
         "va_bits %d, levels %d: as the dump's; --kaslr-offset by hand: %d records of pid %d "
         "identical; the same %d tasks from tramp_pg_dir (stopped in %s on %s)" % (
             r["boot_s"], r["gdb_s"], kaslr, kvo, po, vab, lev, len(found), pid, len(tramp),
             stopped[0], stopped[1]))


def _payload(recs):
    """Records without the target record (its reader and source differ)."""
    return [o for o in recs if o.get("type") != "target"]


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_gdb_matches_the_dump_of_the_paused_guest(key):
    """tasks, walk and check in GDB give the CLI's records on the dump of the
    same paused guest, field for field, and the same exit status."""
    r = run(*key)
    n = {}
    for i, what in enumerate(("tasks", "walk", "check")):
        grc, gout, gerr = r["gdb"][i]
        c = r["cli"][i]
        assert grc == c.rc, (what, grc, gout[-2000:], gerr[-2000:], c)
        g, d = _payload(records(gout)), _payload(c.records())
        assert g == d, (what, [(a, b) for a, b in zip(g, d) if a != b][:5], len(g), len(d))
        n[what] = len(g)
    ents = [o for o in _payload(records(r["gdb"][1][1])) if o["type"] == "entry"]
    assert len(ents) > 1000 and n["tasks"] >= 10, n
    assert r["gdb"][2][0] == 0, "healthy guest: check exits 0"
    # the target records: the same kernel, facts read from the kernel either way
    gt = [o for o in records(r["gdb"][1][1]) if o.get("type") == "target"]
    ct = [o for o in r["cli"][1].records() if o.get("type") == "target"]
    assert gt and ct and gt[0].pop("layout_source") == "gdb", gt
    ct[0].pop("layout_source")
    assert gt[0] == ct[0] and gt[0]["arch"] == "aarch64", (gt, ct)
    _say(key, "%d tasks, %d walk records (%d entries), %d check records identical to the CLI "
         "on the dump; check exit 0" % (n["tasks"], n["walk"], len(ents), n["check"]))


def _tri(v):
    return None if v is None else bool(v)


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_gdb_agrees_with_the_guest_kernel(key):
    """pfns with pagemap, page flags with kpageflags, special/normal_page and
    the listed pfns with the scenario manifest."""
    r = run(*key)
    fx = r["fx"]
    ents = {}
    for o in records(r["gdb"][1][1]):
        if o.get("type") == "entry":
            ents.setdefault(o["pid"], []).append(o)
    pids = set(L.manifest_pids(fx))
    n_pfn = n_flags = 0
    for p in fx.pagemap:
        if int(p["pid"]) not in pids or not p.get("present") or not p.get("pfn"):
            continue
        pid, addr = int(p["pid"]), int(p["addr"], 16)
        e = L.entry_at(ents.get(pid, []), addr)
        assert e is not None and e["kind"] in ("present", "protnone"), (p, e)
        assert e["pfn"] + ((addr - int(e["addr"], 16)) >> 12) == p["pfn"], (p, e)
        n_pfn += 1
        page = e["page"]
        if page is None or not p.get("kpageflags"):
            continue
        flags = int(p["kpageflags"], 16)
        assert page["anon"] == bool(flags & (1 << KPF_ANON)), (p, e)
        assert page["reserved"] == bool(flags & (1 << KPF_RESERVED)), (p, e)
        if not flags & ((1 << KPF_HEAD) | (1 << KPF_TAIL)):
            names = set(page["flags"])
            for name, bit in (("lru", KPF_LRU), ("swapbacked", KPF_SWAPBACKED),
                              ("mlocked", KPF_MLOCKED)):
                assert (name in names) == bool(flags & (1 << bit)), (name, p, e)
            n_flags += 1
    assert n_pfn > 50 and n_flags > 20, (n_pfn, n_flags)
    kinds, n_special = set(), 0
    for m in fx.manifest:
        if "start" not in m or "error" in m or "expect" not in m:
            continue
        pid, start, end = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
        exp = m["expect"]
        for pg in m.get("pages") or []:
            e = L.entry_at(ents.get(pid, []), int(pg["addr"], 16))
            if pg.get("kind") == "none":
                assert e is None or e["kind"] == "none", (m["kind"], pg, e)
                continue
            assert e is not None, (m["kind"], pg)
            if pg.get("pfn") is not None and "ioctl" not in (pg.get("note") or "") \
                    and "raw pte" not in (pg.get("note") or ""):
                got = e["pfn"] + ((int(pg["addr"], 16) - int(e["addr"], 16)) >> 12)
                assert got == pg["pfn"], (m["kind"], pg, e)
            for f in ("special", "normal_page"):
                if _tri(pg.get(f)) is not None:
                    assert e[f] == pg[f], (m["kind"], f, pg, e)
                    n_special += 1
        if not m.get("pages"):
            es = [e for e in L.entries_in(ents.get(pid, []), start, end) if e["kind"] != "none"]
            assert es, (m["kind"], "no entries")
            for e in es:
                for f in ("special", "normal_page"):
                    if _tri(exp.get(f)) is not None:
                        assert e[f] == exp[f], (m["kind"], f, e)
                        n_special += 1
        kinds.add(m["kind"])
    assert len(kinds) >= 20 and n_special > 100, (sorted(kinds), n_special)
    _say(key, "%d pfns with pagemap, %d page-flag sets with kpageflags, %d special/normal_page "
         "verdicts of %d mapping kinds with the manifest" % (n_pfn, n_flags, n_special, len(kinds)))
