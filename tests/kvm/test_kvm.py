"""`pfnscope kvm` and `pfnscope rmap` against the nested-KVM lab's truth.

Every fixture (tests/kvm/kvmlab.py: Debian 6.1 and 6.12, 4-level and 5-level
host paging) holds one VM whose VMM recorded, inside the outer guest, its
memslots, the pagemap of the anon slot and the /dev/mem offsets of the two
/dev/mem slots; the nested guest touched every page of every slot.  In every
dump format:
  - `kvm` lists that VM with the VMM's pid, exactly the recorded memslots and
    a TDP MMU root of the host's paging depth;
  - `kvm -p PID` finds one 4 KiB leaf SPTE per recorded page and no other,
    each over the pfn the truth recorded, and the host pte at its hva maps
    the same pfn (normal for anon, special for /dev/mem);
  - KVM's reference verdict follows the kernel's model (anon: GUP ref;
    /dev/mem over reserved pages: none); healthy fixtures have no KVM_*
    diagnosis; the buggy one (special ptes over refcounted RAM from the lab's
    buggy module, mapped into a memslot) has KVM_REF_ON_SPECIAL on exactly
    those SPTEs where KVM < 6.13 took a reference; two of its VGA-slot host ptes,
    changed without MMU notifiers (tests/kvm/module), give KVM_STALE_SPTE and
    KVM_SPTE_WRITABLE_HOST_RO on exactly those gfns; its second buggy slot
    (special ptes over pages freed to the buddy allocator) makes KVM < 6.13 fail
    KVM_RUN with EFAULT (no SPTE) while 6.13+ maps it: KVM_SPTE_FREED_PAGE there;
  - `rmap PFN` of a guest frame finds the VMM's pte and the SPTE, nothing else.
"""
import json
import os
import subprocess
import sys

import jsonschema
import pytest

from tests.kvm import kvmlab
from tests.vm.conftest import lacks_in_real_kdump

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = kvmlab.kvm_set()
CASES = [(k, f) for k in KEYS for f in kvmlab.dump_formats(k[1])]
IDS = ["%s-%s-%s-%s" % (k + (f,)) for k, f in CASES]
_built = {}


def fx_of(key):
    if key not in _built:
        try:
            _built[key] = kvmlab.fixture(*key)
        except Exception as e:
            _built[key] = e
    v = _built[key]
    if isinstance(v, Exception):
        raise AssertionError("kvm fixture %s could not be built: %s" % (key, v))
    return v


def run(fx, fmt, *argv):
    cmd = [sys.executable, "-m", "pfnscope", "-c", fx.dumps[fmt], "-s", fx.vmlinux]
    for f in fx.kvm_debug:
        cmd += ["-s", f]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"))
    r = subprocess.run(cmd + ["--json"] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env, timeout=600)
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    v = validator()
    for rec in recs:  # every record the CLI writes is one docs/pfnscope.schema.json knows
        errs = list(v.iter_errors(rec))
        assert not errs, "%s: %s" % (rec, errs[0].message)
    return r.returncode, recs, r.stderr


_validator = []


def validator():
    if not _validator:
        with open(os.path.join(ROOT, "docs", "pfnscope.schema.json")) as f:
            _validator.append(jsonschema.Draft202012Validator(json.load(f)))
    return _validator[0]


EFAULT = 14


def kvm_refs_pfnmap(fx):
    """KVM before 6.13 takes a reference on a refcounted page behind a pfnmap
    (hva_to_pfn_remapped -> kvm_try_get_pfn / kvm_pfn_to_refcounted_page);
    6.13 ("KVM: Stop grabbing references to PFNMAP'd pages") does not."""
    return fx.kernel in ("6.1", "6.12")


