"""Helpers for the CLI tests on the lab's real dumps (tests/vm).

Fixtures are built on demand by tests.vm.lab (a failed build raises: the test
fails, it never skips).  The CLI is run as a subprocess through bin/pfnscope,
exactly as a user runs it; its outputs are cached per (fixture, format,
command) for the session.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src", "python")
for p in (ROOT, SRC):
    if p not in sys.path:
        sys.path.insert(0, p)

from tests.vm import lab  # noqa: E402

BIN = os.path.join(ROOT, "bin", "pfnscope")
FORMATS = ("elf-nopaging", "elf-paging", "kdump-zlib", "kdump-real", "kdump-real-d23")
SEVERITY = {
    "BAD_SPECIAL": "critical", "PFN_BEYOND_MEMMAP": "critical", "MAPS_FREED_PAGE": "critical",
    "REFCOUNT_BELOW_MAPCOUNT": "high", "PFNMAP_AND_MIXEDMAP": "high", "SPECIAL_OVER_RAM": "medium",
    "NONSPECIAL_IN_PFNMAP": "high", "PFNMAP_NONLINEAR_COW": "medium", "PFNMAP_COW_ANON": "medium",
    "RESERVED_NORMAL": "medium", "PFNMAP_WITHOUT_IO": "low",
}
SEVERITIES = ("low", "medium", "high", "critical")
PAGE = 4096
LEVEL_SIZE = {"pte": PAGE, "pmd": 2 << 20, "pud": 1 << 30}


def fixture_keys() -> List[Tuple[str, str, str]]:
    return [tuple(k) for k in lab.default_set()]


def healthy_keys() -> List[Tuple[str, str, str]]:
    return [k for k in fixture_keys() if k[2] == "healthy"]


def buggy_keys() -> List[Tuple[str, str, str]]:
    return [k for k in fixture_keys() if k[2] == "buggy"]


def busy_keys() -> List[Tuple[str, str, str]]:
    """The busy fixtures (tests/vm/busy) of the check set."""
    return [tuple(k) for k in lab.busy_set()]


def key_id(k) -> str:
    return "-".join(k)


@functools.lru_cache(maxsize=None)
def fixture(kernel: str, cpu: str, scenario: str):
    return lab.fixture(kernel=kernel, cpu=cpu, scenario=scenario)


class Result:
    def __init__(self, cp: subprocess.CompletedProcess) -> None:
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr
        self.args = cp.args

    def records(self) -> List[dict]:
        """Every --json record, the leading target record included."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def json(self) -> List[dict]:
        """The --json records after the target record (which --json output
        starts with, and only there)."""
        recs = self.records()
        if recs and recs[0].get("type") == "target":
            recs = recs[1:]
        assert all(o.get("type") != "target" for o in recs), self
        return recs

    def target(self) -> dict:
        recs = self.records()
        assert recs and recs[0].get("type") == "target", self
        return recs[0]

    def __repr__(self) -> str:
        return f"<rc={self.rc} args={self.args} err={self.err[-2000:]!r}>"


def run(*args: str, timeout: int = 900, layout_cache: bool = True) -> Result:
    """The CLI; layout_cache=False: types from the debug vmlinux even where
    the layout cache has the kernel (the reference for front ends that read
    the vmlinux themselves: their target records then match to the byte)."""
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    env.pop("PFNSCOPE_DEBUG", None)
    if not layout_cache:
        env["PFNSCOPE_LAYOUT_CACHE"] = "0"
    cp = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return Result(cp)


def assert_clean_error(r: Result, *needles: str) -> None:
    """Exit 2 with exactly one 'pfnscope: ...' line on stderr, no traceback."""
    assert r.rc == 2, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pfnscope: "), r
    assert "Traceback" not in r.err, r
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, r)


def manifest_pids(fx) -> List[int]:
    return sorted({int(m["pid"]) for m in fx.manifest if m.get("pid") and "start" in m})


class WalkFailed(AssertionError):
    def __init__(self, r: "Result") -> None:
        super().__init__(repr(r))
        self.result = r


