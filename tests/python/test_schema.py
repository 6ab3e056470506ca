"""Every JSON record the CLI writes validates against docs/pfnscope.schema.json
(unknown kinds and unknown fields fail), on the lab's healthy and buggy 6.1
dumps; the schema's and docs/diagnoses.md's vocabularies are the core's."""
import functools
import json
import os
import re

import jsonschema
import pytest

import lab_support as L

SCHEMA_PATH = os.path.join(L.ROOT, "docs", "pfnscope.schema.json")
DIAG_DOC = os.path.join(L.ROOT, "docs", "diagnoses.md")
KEYS = [k for k in L.fixture_keys() if k[0] == "6.1" and k[1] == "max"]
FMT = "kdump-real"


@functools.lru_cache(maxsize=None)
def schema() -> dict:
    with open(SCHEMA_PATH) as f:
        return json.load(f)


def validator() -> jsonschema.Draft202012Validator:
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


@functools.lru_cache(maxsize=None)
def kind_validator(kind: str) -> jsonschema.Draft202012Validator:
    defs = schema()["$defs"]
    assert kind in schema()["properties"]["type"]["enum"] and kind in defs, f"unknown record kind: {kind}"
    return jsonschema.Draft202012Validator(dict(defs[kind], **{"$defs": defs}))


def validate(v, rec: dict) -> None:
    """Validate against the record kind's own definition (precise messages),
    then against the whole schema (the kind must be one it knows)."""
    errs = sorted(kind_validator(rec.get("type")).iter_errors(rec), key=lambda e: list(e.path))
    assert not errs, f"{errs[0].message} at {list(errs[0].path)} in {rec}"
    v.validate(rec)


def records(*args: str):
    r = L.run(*args)
    assert r.rc in (0, 1), r
    assert not r.err or "Traceback" not in r.err, r
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines, r
    return r.rc, [json.loads(l) for l in lines]


@pytest.mark.parametrize("key", KEYS, ids=L.key_id)
def test_cli_json_validates(key):
    v = validator()
    fx = L.fixture(*key)
    base = ["-c", fx.dumps[FMT], "-s", fx.vmlinux]
    pids = [str(p) for p in L.manifest_pids(fx)]
    assert pids
    pflags = [a for p in pids for a in ("-p", p)]
    seen = {}
    pfns = []
    for cmd in (["tasks", "--json"],
                ["vmas", *pflags, "--json"],
                ["walk", "--all", *pflags, "--json"],
                ["walk", "--all", *pflags, "--json", "--summary"],
                ["walk", "--all", *pflags, "--json", "--include-none", "--summary"],
                ["check", "--json"],
                ["check", "--json", "--summary", "--fail-on", "low"],
                "rmap"):
        if cmd == "rmap":  # who maps a special (pfnmap) pfn and a normal one
            assert pfns
            cmd = ["rmap", "--json", "%#x-%#x" % (min(pfns), min(pfns) + 1)]
        rc, recs = records(*base, *cmd)
        for rec in recs:
            validate(v, rec)
            seen[rec["type"]] = seen.get(rec["type"], 0) + 1
            if rec["type"] == "entry" and rec["special"] and rec["pfn"] is not None:
                pfns.append(rec["pfn"])
        if cmd[0] == "rmap":
            assert any(r["type"] == "entry" and r["pfn"] == min(pfns) for r in recs), recs[:3]
        if cmd[0] == "check" and "--summary" in cmd:
            assert recs[-1]["type"] == "summary"
            n = sum(1 for r in recs if r["type"] == "finding")
            assert sum(recs[-1]["counts"].values()) == n
    for kind in ("target", "task", "vma", "entry", "run", "summary"):
        assert seen.get(kind), (kind, seen)
    if key[2] == "buggy":
        assert seen.get("finding"), seen


def test_schema_rejects_unknown_fields_and_kinds():
    """The schema is strict: the test above can fail."""
    v = validator()
    good = {"type": "changed", "pid": 1, "vma_start": "0x1000", "addr": "0x2000",
            "raw_before": "0x0", "raw_after": "0x8000000001234067"}
    v.validate(good)
    for bad in (dict(good, extra=1), dict(good, type="novel"), dict(good, addr=4096),
                dict(good, addr="0x00AB"), {k: x for k, x in good.items() if k != "addr"}):
        assert not v.is_valid(bad), bad


