"""The CLI's JSON checked field by field against the kernel's rules on real dumps;
and tasks/vmas/walk/check agree across readers and output modes."""
import json
import re

import pytest

import lab_support as L

HEX = re.compile(r"^0x[0-9a-f]+$")
KINDS = {"present", "none", "protnone", "swap", "migration", "device", "marker",
         "hwpoison", "unreadable"}
VERDICTS = {"n/a", "page", "zero_page", "pfn", "pfn_ref", "fallback", "efault", "eexist", "fault_in"}
CONSUMERS = {"gup_fast", "gup", "follow_pte", "kvm", "vfio"}
KEY = L.healthy_keys()[0]


def check_entry(e: dict, fx=None) -> None:
    assert e["type"] == "entry"
    assert isinstance(e["pid"], int) and e["pid"] > 0
    for k in ("vma_start", "addr", "raw"):
        assert HEX.match(e[k]), (k, e)
    assert e["level"] in ("pte", "pmd", "pud")
    assert e["kind"] in KINDS
    assert e["pfn"] is None or (isinstance(e["pfn"], int) and e["pfn"] >= 0)
    for k in ("special", "devmap", "writable", "normal_page"):
        assert isinstance(e[k], bool), (k, e)
    assert isinstance(e["vnp_reason"], str) and e["vnp_reason"]
    if e["kind"] == "present":
        assert e["pfn"] is not None
    if e["normal_page"]:
        # protnone entries go through vm_normal_page too: mm/memory.c
        # do_numa_page() calls vm_normal_page() on a protnone pte (NUMA
        # hinting), so normal_page can be true for kind "protnone"
        assert e["kind"] in ("present", "protnone") and \
            not (e["special"] and e["level"] == "pte" and e["vnp_reason"] != "not_special")
    pg = e["page"]
    if pg is not None:
        for k in ("refcount", "mapcount", "head_pfn"):
            assert isinstance(pg[k], int), (k, e)
        assert isinstance(pg["flags"], list) and all(isinstance(f, str) for f in pg["flags"])
        assert isinstance(pg["anon"], bool) and isinstance(pg["reserved"], bool)
        assert pg["head_pfn"] <= e["pfn"]
    c = e["consumers"]
    assert CONSUMERS <= set(c), e
    assert all(v in VERDICTS for v in c.values()), c
    assert isinstance(e["diagnoses"], list)
    for d in e["diagnoses"]:
        assert d["severity"] in L.SEVERITIES, d
        if fx is not None:
            assert L.expected_severity(fx, d["code"], e["pid"], int(e["addr"], 16)) == d["severity"], (d, e)


def check_vma(v: dict) -> None:
    assert v["type"] == "vma"
    assert isinstance(v["pid"], int)
    for k in ("start", "end", "flags"):
        assert HEX.match(v[k]), (k, v)
    assert int(v["start"], 16) < int(v["end"], 16)
    assert isinstance(v["flag_names"], list)
    assert isinstance(v["pgoff"], int)
    assert v["file"] is None or isinstance(v["file"], str)
    assert isinstance(v["cow"], bool)
    flags = int(v["flags"], 16)
    assert ("pfnmap" in v["flag_names"]) == bool(flags & 0x400)
    assert ("io" in v["flag_names"]) == bool(flags & 0x4000)
    assert ("mixedmap" in v["flag_names"]) == bool(flags & 0x10000000)
    assert v["cow"] == ((flags & 0x28) == 0x20)


@pytest.mark.parametrize("fmt", L.FORMATS)
def test_walk_json_schema(fmt):
    fx = L.fixture(*KEY)
    vmas, ents = L.walk_all(KEY, fmt)
    n = 0
    for pid, vs in vmas.items():
        for v in vs:
            check_vma(v)
        starts = {v["start"] for v in vs}
        for e in ents.get(pid, []):
            check_entry(e, fx)
            assert e["vma_start"] in starts
            n += 1
    assert n > 100


def test_check_json_schema():
    fx = L.fixture(*KEY)
    r = L.check_json(KEY, "kdump-real")
    assert r.rc in (0, 1), r
    for o in r.json():
        assert o["type"] in ("finding", "error")
        if o["type"] == "finding":
            for k in ("vma_start", "vma_end", "start", "end"):
                assert HEX.match(o[k]), o
            assert isinstance(o["pid"], int) and isinstance(o["comm"], str)
            assert L.expected_severity(fx, o["code"], o["pid"], int(o["start"], 16)) == o["severity"], o
            assert o["scope"] in ("entry", "vma")


def test_tasks_json_and_table():
    fx = L.fixture(*KEY)
    r = L.run("-c", fx.dumps["kdump-real"], "-s", fx.vmlinux, "tasks", "--json")
    assert r.rc == 0, r
    tasks = r.json()
    pids = {t["pid"] for t in tasks if t["mm"] != "0x0"}
    assert set(L.manifest_pids(fx)) <= pids
    assert any(t["pid"] == 1 for t in tasks)
    r2 = L.run("-c", fx.dumps["kdump-real"], "-s", fx.vmlinux, "tasks")
    assert r2.rc == 0 and r2.out.splitlines()[0].split()[:2] == ["PID", "TGID"], r2
    assert {int(l.split()[0]) for l in r2.out.splitlines()[1:]} == pids


def test_readers_agree():
    """--reader drgn and the default libkdumpfile reader give identical JSON."""
    fx = L.fixture(*KEY)
    pid = L.manifest_pids(fx)[0]
    outs = []
    for reader in ("kdumpfile", "drgn"):
        r = L.run("-c", fx.dumps["kdump-real"], "-s", fx.vmlinux, "--reader", reader,
                  "walk", "-p", str(pid), "--all", "--json")
        assert r.rc == 0, r
        outs.append(r.out)
    # the target records differ only in where the layout came from: the
    # kdumpfile reader's run may read the layout cache, drgn's loads the DWARF
    heads = [json.loads(o.split("\n", 1)[0]) for o in outs]
    assert heads[0].pop("layout_source") in ("debuginfo", "cache")
    assert heads[1].pop("layout_source") == "debuginfo"
    assert heads[0] == heads[1]
    assert outs[0].split("\n", 1)[1] == outs[1].split("\n", 1)[1]
    assert outs[0].count('"type":"entry"') > 0


def test_summary_and_table_cover_the_same_entries():
    fx = L.fixture(*KEY)
    pid = L.manifest_pids(fx)[0]
    base = ["-c", fx.dumps["kdump-real"], "-s", fx.vmlinux, "walk", "-p", str(pid), "--all"]
    full = L.run(*base, "--json")
    summ = L.run(*base, "--json", "--summary")
    table = L.run(*base)
    assert full.rc == summ.rc == table.rc == 0
    n = sum(1 for o in full.json() if o["type"] == "entry")
    runs = [o for o in summ.json() if o["type"] == "run"]
    assert sum(r["count"] for r in runs) == n and 0 < len(runs) <= n
    rows = [l for l in table.out.splitlines() if l.startswith("0x")]
    assert len(rows) == n