def walk_all_args(fx) -> List[str]:
    """`walk --all --json` over every pid of the manifest (no target options)."""
    pids = manifest_pids(fx)
    assert pids, f"fixture {fx.dir} has no manifest mappings"
    args = ["walk", "--all", "--json"]
    for p in pids:
        args += ["-p", str(p)]
    return args


@functools.lru_cache(maxsize=None)
def walk_all_run(key: Tuple[str, str, str], fmt: str) -> "Result":
    """The CLI run behind walk_all() (one per fixture and format)."""
    fx = fixture(*key)
    return run("-c", fx.dumps[fmt], "-s", fx.vmlinux, *walk_all_args(fx))


@functools.lru_cache(maxsize=None)
def walk_all(key: Tuple[str, str, str], fmt: str) -> Tuple[Dict[int, List[dict]], Dict[int, List[dict]]]:
    """(vmas by pid, entries by pid) of `walk --all --json` over every pid
    of the manifest (one CLI run per fixture and format)."""
    r = walk_all_run(key, fmt)
    if r.rc != 0:
        raise WalkFailed(r)
    vmas: Dict[int, List[dict]] = {}
    ents: Dict[int, List[dict]] = {}
    for o in r.json():
        (vmas if o["type"] == "vma" else ents).setdefault(o["pid"], []).append(o)
    return vmas, ents


# --- dumps that legitimately lack kernel data ----------------------------------
#
# makedumpfile 1.7.2 (Debian 12) filters 6.12 and 7.x kernels with its newest
# known layout and says so ("The kernel version is not supported" in the
# fixture's makedumpfile.log).  Those kernels have no PG_slab (slab is a
# page_type since 6.10), so with -d 31 (dump level bit 8, "user data") it
# drops slab pages whose page->mapping slot (struct slab's list/counters)
# has bit 0 set, i.e. that look like anon pages: some task_structs and
# mm_structs are not in the kdump-real file.  The -d 23 companion keeps
# them (bit 8 unset).  pfnscope must then fail cleanly, naming the
# unreadable kernel address -- it cannot walk a task it cannot find.

def makedumpfile_unsupported(fx) -> bool:
    log = os.path.join(fx.dir, "makedumpfile.log")
    return os.path.exists(log) and "kernel version is not supported" in open(log, errors="replace").read()


_UNREADABLE = re.compile(r"^pfnscope: (?:pid \d+: )?(task_struct|mm_struct|kernel memory|maple_node|"
                         r"vm_area_struct|init_task\.tasks|task_struct\.tasks\.next)[^:]* at "
                         r"(0x[0-9a-f]+): memory not readable")


def assert_filtered_kernel_data(key, fmt: str, r: "Result") -> None:
    """r failed (exit 2) on a dump that legitimately lacks kernel data:
    only kdump-real of a kernel makedumpfile does not support; a one-line
    error naming a kernel address that is really absent from this dump
    and present in the -d 23 companion of the same capture."""
    fx = fixture(*key)
    assert fmt == "kdump-real" and makedumpfile_unsupported(fx), r
    assert_clean_error(r)
    m = _UNREADABLE.match(r.err.strip())
    assert m, r
    addr = int(m.group(2), 16)
    assert not _kvirt_readable(key, "kdump-real", addr), (hex(addr), r)
    assert _kvirt_readable(key, "kdump-real-d23", addr), (hex(addr), r)


@functools.lru_cache(maxsize=None)
def _program(key, fmt):
    import pfnscope
    fx = fixture(*key)
    return pfnscope.open(fx.dumps[fmt], fx.vmlinux)


def _kvirt_readable(key, fmt: str, addr: int) -> bool:
    import drgn
    try:
        _program(key, fmt).read(addr & ~7, 8)
        return True
    except drgn.FaultError:
        return False


@functools.lru_cache(maxsize=None)
def walk_result(key: Tuple[str, str, str], fmt: str):
    """walk_all, or None after asserting that this dump legitimately lacks
    the kernel data (assert_filtered_kernel_data)."""
    try:
        return walk_all(key, fmt)
    except WalkFailed as e:
        assert_filtered_kernel_data(key, fmt, e.result)
        return None


def kernel_version(fx) -> Tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", fx.release)
    return int(m.group(1)), int(m.group(2))