def test_second_wave_records():
    """The records that appear only on some targets: the target header, the
    truncation warning, the live target's changed/error records."""
    v = validator()
    facts = {"swap_types": "kernel", "vnp_profile": "version"}
    for rec in ({"type": "target", "arch": "x86_64", "release": "6.1.0-57-amd64",
                 "build_id": "0123abcd", "layout_source": "btf", "facts": facts},
                {"type": "target", "arch": "aarch64", "release": "6.12.117+deb13-arm64",
                 "build_id": None, "layout_source": "debuginfo", "facts": {}},
                {"type": "warning", "what": "truncated", "missing_bytes": 4096},
                {"type": "warning", "what": "truncated", "missing_bytes": 4096, "missing_pages": 1,
                 "incomplete": False},
                {"type": "warning", "what": "corrupt", "bad_descriptors": 2, "bad_bitmap_blocks": 0,
                 "lost_pages": 2},
                {"type": "warning", "what": "corrupt", "bad_descriptors": 0, "bad_bitmap_blocks": 1,
                 "lost_pages": 4096, "unlocatable_from_pfn": 32768},
                {"type": "error", "pid": 7, "comm": "a", "vma_start": "0x7f00", "message": "x"},
                {"type": "error", "pid": 7, "comm": "a", "message": "x"}):
        validate(v, rec)
    assert not v.is_valid({"type": "target", "arch": "x86_64", "release": "6.1", "build_id": None,
                           "layout_source": "guess", "facts": {}})
    assert not v.is_valid({"type": "target", "arch": "x86_64", "release": "6.1", "build_id": None,
                           "layout_source": "btf", "facts": {"swap_types": "guess"}})
    assert not v.is_valid({"type": "warning", "what": "truncated"})
    assert not v.is_valid({"type": "warning", "what": "corrupt", "missing_bytes": 1})


def test_vocabulary_is_the_cores():
    """Enums of the schema = the names the C core writes; the diagnosis
    reference documents every code with the core's severity."""
    from pfnscope import target
    c = target.core()
    d = schema()["$defs"]
    assert set(d["code"]["enum"]) == {code for code, _ in c.DIAG_CODES}
    assert set(d["severity"]["enum"]) == set(c.SEVERITIES)
    assert set(d["kind"]["enum"]) == set(c.KINDS)
    assert set(d["verdict"]["enum"]) == set(c.VERDICTS)
    assert set(d["vnp_reason"]["enum"]) == set(c.VNP_REASONS)
    assert set(d["vm_flag_name"]["enum"]) == {n for _, n in c.VM_FLAG_NAMES}
    assert set(d["consumers"]["required"]) == set(c.CONSUMERS)
    with open(DIAG_DOC) as f:
        doc = f.read()
    table = dict(re.findall(r"^\| \[`([A-Z_]+)`\]\(#[a-z_]+\) \| ([a-z]+) \|", doc, re.M))
    assert table == dict(c.DIAG_CODES), table
    for code, sev in c.DIAG_CODES:
        m = re.search(r"^## %s\n\n\*\*Severity: ([a-z]+)" % code, doc, re.M)
        assert m and m.group(1) == sev, code
    with open(os.path.join(L.ROOT, "docs", "pfnscope.1")) as f:
        man = dict(re.findall(r'^\.BR ([A-Z_]+) " \(([a-z]+)\)"$', f.read(), re.M))
    assert man == dict(c.DIAG_CODES), man


def test_live_walk_records_validate(capfd):
    """The changed and error records of a live walk (--qemu-ram), made by the
    CLI's own code on a target whose entries change between reads."""
    import sys
    from pfnscope import cli, target
    from pfnscope.api import Task

    class E:
        def __init__(self, addr, raw):
            self.addr, self.raw = addr, raw

    class Target:
        def __init__(self, passes, fail):
            self.passes, self.fail = list(passes), fail

        def flush_cache(self):
            pass

        def walk(self, mm, vt, start, end, flags):
            return [E(a, r) for a, r in self.passes.pop(0)]

        def walk_write(self, fd, mm, vt, pid, mode, flags):
            if self.fail:
                raise target.core().Error("table changed")
            return (0, 0, {})

    class Sess:
        live = True

        def __init__(self, t):
            self.target = t

    t = Task(0xffff0000, 42, 42, 0xffff1000, "churn")
    vt = (0xffff2000, 0x1000, 0x5000, 0x73, 0, 0, 0)
    cli._walk_live(Sess(Target([[(0x1000, 0x1025)], [(0x1000, 0x9025)]], False)), t, vt,
                   sys.stdout.fileno(), "json", 0, True)
    cli._walk_live(Sess(Target([[], []], True)), t, vt, sys.stdout.fileno(), "json", 0, True)
    sys.stdout.flush()
    recs = [json.loads(l) for l in capfd.readouterr().out.splitlines()]
    assert {r["type"] for r in recs} == {"changed", "error"}, recs
    v = validator()
    for rec in recs:
        validate(v, rec)


def test_live_confirmation_records_validate():
    """The records of a finding withdrawn on a live target (the core writes
    them) and the live summary's count."""
    import pfnscope._core as c
    v = validator()
    for what in ("entry", "table", "page", "vma"):
        rec = json.loads(c.changed_json(7, 0x7f0000000000, 0x7f0000001000, 0x8000000012345225, 0,
                                        level=1, what=what, codes=["BAD_SPECIAL", "MAPS_FREED_PAGE"]))
        assert rec["what"] == what and rec["level"] == "pmd"
        validate(v, rec)
    validate(v, json.loads(c.changed_json(7, 0x1000, 0x2000, 1, 2)))
    validate(v, {"type": "summary", "counts": {}, "errors": 0, "changed": 3})
    assert not v.is_valid({"type": "changed", "pid": 7, "vma_start": "0x1", "addr": "0x1",
                           "raw_before": "0x1", "raw_after": "0x2", "what": "mood"})
