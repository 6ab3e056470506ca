"""`pfnscope -k check` inside a test VM with no vmlinux anywhere: the layout
comes from the running kernel's /sys/kernel/btf/vmlinux and /proc/kallsyms.

The guest chroots into the host's root over 9p (tests/vm lab.live); the lab's
debug vmlinuxes are hidden from it (a tmpfs over $PFNSCOPE_CACHE/kernels, an
empty $PFNSCOPE_CACHE) and the distribution paths pfnscope tries must not
exist either.  The healthy 6.1 guest must exit 0, the buggy one (the test
module's mislabeled pfnmap pages) 1 with the codes its manifest expects.
The host's --qemu-ram check of the same running guest, without a vmlinux
either, must agree on the exit status.  And on 5.10 (no kallsyms tables in
VMCOREINFO, so no BTF for its dumps) -k with BTF equals -k with the debug
vmlinux.  One guest at a time.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

import live_support as L

HIDE = """
kdir={cache}/kernels
mount -t tmpfs pfnscope-no-vmlinux "$kdir" || echo "cannot hide $kdir" >&2
mkdir -p /tmp/empty-cache
rel=$(uname -r)
for p in /usr/lib/debug/boot/vmlinux-$rel /usr/lib/debug/lib/modules/$rel/vmlinux \\
         /lib/modules/$rel/build/vmlinux /boot/vmlinux-$rel "$kdir/$rel/vmlinux"; do
    if [ -e "$p" ]; then echo "vmlinux visible: $p" >&2; exit 3; fi
done
PFNSCOPE_CACHE=/tmp/empty-cache PFNSCOPE_NO_PROGRESS=1 {cli} -k check --json
"""


def _run(scenario: str):
    """(rc, out, err) of the in-guest check, the guest's manifest, and
    (rc, out, err) of the host's check of the same running guest through its
    RAM file (--qemu-ram), also without a vmlinux."""
    with L.lab.live(kernel="6.1", cpu="max", scenario=scenario) as guest:
        script = HIDE.format(cache=L.lab.CACHE, cli=L.GUEST_CLI)
        rc, out, err = guest.run(script, timeout=900)
        env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1", PFNSCOPE_CACHE=EMPTY_CACHE)
        cp = subprocess.run([L.BIN, "--qemu-ram", guest.ram_file, "check", "--json"],
                            capture_output=True, text=True, timeout=900, env=env)
        return rc, out, err, guest.manifest, (cp.returncode, cp.stdout, cp.stderr)


EMPTY_CACHE = tempfile.mkdtemp(prefix="pfnscope-no-vmlinux-")


def _target(out: str) -> dict:
    import json
    first = json.loads(out.splitlines()[0])
    assert first["type"] == "target", out[:500]
    return first


@pytest.fixture(scope="module")
def healthy():
    return _run("healthy")


def test_kcore_btf_check_healthy_guest_exits_0(healthy):
    rc, out, err, _, ram = healthy
    assert rc == 0, (rc, out[-2000:], err[-2000:])
    assert ram[0] == 0 and _target(ram[1])["layout_source"] == "btf", ram
    t = _target(out)
    assert t["layout_source"] == "btf" and t["release"].startswith("6.1."), t
    assert not [o for o in L.jsonl(out) if o["type"] in ("finding", "error")
                and o.get("severity") in (None, "high", "critical")], out[-2000:]


def test_kcore_btf_check_buggy_guest_exits_1():
    rc, out, err, manifest, ram = _run("buggy")
    assert rc == 1, (rc, out[-2000:], err[-2000:])
    assert ram[0] == 1 and _target(ram[1])["layout_source"] == "btf", ram
    assert _target(out)["layout_source"] == "btf"
    findings = [o for o in L.jsonl(out) if o["type"] == "finding"]
    missing = []
    for m in manifest:
        if "start" not in m or not m.get("diagnoses"):
            continue
        pid, start, end = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
        here = {f["code"] for f in findings if f["pid"] == pid
                and int(f["start"], 16) < end and int(f["end"], 16) > start}
        missing += [(pid, hex(start), c) for c in m["diagnoses"] if c not in here]
    assert any(m.get("diagnoses") for m in manifest), "buggy manifest without diagnoses"
    assert not missing, missing
    assert os.path.isfile(L.BIN)


LAYOUTS = ("'import json, sys; from pfnscope import target; a = target.open_live(btf=True); "
           "b = target.open_live(sys.argv[1]); "
           "print(json.dumps([a.layout.as_dict(), b.layout.as_dict(), a.facts]))'")


def test_kcore_btf_on_5_10_equals_debuginfo():
    """5.10 names no kallsyms tables in VMCOREINFO (a dump needs -s), but a
    running 5.10 has /proc/kallsyms and /sys/kernel/btf/vmlinux: -k with BTF
    gives the findings and exit status of -k with the debug vmlinux (BTF of
    that era: enums without kind_flag, no enum64), and the same C layout
    (the swap types: CONFIG_DEVICE_PRIVATE from migrate_vma_setup in
    kallsyms before 5.14)."""
    import json
    with L.lab.live(kernel="5.10", cpu="max", scenario="healthy") as guest:
        b_rc, b_out, b_err = guest.run(
            f"PFNSCOPE_CACHE=/tmp/empty-cache PFNSCOPE_NO_PROGRESS=1 {L.GUEST_CLI} -k --btf "
            "check --json", timeout=900)
        d_rc, d_out, d_err = guest.run(
            f"PFNSCOPE_NO_PROGRESS=1 {L.GUEST_CLI} -k -s {guest.vmlinux} check --json",
            timeout=900)
        # the C layout whole, swap types included: MAX_SWAPFILES from the
        # DWARF's swap_info[] against CONFIG_DEVICE_PRIVATE from kallsyms
        l_rc, l_out, l_err = guest.run(
            f"PYTHONPATH={L.ROOT}/src/python /usr/bin/python3 -c {LAYOUTS} {guest.vmlinux}",
            timeout=900)
    assert l_rc == 0, l_err[-2000:]
    btf_lo, dbg_lo, btf_facts = json.loads(l_out.splitlines()[-1])
    assert btf_lo == dbg_lo, {k: (btf_lo.get(k), v) for k, v in dbg_lo.items() if btf_lo.get(k) != v}
    assert btf_facts["swap_types"] == "kernel", btf_facts
    assert _target(b_out)["layout_source"] == "btf" and _target(d_out)["layout_source"] == "debuginfo"
    assert b_rc == d_rc and b_rc in (0, 1), (b_rc, d_rc, b_err[-2000:], d_err[-2000:])

    def findings(out):
        return sorted((o["pid"], o["start"], o["end"], o["code"], o["severity"])
                      for o in map(json.loads, out.splitlines()) if o["type"] == "finding")
    assert findings(b_out) == findings(d_out)
    assert findings(b_out), "the 5.10 healthy guest has findings (io_uring rings)"
