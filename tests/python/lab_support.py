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
    "REFCOUNT_BELOW_MAPCOUNT": "high", "PFNMAP_AND_MIXEDMAP": "high", "SPECIAL_OVER_RAM": "high",
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

    def json(self) -> List[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"<rc={self.rc} args={self.args} err={self.err[-2000:]!r}>"


def run(*args: str, timeout: int = 900) -> Result:
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    env.pop("PFNSCOPE_DEBUG", None)
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


@functools.lru_cache(maxsize=None)
def walk_all(key: Tuple[str, str, str], fmt: str) -> Tuple[Dict[int, List[dict]], Dict[int, List[dict]]]:
    """(vmas by pid, entries by pid) of `walk --all --json` over every pid
    of the manifest (one CLI run per fixture and format)."""
    fx = fixture(*key)
    pids = manifest_pids(fx)
    assert pids, f"fixture {fx.dir} has no manifest mappings"
    args = ["-c", fx.dumps[fmt], "-s", fx.vmlinux, "walk", "--all", "--json"]
    for p in pids:
        args += ["-p", str(p)]
    r = run(*args)
    assert r.rc == 0, r
    vmas: Dict[int, List[dict]] = {}
    ents: Dict[int, List[dict]] = {}
    for o in r.json():
        (vmas if o["type"] == "vma" else ents).setdefault(o["pid"], []).append(o)
    return vmas, ents


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
