"""`pfnscope -k check` inside a test VM booted with the buggy module
(tests/vm/module, 6.1 -cpu max), run through examples/test_vm_check.py (so the
example runs in `make check`): the guest chroots into the host's root over 9p
and runs the CLI against its own /proc/kcore; the exit status comes back to
the host.  It must exit 1 and name the codes the module's mappings are
expected to produce (the guest-side manifest), each in its mapping's range.
(The healthy boot's exit 0 is in test_live_61.py, on the guest booted there.)
"""
from __future__ import annotations

import importlib.util
import os

import live_support as L

SEVERITIES = ("low", "medium", "high", "critical")


def _example():
    path = os.path.join(L.ROOT, "examples", "test_vm_check.py")
    spec = importlib.util.spec_from_file_location("test_vm_check_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_kcore_check_in_buggy_guest_exits_1():
    ex = _example()
    rc, out, err, manifest = ex.check_in_vm("6.1", "max", "buggy", ["--json"], L.GUEST_CLI)
    assert rc == 1, (rc, out[-2000:], err[-2000:])
    findings = [o for o in L.jsonl(out) if o["type"] == "finding"]
    expected = []
    for m in manifest:
        if "start" not in m or not m.get("diagnoses"):
            continue
        pid, start, end = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
        here = {f["code"] for f in findings if f["pid"] == pid
                and int(f["start"], 16) < end and int(f["end"], 16) > start}
        for code in m["diagnoses"]:
            expected.append(code)
            assert code in here, (m["kind"], code, sorted(here))
    assert expected, "the buggy manifest lists no diagnoses"
    assert any(SEVERITIES.index(f["severity"]) >= SEVERITIES.index("high") for f in findings)
    print("buggy guest: -k check exit 1, codes:", sorted(set(expected)))
