"""The GDB command's `pfnscope kvm` and `pfnscope rmap` on a running nested-KVM
lab guest, against the CLI on a dump of the same stopped guest.

One outer guest per case (tests/kvm/kvmlab.py's initramfs and boot, plus a
gdbstub): once the VMM has written its truth the guest is stopped (QMP
"stop"), dumped (QEMU ELF, no paging) and read by GDB over the gdbstub
(plugins/gdb/pfnscope.py) -- the guest does not run between the two reads,
so every record must be the same:
  - `kvm --json`: the same vm record (pid, memslots, TDP MMU roots), the
    VMM's pid and memslots as recorded inside the guest;
  - `kvm -p PID --json`: the same spte records, byte for byte (host pte,
    struct page, KVM reference verdict, KVM_* diagnoses), the same exit
    status, and one SPTE per page the nested guest touched, over the pfn
    the truth recorded;
  - `rmap PFN --json` of a guest frame of the anon slot and of a /dev/mem
    frame: the same records, and exactly the VMM's pte and the SPTE.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from tests.kvm import kvmlab
from tests.kvm.test_kvm import truth_pages
from tests.vm import lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GDB_PLUGIN = os.path.join(ROOT, "plugins", "gdb", "pfnscope.py")
# a 4-level host with KVM before 6.13 (healthy), a 5-level host with 6.13+ (buggy:
# stale, read-only-host and freed-page SPTEs, so diagnoses are compared too)
CASES = [("6.1", "epyc", "healthy"), ("7", "max", "buggy")]
CASES = [c for c in CASES if c in kvmlab.kvm_set()] or CASES[:1]


class LiveKvm:
    """A kvm lab outer guest left running with a gdbstub, stopped once its
    truth is written; stop() ends it."""

    def __init__(self, kernel, cpu, scenario):
        k = lab.kernel(kernel)
        kmods = kvmlab.kvm_modules(k.gen)
        os.makedirs(kvmlab.KVMCACHE, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="live-%s-%s-%s-" % (k.release, cpu, scenario),
                                    dir=kvmlab.KVMCACHE)
        self.sockdir = tempfile.mkdtemp(prefix="pfnkvm-gdb-")
        self.gdb_socket = os.path.join(self.sockdir, "gdb.sock")
        initrd = os.path.join(self.dir, "initrd.cpio.gz")
        kvmlab.build_initrd(k, scenario, kmods, initrd)
        append = lab._append(k, "none", "dump", initrd) + " no_timer_check" + \
            (" pfnkvm.buggy=1" if scenario == "buggy" else "")
        self.guest = lab.Guest(k, kvmlab.CPUS[cpu], initrd, os.path.join(self.dir, "serial.log"),
                               self.dir, append, gdb="unix:%s,server=on,wait=off" % self.gdb_socket)
        self.vmlinux = k.vmlinux
        self.kvm_debug = [os.path.join(kmods, "debug", m) for m in ("kvm.ko", "kvm-amd.ko")]
        self.kernel, self.cpu, self.scenario = kernel, cpu, scenario
        try:
            self.guest.wait_marker("boot (READY)", "PFNLAB-READY", lab.TIMEOUT_READY)
            deadline = time.time() + kvmlab.TIMEOUT_TRUTH
            while not os.path.exists(os.path.join(self.dir, "kvm.json")):
                if "PFNLAB-FAIL" in self.guest.serial_text() or time.time() > deadline:
                    self.guest._fail("vmm truth", "no kvm.json after %ds" % kvmlab.TIMEOUT_TRUTH)
                time.sleep(0.2)
            with open(os.path.join(self.dir, "kvm.json")) as f:
                self.truth = json.load(f)
            qmp = self.guest.connect_qmp()
            qmp.cmd("stop")
            self.dump = os.path.join(self.dir, "stopped.vmcore")
            qmp.cmd("dump-guest-memory", timeout=lab.TIMEOUT_DUMP, paging=False,
                    protocol="file:" + self.dump, format="elf")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        self.guest.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.sockdir, ignore_errors=True)


def gdb_run(lv, commands, timeout=900):
    """[(rc, output)] of pfnscope GDB commands in one GDB over the gdbstub
    ($pfnscope_rc; None when the command raised a GDB error)."""
    argv = ["gdb", "-q", "-batch", "-nx", lv.vmlinux, "-ex", "set pagination off",
            "-ex", "target remote %s" % lv.gdb_socket, "-ex", "source %s" % GDB_PLUGIN]
    for i, c in enumerate(commands):
        argv += ["-ex", "set $pfnscope_rc = -1", "-ex", "python print('@@BEGIN %d')" % i,
                 "-ex", c, "-ex", "python print('@@END %d', gdb.convenience_variable('pfnscope_rc'))" % i]
    argv += ["-ex", "detach"]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                        env=dict(os.environ, PFNSCOPE_NO_PROGRESS="1"))
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


def cli(lv, *argv):
    cmd = [sys.executable, "-m", "pfnscope", "-c", lv.dump, "-s", lv.vmlinux]
    for f in lv.kvm_debug:
        cmd += ["-s", f]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"), PFNSCOPE_NO_PROGRESS="1")
    r = subprocess.run(cmd + list(argv), capture_output=True, text=True, env=env, timeout=600)
    return r.returncode, r.stdout, r.stderr


def records(text):
    """--json records without the target record (its layout source differs)."""
    recs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [r for r in recs if r.get("type") != "target"]


@pytest.fixture(scope="module", params=CASES, ids=["%s-%s-%s" % c for c in CASES])
def runs(request):
    lv = LiveKvm(*request.param)
    try:
        pid = lv.truth["pid"]
        anon = [s for s in lv.truth["slots"] if s["kind"] == "anon"][0]["pages"][3]
        devmem = [s for s in lv.truth["slots"] if s["kind"].startswith("devmem")][0]["pages"][0]
        mods = " ".join("-s %s" % f for f in lv.kvm_debug)
        argvs = {"vms": ["kvm", "--json"], "sptes": ["kvm", "-p", str(pid), "--json"],
                 "rmap_anon": ["rmap", str(anon["pfn"]), "--json"],
                 "rmap_devmem": ["rmap", str(devmem["pfn"]), "--json"]}
        t0 = time.time()
        g = gdb_run(lv, ["pfnscope %s %s" % (" ".join(a), mods) for a in argvs.values()])
        t_gdb = time.time() - t0
        r = {"lv": lv, "anon": anon, "devmem": devmem, "gdb": dict(zip(argvs, g))}
        t0 = time.time()
        r["cli"] = {k: cli(lv, *a) for k, a in argvs.items()}
        print("%s: gdb %.1fs, cli %.1fs for %d commands" % (request.param, t_gdb, time.time() - t0, len(argvs)))
        yield r
    finally:
        lv.stop()


def _pair(runs, what):
    grc, gout, gerr = runs["gdb"][what]
    crc, cout, cerr = runs["cli"][what]
    assert grc is not None, (what, gout[-2000:], gerr[-2000:])
    return (grc, records(gout)), (crc, records(cout), cerr)


def test_gdb_kvm_vms_match_cli(runs):
    (grc, g), (crc, c, cerr) = _pair(runs, "vms")
    assert crc == 0, cerr
    assert grc == crc and g == c
    lv = runs["lv"]
    vms = [r for r in g if r["type"] == "vm"]
    assert len(vms) == 1 and vms[0]["pid"] == lv.truth["pid"]
    got = sorted((m["id"], m["base_gfn"], m["npages"], int(m["hva"], 16)) for m in vms[0]["memslots"])
    assert got == sorted((s["id"], s["base_gfn"], s["npages"], s["hva"]) for s in lv.truth["slots"])


def test_gdb_kvm_sptes_match_cli(runs):
    (grc, g), (crc, c, cerr) = _pair(runs, "sptes")
    assert crc in (0, 1), cerr
    assert grc == crc
    sptes = [r for r in g if r["type"] == "spte"]
    assert g == c, "GDB and the CLI differ on the same stopped guest"
    # and both are KVM's truth: one SPTE per touched page, over the recorded pfn
    lv = runs["lv"]
    truth = truth_pages(lv)
    assert sorted(r["gfn"] for r in sptes) == sorted(truth)
    changed = {x["gfn"]: x for x in lv.truth["guest_read"].get("kvmbug", [])}
    bad = [r for r in sptes if r["pfn"] != truth[r["gfn"]][1] or r["host"] is None
           or r["host"]["pfn"] != changed.get(r["gfn"], {}).get("host_pfn", truth[r["gfn"]][1])]
    assert not bad, bad[:2]
    # a buggy guest's diagnoses are there (and make both exit 1)
    diag = sorted({d["code"] for r in sptes for d in r["diagnoses"]})
    print("%s %s %s: %d SPTEs equal in GDB and the CLI, diagnoses %s"
          % (lv.kernel, lv.cpu, lv.scenario, len(sptes), diag))
    if lv.scenario == "buggy":
        assert grc == 1 and "KVM_STALE_SPTE" in diag, diag
    else:
        assert grc == 0 and diag == []


@pytest.mark.parametrize("what", ["rmap_anon", "rmap_devmem"])
def test_gdb_rmap_lists_vmm_pte_and_spte(runs, what):
    (grc, g), (crc, c, cerr) = _pair(runs, what)
    assert grc == crc and g == c, (what, g, c)
    lv = runs["lv"]
    page = runs["anon" if what == "rmap_anon" else "devmem"]
    errs = [r for r in g if r["type"] == "error"]
    assert lv.truth["pid"] not in [r["pid"] for r in errs], errs
    ents = [(r["pid"], int(r["addr"], 16)) for r in g if r["type"] == "entry"]
    sptes = [(r["pid"], r["gfn"]) for r in g if r["type"] == "spte"]
    assert ents == [(lv.truth["pid"], page["hva"])]
    assert sptes == [(lv.truth["pid"], page["gfn"])]
