"""The layout cache (pfnscope.layoutcache) against the debug info, on every
lab kernel: the layout read back from the cache equals the one built from
DWARF field by field (and in the order of its enumerator-derived tables), on
the same dump and on another boot of the same kernel build (another KASLR
offset); a stale, corrupt or foreign cache file is ignored and rewritten,
never used; a question the file lacks is answered by the debug info."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lab_support import ROOT, busy_keys, healthy_keys, key_id, lab

from pfnscope import layoutcache
from pfnscope import vmlinux as vmlinux_mod

DUMP = "kdump-real"


# Each session runs in its own process: a Program with the debug info is
# ~240 MB, and the sessions of one process are only freed by the collector.
_PROBE = r"""
import json, sys
from pfnscope import source, target
dump, vmlinux, names = sys.argv[1], sys.argv[2] or None, sys.argv[3] == "1"
if sys.argv[4] == "1":   # as a vmlinux without .BTF
    source.vmlinux_btf_source = lambda *a, **k: None
s = target.open_dump(dump, vmlinux, layout_cache=True)
out = {"kind": s.layout_source.kind, "order": list(s.layout_dict),
       "fields": {k: repr(v) for k, v in s.layout_dict.items()},
       "c": {k: repr(v) for k, v in s.layout.as_dict().items()},
       "facts": s.facts, "build_id": s.vmci.build_id, "release": s.vmci.osrelease}
if names:
    n = 0
    for t in s.tasks():
        if not t[3]:
            continue
        try:
            vmas = s.vmas(t[3])
        except target.core().Error:   # an mm a -d 31 dump filtered
            continue
        for v in vmas:
            s.vma_name(t[3], v, s.file_name(v[5]))
            n += 1
    out["named"] = n
