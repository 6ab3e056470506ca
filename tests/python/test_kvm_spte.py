"""pfnscope.kvm_mmu on synthetic stage-2 tables: the SPTE walk (one 512-entry
table per read, leaves at every level, MMU-present bit 11, non-present values
of 6.1 (0) and 6.10+ (SHADOW_NONPRESENT_VALUE, bit 63), REMOVED/FROZEN), the
decoding with the masks KVM set for AMD NPT, and each KVM_* diagnosis firing
on the state it names and on nothing healthy."""
import struct

import pytest

from pfnscope import kvm_mmu as kvm

NPT_MASKS = {  # what kvm_mmu_reset_all_pte_masks + svm_hardware_setup set (read from a 6.1 dump)
    "shadow_host_writable_mask": 0x200, "shadow_mmu_writable_mask": 0x400,
    "shadow_nx_mask": 1 << 63, "shadow_x_mask": 0, "shadow_user_mask": 0x4,
    "shadow_accessed_mask": 0x20, "shadow_dirty_mask": 0x40,
    "shadow_mmio_value": 0x8000000000001, "shadow_mmio_mask": 0x8000000000001,
    "shadow_present_mask": 0x1, "shadow_me_mask": 0, "shadow_acc_track_mask": 0,
}


class FakeProg:
    def __init__(self, tables):
        self.tables = tables
        self.reads = 0

    def read(self, addr, size, physical=False):
        assert physical and size == 4096
        self.reads += 1
        t = self.tables.get(addr, [0] * 512)
        return struct.pack("<512Q", *t)


def fake_kvm(tables, nonpresent=0):
    k = kvm.Kvm.__new__(kvm.Kvm)
    k.prog = FakeProg(tables)
    k.masks = dict(NPT_MASKS)
    k.base_addr_mask = ((1 << 52) - 1) & ~0xfff
    k.nonpresent = nonpresent
    k.removed = nonpresent | kvm.REMOVED_SPTE_LOW
    return k


def table(entries, fill=0):
    t = [fill] * 512
    for i, v in entries.items():
        t[i] = v
    return t


LEAF = 0xe67          # P W U A D host-writable mmu-writable MMU-present (a 6.1 dump's value)
NONLEAF = 0x827       # P W U A MMU-present


@pytest.mark.parametrize("nonpresent", [0, 1 << 63], ids=["6.1", "6.12"])
def test_walk_finds_every_leaf(nonpresent):
    np_ = nonpresent
    tables = {
        0x1000: table({0: 0x2000 | NONLEAF, 3: 0x9000 | NONLEAF}, np_),     # level 4 root
        0x2000: table({0: 0x3000 | NONLEAF, 1: 0x40000000 | LEAF | 0x80}, np_),  # level 3: 1G leaf at index 1
        0x3000: table({0: 0x4000 | NONLEAF, 5: 0x200000 * 7 | LEAF | 0x80}, np_),  # level 2: 2M leaf
        0x4000: table({0: 0x2d79000 | LEAF, 160: 0xa0000 | LEAF, 161: kvm.REMOVED_SPTE_LOW | np_}, np_),
        0x9000: table({}, np_),
    }
    k = fake_kvm(tables, np_)
    leaves = k.leaves({"hpa": 0x1000, "level": 4, "gfn": 0})
    assert leaves == [(0, 1, 0x2d79000 | LEAF), (160, 1, 0xa0000 | LEAF),
                      (5 << 9, 2, 0x200000 * 7 | LEAF | 0x80),
                      (1 << 18, 3, 0x40000000 | LEAF | 0x80)]
    assert k.prog.reads == 5   # one read per table, never per entry
    assert k.decode(kvm.REMOVED_SPTE_LOW | np_, 1)["removed"]
    assert not k.decode(kvm.REMOVED_SPTE_LOW | np_, 1)["present"]


def test_decode_bits():
    k = fake_kvm({})
    d = k.decode(0x2d79000 | LEAF, 1)
    assert d["present"] and d["writable"] and d["executable"] and d["accessed"] and d["dirty"]
    assert d["host_writable"] and d["mmu_writable"] and not d["mmio"]
    ro = k.decode((0x2d79000 | LEAF | 1 << 63) & ~0x642, 1)   # no W, D, MMU-writable; NX
    assert not ro["writable"] and not ro["executable"] and not ro["dirty"] and not ro["mmu_writable"]
    mmio = k.decode(0x8000000000001 | 0xa0000, 1)
    assert mmio["mmio"] and not mmio["present"]


