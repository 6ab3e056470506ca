"""The BTF + kallsyms layout source against the debug vmlinux, on every lab
fixture and dump format: `walk --all --json` (every manifest pid) and
`check --json` give the same records, line for line, exit status and stderr
included; only the leading target record's layout_source differs.

The BTF run is what a user without debug info gets: no -s and an empty
$PFNSCOPE_CACHE, so no vmlinux is found and pfnscope falls back to the
dump's own .BTF section and kallsyms tables by itself.  Kernels whose
VMCOREINFO names no kallsyms tables (5.10: added in 6.0) must fail with one
line that says so and what to pass instead.  The layout dicts themselves are
compared too (every key), and the BTF reader against drgn's DWARF on the
types pfnscope reads.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

import lab_support as L

KEYS = L.fixture_keys()
EMPTY_CACHE = tempfile.mkdtemp(prefix="pfnscope-no-vmlinux-")


def run_btf(*args: str) -> L.Result:
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1", PFNSCOPE_CACHE=EMPTY_CACHE)
    env.pop("PFNSCOPE_DEBUG", None)
    env.pop("PFNSCOPE_BTF", None)
    return L.Result(subprocess.run([L.BIN, *args], capture_output=True, text=True,
                                   timeout=900, env=env))


def has_kallsyms_in_vmcoreinfo(fx) -> bool:
    return L.kernel_version(fx) >= (6, 0)


CHECK_ARGS = ["check", "--json", "--fail-on", "high"]   # as L.check_json's


def _compare(key, fmt, args, dbg):
    """dbg: the debug-vmlinux run of args (shared with the other lab tests)."""
    fx = L.fixture(*key)
    btf = run_btf("-c", fx.dumps[fmt], *args)
    if not has_kallsyms_in_vmcoreinfo(fx):
        L.assert_clean_error(btf, "names no kallsyms tables in VMCOREINFO", "-s")
        return
    assert dbg.rc == btf.rc, (dbg, btf)
    assert dbg.err == btf.err, (dbg, btf)
    if "--json" in args and (dbg.out or btf.out):
        t1, t2 = dbg.target(), btf.target()
        # (the debug vmlinux's layout, or its layout cache from an earlier run)
        assert t1["layout_source"] in ("debuginfo", "cache") and t2["layout_source"] == "btf", (t1, t2)
        assert {**t1, "layout_source": None} == {**t2, "layout_source": None}
        assert t1["release"] == fx.release and t1["arch"] == "x86_64"
        assert t1["build_id"] and len(t1["build_id"]) == 40, t1
    a, b = dbg.out.splitlines()[1:], btf.out.splitlines()[1:]
    assert len(a) == len(b), (len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"record {i + 1} differs:\n debuginfo {x}\n btf       {y}"
    return dbg.rc, a


@pytest.mark.parametrize("fmt", L.FORMATS)
@pytest.mark.parametrize("key", KEYS, ids=L.key_id)
def test_walk_all_json_btf_equals_debuginfo(key, fmt):
    fx = L.fixture(*key)
    res = _compare(key, fmt, L.walk_all_args(fx), L.walk_all_run(key, fmt))
    if res is None:
        return
    rc, recs = res
    if rc != 0:
        # both failed alike: only where makedumpfile dropped kernel data
        # (see lab_support.makedumpfile_unsupported)
        assert fmt == "kdump-real" and L.makedumpfile_unsupported(fx), rc
    else:
        assert len(recs) > 100, len(recs)


@pytest.mark.parametrize("fmt", L.FORMATS)
@pytest.mark.parametrize("key", KEYS, ids=L.key_id)
def test_check_json_btf_equals_debuginfo(key, fmt):
    _compare(key, fmt, CHECK_ARGS, L.check_json(key, fmt))


@pytest.mark.parametrize("key", KEYS, ids=L.key_id)
def test_layout_dict_btf_equals_debuginfo(key):
    """Every pfs_layout member, and the VMA-name offsets, from both sources."""
    from pfnscope import target
    fx = L.fixture(*key)
    if not has_kallsyms_in_vmcoreinfo(fx):
        with pytest.raises(target.PfnscopeError, match="names no kallsyms tables in VMCOREINFO"):
            target.open_dump(fx.dumps["elf-paging"], btf=True)
        return
    a = target.open_dump(fx.dumps["elf-paging"], fx.vmlinux)
    b = target.open_dump(fx.dumps["elf-paging"], btf=True)
    assert a.layout_source.kind in ("debuginfo", "cache") and b.layout_source.kind == "btf"
    diff = {k: (a.layout_dict.get(k), b.layout_dict.get(k))
            for k in set(a.layout_dict) | set(b.layout_dict)
            if a.layout_dict.get(k) != b.layout_dict.get(k)}
    # swap types: MAX_SWAPFILES from the type of swap_info[] (debug info),
    # CONFIG_DEVICE_PRIVATE from kallsyms (BTF); the same numbers in C
    assert set(diff) <= {"max_swapfiles", "config_device_private"}, diff
    assert a.layout.as_dict() == b.layout.as_dict()
    assert "max_swapfiles" in a.layout_dict and "config_device_private" in b.layout_dict
    # every fact read from the kernel by both (the follow_pte / vm_normal_page
    # generations from BTF's functions as from DWARF's)
    assert a.facts == b.facts and a.facts["swap_types"] == "kernel"
    assert a.names.name_offsets() == b.names.name_offsets()
    # the offsets the raw d_path reads, from both sources
    keys = ("struct file:f_path", "struct dentry:d_op", "struct dentry:d_inode",
            "struct super_block:s_type", "struct mount:mnt_mountpoint",
            "struct dentry:d_hash", "struct hlist_bl_node:pprev")
    assert a.names.offsets(*keys) == b.names.offsets(*keys)
    assert min(b.names.offsets(*keys).values()) >= 0


def test_btf_and_vmlinux_exclude_each_other():
    fx = L.fixture(*KEYS[0])
    L.assert_clean_error(L.run("-c", fx.dumps["kdump-real"], "-s", fx.vmlinux, "--btf", "tasks"),
                         "--btf")


def test_text_output_unchanged_by_btf():
    """Text output has no header: the same bytes from both sources."""
    key = next(k for k in KEYS if has_kallsyms_in_vmcoreinfo(L.fixture(*k)))
    fx = L.fixture(*key)
    dbg = L.run("-c", fx.dumps["kdump-real-d23"], "-s", fx.vmlinux, "tasks")
    btf = run_btf("-c", fx.dumps["kdump-real-d23"], "tasks")
    assert dbg.rc == btf.rc == 0 and dbg.out == btf.out and dbg.out, (dbg, btf)