def truth_pages(fx):
    """{gfn: (slot kind, pfn, hva, page truth)} of every page the nested guest
    touched and KVM mapped: the freed slot only when KVM_RUN did not fail with
    EFAULT (KVM < 6.13 refuses a refcount-0 page behind a pfnmap)."""
    out = {}
    for s in fx.truth["slots"]:
        if s["kind"] == "buggy-freed" and fx.truth.get("run_errno") == EFAULT:
            continue
        for p in s["pages"]:
            out[p["gfn"]] = (s["kind"], p["pfn"], p["hva"], p)
    return out


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_vm_list(key, fmt):
    fx = fx_of(key)
    rc, recs, err = run(fx, fmt, "kvm")
    if lacks_in_real_kdump(fx, fmt, rc, err):
        return
    assert rc == 0, err
    vms = [r for r in recs if r["type"] == "vm"]
    assert len(vms) == 1, recs
    vm = vms[0]
    assert vm["pid"] == fx.truth["pid"]
    got = sorted((m["id"], m["base_gfn"], m["npages"], int(m["hva"], 16)) for m in vm["memslots"])
    want = sorted((s["id"], s["base_gfn"], s["npages"], s["hva"]) for s in fx.truth["slots"])
    assert got == want
    live = [r for r in vm["roots"] if not r["invalid"] and not r["smm"]]
    assert live and all(r["level"] == fx.levels for r in live), vm["roots"]


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_sptes_agree_with_truth(key, fmt):
    fx = fx_of(key)
    rc, recs, err = run(fx, fmt, "kvm", "-p", str(fx.truth["pid"]))
    if lacks_in_real_kdump(fx, fmt, rc, err):
        return
    # exit 1 exactly when a diagnosis at high or above fired
    assert rc == (1 if any(d["severity"] in ("high", "critical")
                           for r in recs if r["type"] == "spte" for d in r["diagnoses"]) else 0), err
    sptes = [r for r in recs if r["type"] == "spte"]
    truth = truth_pages(fx)
    got = {r["gfn"]: r for r in sptes}
    assert len(got) == len(sptes), "one SPTE per gfn"
    assert sorted(got) == sorted(truth), "SPTE gfns differ from the pages the nested guest touched"
    bad = []
    # pfnscope_kvmbug (tests/kvm/module) changed these host ptes without MMU notifiers
    changed = {c["gfn"]: c for c in fx.truth["guest_read"].get("kvmbug", [])}
    host_errors = {r.get("host_error") for r in sptes} - {None}
    if host_errors:
        # the VMM's mm could not be read from this dump (7.x kdump-real: makedumpfile -d 31
        # drops it): the SPTEs must still agree; no host-based diagnosis may be given
        assert fmt == "kdump-real", host_errors
        for gfn, r in sorted(got.items()):
            kind, pfn, hva, pt = truth[gfn]
            want = ["KVM_SPTE_FREED_PAGE"] if kind == "buggy-freed" else []
            if r["pfn"] != pfn or r["host"] is not None or sorted(d["code"] for d in r["diagnoses"]) != want:
                bad.append((gfn, kind, pfn, r))
        assert not bad, "%d of %d SPTEs disagree with the truth, first: %s" % (len(bad), len(got), bad[:2])
        return
    for gfn, r in sorted(got.items()):
        kind, pfn, hva, pt = truth[gfn]
        h = r["host"]
        host_pfn = changed.get(gfn, {}).get("host_pfn", pfn)
        ok = (r["level"] == "pte" and r["present"] and r["pfn"] == pfn and int(r["hva"], 16) == hva
              and h is not None and h["kind"] == "present" and h["pfn"] == host_pfn)
        want = []
        if gfn in changed:
            ok = ok and h["special"] and r["writable"]
            if "host_pfn" in changed[gfn]:
                want = ["KVM_STALE_SPTE"]
            else:
                ok = ok and h["writable"] is False
                want = ["KVM_SPTE_WRITABLE_HOST_RO"]
        elif kind == "anon":
            ok = ok and not h["special"] and r["kvm_ref"] is True and r["writable"] and r["dirty"]
        elif kind.startswith("devmem"):
            ok = ok and h["special"] and r["kvm_ref"] is False and h["page"]["reserved"]
        elif kind == "buggy-special-over-ram":  # case C
            ok = ok and h["special"] and not h["page"]["reserved"] and r["kvm_ref"] is kvm_refs_pfnmap(fx)
            # /proc/kpageflags: not KPF_RESERVED (32), not KPF_BUDDY (10); /proc/kpagecount
            # is the mapcount: 0 under a special pte
            ok = ok and not pt["kpageflags"] >> 32 & 1 and not pt["kpageflags"] >> 10 & 1
            ok = ok and pt["kpagecount"] == 0 and r["page"]["refcount"] >= 1
            want = ["KVM_REF_ON_SPECIAL"] if kvm_refs_pfnmap(fx) else []
        else:  # buggy-freed: KVM 6.13+ mapped pages the buddy allocator owns
            ok = ok and h["special"] and not pt["kpageflags"] >> 32 & 1 and r["page"]["refcount"] == 0
            ok = ok and "MAPS_FREED_PAGE" in [d["code"] for d in h["diagnoses"]]
            want = ["KVM_SPTE_FREED_PAGE"]
        codes = sorted(d["code"] for d in r["diagnoses"])
        ok = ok and codes == want
        if not ok:
            bad.append((gfn, kind, pfn, r))
    assert not bad, "%d of %d SPTEs disagree with the truth, first: %s" % (len(bad), len(got), bad[:2])


@pytest.mark.parametrize("key", KEYS, ids=["%s-%s-%s" % k for k in KEYS])
def test_nested_guest_ran(key):
    """The nested guest halted after writing every anon page (the VMM read back
    its values); without this the SPTE comparison would prove nothing."""
    fx = fx_of(key)
    if fx.scenario == "buggy" and kvm_refs_pfnmap(fx):
        # the freed slot, read last: KVM < 6.13 refuses a refcount-0 page
        assert fx.truth["run_errno"] == EFAULT
    else:
        assert fx.truth["run_errno"] == 0 and fx.truth["exit_reason"] == 5  # KVM_EXIT_HLT
    assert fx.truth["guest_read"]["anon"] == [0x6b00 | i for i in range(1, 16)]
    assert fx.truth["guest_read"]["reserved"] == fx.truth["guest_read"]["reserved_host"]
    assert fx.params.get("kvm_amd/parameters/npt") == "Y"
    assert fx.params.get("la57") == ("1" if fx.levels == 5 else "0")