out["used_debuginfo"] = bool(getattr(s.layout_source, "used_debuginfo", True))
out["used_dwarf"] = bool(getattr(s.layout_source, "used_dwarf", True))
print(json.dumps(out))
"""


def _open(fx, cache_dir, enabled=True, dump=DUMP, vmlinux=True, names=False, no_btf=False):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"),
               PFNSCOPE_CACHE=str(cache_dir), PFNSCOPE_LAYOUT_CACHE="1" if enabled else "0")
    p = subprocess.run([sys.executable, "-c", _PROBE, fx.dumps[dump],
                        fx.vmlinux if vmlinux else "", "1" if names else "0",
                        "1" if no_btf else "0"],
                       capture_output=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return json.loads(p.stdout)


_REF = {}


def _ref(fx, tmp_path, dump=DUMP):
    """The layout from the DWARF alone (cache off)."""
    k = fx.dumps[dump]
    if k not in _REF:
        _REF[k] = _open(fx, tmp_path, enabled=False, dump=dump)
        assert _REF[k]["kind"] == "debuginfo" and _REF[k]["used_dwarf"]
    return _REF[k]


def _same_layout(a, b, what):
    """b's layout is a's, field by field and in order.  The vmlinux's .BTF
    and symbol table answer what its DWARF does, MAX_SWAPFILES included
    (swap_info's st_size against the length of its array type)."""
    assert a["order"] == b["order"], what
    for k in a["order"]:
        # repr: dict fields compare in order too (pageflag_names: the
        # kernel's first name of a bit wins)
        assert a["fields"][k] == b["fields"][k], f"{what}: field {k}"
    assert a["c"] == b["c"], what
    assert a["facts"] == b["facts"], what


def _cache_file(cache_dir, sess):
    return os.path.join(str(cache_dir), "layouts", sess["build_id"].lower() + ".json")


@pytest.mark.parametrize("key", healthy_keys(), ids=key_id)
def test_cached_layout_equals_dwarf(key, tmp_path):
    fx = lab.fixture(*key)
    ref = _ref(fx, tmp_path)
    assert not os.path.exists(_cache_file(tmp_path, ref))
    cold = _open(fx, tmp_path)
    # the first run reads the vmlinux's .BTF and symbol table, not its
    # DWARF (MAX_SWAPFILES from swap_info's st_size: source.VmlinuxBtfTypes)
    assert cold["kind"] == "debuginfo" and cold["used_debuginfo"]
    assert not cold["used_dwarf"]
    assert os.path.isfile(_cache_file(tmp_path, cold))
    # the session's later questions (file and VMA names) are in the file
    hot = _open(fx, tmp_path, names=True)
    assert hot["kind"] == "cache"
    _same_layout(ref, cold, "first run (recording)")
    _same_layout(ref, hot, "cached run")
    assert hot["named"] > 50
    assert not hot["used_debuginfo"], "a cached session loaded the debug info"


@pytest.mark.parametrize("key", healthy_keys(), ids=key_id)
def test_vmlinux_without_btf_records_dwarf(key, tmp_path):
    """A vmlinux without .BTF: the first run's answers are the DWARF's, and
    so is the cache file's layout, member for member."""
    fx = lab.fixture(*key)
    ref = _ref(fx, tmp_path)
    cold = _open(fx, tmp_path, no_btf=True)
    assert cold["kind"] == "debuginfo" and cold["used_dwarf"]
    hot = _open(fx, tmp_path, names=True)
    assert hot["kind"] == "cache" and not hot["used_debuginfo"]
    _same_layout(ref, cold, "first run from DWARF")
    _same_layout(ref, hot, "cached run of DWARF answers")


@pytest.mark.parametrize("key", [k for k in busy_keys() if k[1] == "max"], ids=key_id)
def test_cache_serves_another_boot(key, tmp_path):
    """The busy fixture is another boot of the healthy fixture's kernel
    (another KASLR offset): a cache made on one serves the other."""
    busy = lab.fixture(*key)
    healthy = lab.fixture(key[0], key[1], "healthy")
    made = _open(healthy, tmp_path)
    ref = _ref(busy, tmp_path)
    assert made["build_id"] == ref["build_id"]
    hot = _open(busy, tmp_path)
    assert hot["kind"] == "cache" and not hot["used_debuginfo"]
    _same_layout(ref, hot, f"cache of {healthy.dir} on {busy.dir}")


def _fixture61():
    return lab.fixture("6.1", "max", "healthy")


def _rewrite(path, change):
    with open(path) as f:
        doc = json.load(f)
    change(doc)
    with open(path, "w") as f:
        json.dump(doc, f)


def _reseal(doc):
    doc["checksum"] = layoutcache._checksum({"types": doc["types"], "symbols": doc["symbols"]})


class _Replace(Exception):
    def __init__(self, data):
        self.data = data


def _set(key, value, reseal=False):
    def change(doc):
        doc[key] = value
        if reseal:
            _reseal(doc)
    return change


def _edit_offset(doc):
    """An edit the checksum catches."""
    k = layoutcache._key("offsetof", ("struct page", "_refcount"))
    doc["types"][k] += 8


def _raw(data):
    def change(doc):
        raise _Replace(data)
    return change


STALE = {
    "other_version": _set("code", "0" * 64),
    "other_format": _set("format", 0),
    "other_build": _set("build_id", "f" * 40),
    "other_release": _set("release", "6.1.0-1-amd64"),
    "edited_value": _edit_offset,
    "types_not_a_map": _set("types", [1, 2]),
    "truncated": _raw(b'{"format": 1, "types": {'),
    "empty": _raw(b""),
    "binary": _raw(bytes(range(256))),
}


@pytest.mark.parametrize("case", sorted(STALE))
def test_stale_or_corrupt_cache_is_ignored(case, tmp_path):
    fx = _fixture61()
    ref = _ref(fx, tmp_path)
    cold = _open(fx, tmp_path)
    path = _cache_file(tmp_path, cold)
    good = open(path, "rb").read()
    try:
        _rewrite(path, STALE[case])
    except _Replace as r:
        with open(path, "wb") as f:
            f.write(r.data)
    assert open(path, "rb").read() != good
    again = _open(fx, tmp_path)
    assert again["kind"] == "debuginfo", "a bad cache file was used"
    _same_layout(ref, again, case)
    # and written again, whole
    hot = _open(fx, tmp_path)
    assert hot["kind"] == "cache" and not hot["used_debuginfo"]
    _same_layout(ref, hot, case + ", rewritten")


def test_missing_answer_comes_from_debuginfo(tmp_path):
    """A file that lacks an answer (a code path it never saw) is completed
    from the debug vmlinux, not guessed."""
    fx = _fixture61()
    ref = _ref(fx, tmp_path)
    cold = _open(fx, tmp_path)
    path = _cache_file(tmp_path, cold)
    k = layoutcache._key("offsetof", ("struct page", "_refcount"))

    def drop(d):
        del d["types"][k]
        _reseal(d)
    _rewrite(path, drop)
    hot = _open(fx, tmp_path)
    assert hot["kind"] == "cache" and hot["used_debuginfo"]
    _same_layout(ref, hot, "completed from the debug info")
    with open(path) as f:
        assert k in json.load(f)["types"], "the completed answer was not saved"
    again = _open(fx, tmp_path)
    assert again["kind"] == "cache" and not again["used_debuginfo"]


def test_cache_without_vmlinux(tmp_path):
    """With the cache made, the vmlinux is not needed any more: a release
    whose debug vmlinux is not found (PFNSCOPE_CACHE has no kernels/ here)
    opens from the cache."""
    fx = _fixture61()
    if any(os.path.isfile(c) for c in vmlinux_mod.candidates(fx.release)[:4]):
        pytest.fail("a system debug vmlinux for the lab kernel: the test cannot hide it")
    ref = _ref(fx, tmp_path)
    _open(fx, tmp_path)
    hot = _open(fx, tmp_path, vmlinux=False)
    assert hot["kind"] == "cache" and not hot["used_debuginfo"]
    _same_layout(ref, hot, "no vmlinux")


def _cli(args, env):
    p = subprocess.run([sys.executable, "-m", "pfnscope", *args], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"), **env))
    return p.returncode, p.stdout.decode().splitlines()


@pytest.mark.parametrize("cmd", [["tasks"], ["check"], ["vmas", "-p", "1"]])
def test_cli_output_is_the_same(cmd, tmp_path):
    """The CLI prints the same with and without the cache; only the target
    record's layout_source says where the layout came from."""
    fx = _fixture61()
    base = ["-c", fx.dumps[DUMP], "-s", fx.vmlinux, "--json", *cmd]
    env = {"PFNSCOPE_CACHE": str(tmp_path)}
    rc0, off = _cli(base, dict(env, PFNSCOPE_LAYOUT_CACHE="0"))
    rc1, cold = _cli(base, env)
    rc2, hot = _cli(base, env)
    assert rc0 == rc1 == rc2
    t0, t2 = json.loads(off[0]), json.loads(hot[0])
    assert t0["layout_source"] == "debuginfo" and t2["layout_source"] == "cache"
    t2["layout_source"] = "debuginfo"
    assert t0 == t2
    assert off == cold
    assert off[1:] == hot[1:]
    assert len(off) > (1 if cmd != ["check"] else 0)


_NO_DRGN_PROBE = r"""
import contextlib, io, json, sys
from pfnscope import cli, program, target
dump, vmlinux = sys.argv[1], sys.argv[2]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = cli.main(["-c", dump, "-s", vmlinux, "check", "--json"])
res = {"rc": rc, "first": out.getvalue().splitlines()[0], "drgn_after_cli": "drgn" in sys.modules}
s = target.open_dump(dump, vmlinux, layout_cache=True)
res["drgn_after_open"] = "drgn" in sys.modules
prog = s.prog                      # made now: drgn imported, memory through the session
addr = s.layout_source.symbols.address("init_task")
res["drgn_after_prog"] = "drgn" in sys.modules
res["same_bytes"] = prog.read(addr, 64) == s.target.read_kvirt(addr, 64)
res["session_for"] = program.session_for(prog) is s and s.prog is prog
print(json.dumps(res))
"""


def test_cli_on_cached_layout_imports_no_drgn(tmp_path):
    """With the layout cached, a CLI run on a dump never imports drgn (its
    import and Program are start-up cost); the session's Program is made
    when asked for, reads the same kernel memory and finds the session."""
    fx = _fixture61()
    _open(fx, tmp_path)                 # the cache file
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"),
               PFNSCOPE_CACHE=str(tmp_path), PFNSCOPE_NO_PROGRESS="1")
    p = subprocess.run([sys.executable, "-c", _NO_DRGN_PROBE, fx.dumps[DUMP], fx.vmlinux],
                       capture_output=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    res = json.loads(p.stdout.splitlines()[-1])
    assert res["rc"] in (0, 1) and json.loads(res["first"])["layout_source"] == "cache", res
    assert not res["drgn_after_cli"] and not res["drgn_after_open"], res
    assert res["drgn_after_prog"] and res["same_bytes"] and res["session_for"], res


def _imported(stderr: str) -> set:
    """The modules a run imported, from its PYTHONPROFILEIMPORTTIME lines."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line} - {"imported package"}


def test_launcher_start_up_modules(tmp_path):
    """bin/pfnscope runs with python3 -S and imports neither typing, site,
    runpy, threading nor drgn for a command on a cached layout (each was a
    measurable part of a `tasks` start-up), and prints what `python3 -m
    pfnscope` prints; a run that needs drgn (the layout from the DWARF)
    finds it through the site directories added on demand."""
    fx = _fixture61()
    _open(fx, tmp_path)                 # the cache file
    env = dict(os.environ, PFNSCOPE_CACHE=str(tmp_path), PFNSCOPE_NO_PROGRESS="1")
    env.pop("PYTHONPATH", None)
    launcher = os.path.join(ROOT, "bin", "pfnscope")
    args = ["-c", fx.dumps[DUMP], "-s", fx.vmlinux, "tasks"]
    p = subprocess.run([launcher] + args, capture_output=True, text=True, timeout=600,
                       env=dict(env, PYTHONPROFILEIMPORTTIME="1"))
    assert p.returncode == 0, p.stderr[-2000:]
    mods = _imported(p.stderr)
    assert "pfnscope.cli" in mods and "pfnscope._core" in mods, sorted(mods)
    assert not mods & {"typing", "site", "runpy", "threading", "drgn"}, sorted(mods)
    m = subprocess.run([sys.executable, "-m", "pfnscope"] + args, capture_output=True, text=True,
                       timeout=600, env=dict(env, PYTHONPATH=os.path.join(ROOT, "src", "python")))
    assert m.returncode == 0 and m.stdout == p.stdout and p.stdout.count("\n") > 10, m.stderr
    d = subprocess.run([launcher, "--json"] + args, capture_output=True, text=True, timeout=600,
                       env=dict(env, PYTHONPROFILEIMPORTTIME="1", PFNSCOPE_LAYOUT_CACHE="0"))
    assert d.returncode == 0, d.stderr[-2000:]
    assert {"site", "drgn"} <= _imported(d.stderr), d.stderr[-2000:]
    assert json.loads(d.stdout.splitlines()[0])["layout_source"] == "debuginfo", d.stdout[:300]