def expected_severity(fx, code: str, pid: int, addr: int) -> str:
    """The code's severity (src/core/names.c): one per code, on every kernel
    and in every VMA.  SPECIAL_OVER_RAM (case C) is medium: healthy drivers
    do it (drm_gem_shmem_fault() -> vmf_insert_pfn()), and the hazard, a
    refcount-0 page under a special pte, is REFCOUNT_BELOW_MAPCOUNT (high)."""
    return SEVERITY[code]


@functools.lru_cache(maxsize=None)
def check_json(key: Tuple[str, str, str], fmt: str) -> Result:
    fx = fixture(*key)
    return run("-c", fx.dumps[fmt], "-s", fx.vmlinux, "check", "--json", "--fail-on", "high")


def entry_size(e: dict) -> int:
    return LEVEL_SIZE[e["level"]]


def entry_at(entries: List[dict], addr: int) -> Optional[dict]:
    for e in entries:
        a = int(e["addr"], 16)
        if a <= addr < a + entry_size(e):
            return e
    return None


def entries_in(entries: List[dict], start: int, end: int) -> List[dict]:
    return [e for e in entries if start <= int(e["addr"], 16) < end]


def parse_maps(text: str) -> List[dict]:
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        s, e = (int(x, 16) for x in parts[0].split("-"))
        out.append({"start": s, "end": e, "perms": parts[1], "pgoff": int(parts[2], 16),
                    "path": parts[5].strip() if len(parts) > 5 else ""})
    return out


def num(v) -> int:
    """An int from a JSON number or a "0x.." string."""
    return v if isinstance(v, int) else int(v, 0)


@functools.lru_cache(maxsize=None)
def _other_tasks_entries(key: Tuple[str, str, str], fmt: str) -> List[dict]:
    """Entries of every task with an mm that walk_all did not cover (the
    processes outside the manifest: init, the shell, ...)."""
    fx = fixture(*key)
    base = ["-c", fx.dumps[fmt], "-s", fx.vmlinux]
    r = run(*base, "tasks", "--json")
    assert r.rc == 0, r
    pids = sorted({t["pid"] for t in r.json() if t["mm"] != "0x0"} - set(manifest_pids(fx)))
    if not pids:
        return []
    args = [*base, "walk", "--all", "--json"]
    for p in pids:
        args += ["-p", str(p)]
    r = run(*args)
    assert r.rc == 0, r
    return [o for o in r.json() if o["type"] == "entry"]


def pte_mappings(key: Tuple[str, str, str], fmt: str, pfn: int) -> int:
    """How many PTEs of all the dump's address spaces map pfn."""
    _, ents = walk_all(key, fmt)
    every = [e for es in ents.values() for e in es] + _other_tasks_entries(key, fmt)
    return sum(1 for e in every if e["level"] == "pte" and e["kind"] in ("present", "protnone")
               and e["pfn"] == pfn)


def page_unmapped_in_dump(key: Tuple[str, str, str], fmt: str, pfn: int) -> bool:
    """The dump's own struct page of pfn has _mapcount -1: no PTE maps it
    at the moment of this dump.  A clean page-cache page can be unmapped by
    reclaim (mm/vmscan.c shrink_folio_list -> try_to_unmap) after the
    guest's truth snapshot and before the kdump capture (kexec -p reads the
    capture kernel and initrd between the two)."""
    import drgn
    prog = _program(key, fmt)
    t = prog.type("struct page")
    addr = prog["vmemmap_base"].value_() + pfn * drgn.sizeof(t)
    raw = prog.read(addr + drgn.offsetof(t, "_mapcount"), 4)
    return int.from_bytes(raw, "little", signed=True) == -1


def assert_filtered_message(key, fmt: str, message: str) -> None:
    """A per-task error of check on a dump that legitimately lacks kernel
    data (see assert_filtered_kernel_data): the address it names is absent
    from this dump and present in the -d 23 companion."""
    fx = fixture(*key)
    assert fmt == "kdump-real" and makedumpfile_unsupported(fx), message
    assert "memory not readable" in message, message
    addr = int(re.findall(r"0x[0-9a-f]+", message)[-1], 16)
    assert not _kvirt_readable(key, "kdump-real", addr), message
    assert _kvirt_readable(key, "kdump-real-d23", addr), message