def rec(pfn=0x100, writable=True, kvm_ref=True, hva="0x7f0000000000"):
    return {"present": True, "pfn": pfn, "gfn": 0, "writable": writable, "kvm_ref": kvm_ref, "hva": hva}


def host(pfn=0x100, writable=True, special=False, reserved=False, kind="present"):
    return {"kind": kind, "pfn": pfn, "writable": writable, "special": special,
            "page": {"reserved": reserved, "refcount": 1, "free": False}}


OKPAGE = {"refcount": 2, "free": False, "reserved": False}


def codes(r, h, page=OKPAGE):
    return sorted(d["code"] for d in kvm.spte_diagnoses(r, h, page))


def test_healthy_is_silent():
    assert codes(rec(), host()) == []
    assert codes(rec(kvm_ref=False), host(special=True, reserved=True), {"refcount": 1, "free": False,
                                                                         "reserved": True}) == []


def test_stale_spte():
    assert codes(rec(pfn=0x100), host(pfn=0x200)) == ["KVM_STALE_SPTE"]
    assert codes(rec(), host(kind="none")) == ["KVM_STALE_SPTE"]
    assert codes(rec(), None) == ["KVM_STALE_SPTE"]


def test_spte_freed_page():
    assert codes(rec(), host(), {"refcount": 0, "free": True, "reserved": False}) == ["KVM_SPTE_FREED_PAGE"]
    assert codes(rec(), host(), {"refcount": 0, "free": False, "reserved": False}) == ["KVM_SPTE_FREED_PAGE"]


def test_spte_writable_host_ro():
    assert codes(rec(writable=True), host(writable=False)) == ["KVM_SPTE_WRITABLE_HOST_RO"]
    assert codes(rec(writable=False), host(writable=False)) == []


def test_ref_on_special():
    assert codes(rec(kvm_ref=True), host(special=True)) == ["KVM_REF_ON_SPECIAL"]
    assert codes(rec(kvm_ref=False), host(special=True)) == []   # 6.13+: no reference taken
    assert codes(rec(kvm_ref=True), host(special=True, reserved=True)) == []


def test_not_present_has_no_diagnosis():
    r = rec()
    r["present"] = False
    assert codes(r, host(pfn=0x999)) == []


def test_codes_documented_and_in_schema():
    """docs/diagnoses.md documents each KVM code with the severity the code
    gives, and the schema's kvm_code enum is the same set."""
    import json
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "diagnoses.md")) as f:
        doc = f.read()
    table = dict(re.findall(r"^\| `(KVM_[A-Z_]+)` \(\[.\]\(#[a-z_]+\)\) \| ([a-z]+) \|", doc, re.M))
    assert table == dict(kvm.KVM_DIAG_CODES)
    for code, sev in kvm.KVM_DIAG_CODES:
        m = re.search(r"^## %s\n\n\*\*Severity: ([a-z]+)" % code, doc, re.M)
        assert m and m.group(1) == sev, code
    with open(os.path.join(root, "docs", "pfnscope.schema.json")) as f:
        schema = json.load(f)
    assert set(schema["$defs"]["kvm_code"]["enum"]) == set(dict(kvm.KVM_DIAG_CODES))


def test_c_scan():
    """One table through the C core's pfs_spte_scan (the extension's
    spte_scan): MMU-present entries only, a leaf where is_last_spte."""
    t = table({0: 0x3000 | NONLEAF, 1: 0x40000000 | LEAF | 0x80, 2: kvm.REMOVED_SPTE_LOW,
               7: 0x8000000000001 | 0xa0000, 300: 0x5000 | LEAF}, 1 << 63)
    buf = struct.pack("<512Q", *t)
    c = kvm.scan_table(buf, 3, 1 << 27)
    assert c == ([((1 << 27) + (1 << 18), 3, 0x40000000 | LEAF | 0x80)],
                 [(1 << 27, 3, 0x3000 | NONLEAF), ((1 << 27) + (300 << 18), 3, 0x5000 | LEAF)])
    with pytest.raises(ValueError):
        kvm.scan_table(buf[:-8], 3, 0)