@pytest.mark.parametrize("key", KEYS, ids=["%s-%s-%s" % k for k in KEYS])
def test_rmap_finds_guest_frame(key):
    fx = fx_of(key)
    anon = [s for s in fx.truth["slots"] if s["kind"] == "anon"][0]
    page = anon["pages"][3]
    rc, recs, err = run(fx, "elf-paging", "rmap", str(page["pfn"]))
    # exit 2 names tasks that could not be read (a task caught mid-exec in the dump);
    # the VMM must not be one of them
    errs = [r for r in recs if r["type"] == "error"]
    assert rc == (2 if errs else 0), err
    assert fx.truth["pid"] not in [r["pid"] for r in errs], errs
    ents = [(r["pid"], int(r["addr"], 16)) for r in recs if r["type"] == "entry"]
    sptes = [(r["pid"], r["gfn"]) for r in recs if r["type"] == "spte"]
    assert ents == [(fx.truth["pid"], page["hva"])]
    assert sptes == [(fx.truth["pid"], page["gfn"])]


def test_kernel_without_kvm():
    """A dump of a kernel with no kvm module: one line naming the problem, exit 2."""
    from tests.vm import lab
    fx = lab.fixture("6.1", "max", "healthy")
    cmd = [sys.executable, "-m", "pfnscope", "-c", fx.dumps["elf-paging"], "-s", fx.vmlinux, "kvm"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python")), timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == "pfnscope: kvm: the kvm module is not loaded in this kernel (no vm_list)"


# the CLI, counting the loads of the debug vmlinux's DWARF (pfnscope.program.load_vmlinux)
_COUNTED_CLI = r"""
import sys
import pfnscope.opening as O, pfnscope.program as P
n = [0]
real = P.load_vmlinux
def counted(*a):
    n[0] += 1
    return real(*a)
P.load_vmlinux = O.load_vmlinux = counted
from pfnscope import cli
rc = cli.main(sys.argv[1:])
sys.stderr.write("LOAD_VMLINUX %d\n" % n[0])
sys.exit(rc)
"""


def _rmap_counted(cache, dump, vmlinux, pfn, mods=()):
    cmd = [sys.executable, "-c", _COUNTED_CLI, "-c", dump, "-s", vmlinux]
    for f in mods:
        cmd += ["-s", f]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"), PFNSCOPE_CACHE=cache,
               PFNSCOPE_LAYOUT_CACHE="1", PFNSCOPE_NO_PROGRESS="1")
    r = subprocess.run(cmd + ["--json", "rmap", str(pfn)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env, timeout=600)
    loads = [int(l.split()[1]) for l in r.stderr.splitlines() if l.startswith("LOAD_VMLINUX ")]
    assert len(loads) == 1, r.stderr
    return r.returncode, [json.loads(l) for l in r.stdout.splitlines() if l.strip()], loads[0]


def test_rmap_cached_layout_loads_dwarf_only_with_kvm(tmp_path):
    """With a cached layout, rmap asks the module list (cached offsets) whether
    KVM is loaded: a kernel without it loads no DWARF; with it, the debug
    vmlinux is loaded and the SPTE found."""
    from tests.vm import lab
    fx = lab.fixture("6.1", "max", "healthy")
    m = [x for x in fx.manifest if x.get("kind") == "anon_private_written"][0]
    page = m["pages"][0]
    cache = str(tmp_path / "cache")
    for run_no in (1, 2):  # the first run makes the cache file
        rc, recs, loads = _rmap_counted(cache, fx.dumps["elf-paging"], fx.vmlinux, page["pfn"])
        assert rc == 0
        assert [(r["pid"], int(r["addr"], 16)) for r in recs if r["type"] == "entry"] == \
            [(m["pid"], int(page["addr"], 16))]
        assert [r for r in recs if r["type"] == "target"][0]["layout_source"] == \
            ("debuginfo" if run_no == 1 else "cache")
    assert loads == 0, "rmap loaded the debug vmlinux for a kernel without KVM"
    kfx = fx_of(KEYS[0])
    kpage = [s for s in kfx.truth["slots"] if s["kind"] == "anon"][0]["pages"][3]
    for run_no in (1, 2):
        rc, recs, loads = _rmap_counted(cache, kfx.dumps["elf-paging"], kfx.vmlinux, kpage["pfn"],
                                        kfx.kvm_debug)
        assert [(r["pid"], r["gfn"]) for r in recs if r["type"] == "spte"] == \
            [(kfx.truth["pid"], kpage["gfn"])]
    assert loads == 1
