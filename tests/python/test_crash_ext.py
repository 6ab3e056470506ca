"""The crash extension (plugins/crash/pfnscope_crash.c, pfnscope.crash) against
the CLI, on the lab's dumps, in two crash generations:

* Debian 12's crash 8.0.2 (this machine's /usr/bin/crash; built against its
  /usr/include/crash/defs.h and Python 3.11).  It cannot find the user tasks
  of a 6.1 kernel itself ("vm: invalid task or pid value"), so everything
  below runs on pfnscope's own task and maple-tree iteration;
* sid's crash 9 (the lab's sid chroot, tests/vm/chroot.sh + tests/drgn/
  provision.sh; extension and pfnscope._core built there against its Python).

crash runs non-interactively (-i CMDFILE); each `pfnscope ...` command's
output is redirected by crash to a file (crash's fp) and compared record for
record with the CLI's on the same dump (the target record's layout_source
aside: "crash" inside crash).  crash opens every lab format: the real kdump
(makedumpfile -d 31 and -d 23), QEMU's kdump-zlib and both QEMU ELF dumps.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess

import pytest

from tests.python import lab_support as L
from tests.python import test_schema as S

ROOT = L.ROOT
CHROOT_SH = os.path.join(ROOT, "tests", "vm", "chroot.sh")
PROVISION = os.path.join(ROOT, "tests", "drgn", "provision.sh")
HEALTHY = ("6.1", "max", "healthy")
BUGGY = ("6.1", "max", "buggy")
MAPPING = "devmem_private_lowram_cow"   # special ptes, a COWed anon page, a finding
VERSIONS = ("8.0.2", "9")
# every subcommand, text and --json, on the real kdump; walk and check on
# the other formats
FULL_FORMAT = "kdump-real"
FORMATS = L.FORMATS
NEWER = ("6.12", "max", "healthy")
PACKAGE_INPUTS = ("setup.py", "Makefile", "mk", "include", "src", "plugins", "scripts")
CRASH_TIMEOUT = 900


def _sh(argv, timeout=1800, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


@functools.lru_cache(maxsize=None)
def host_ext() -> str:
    cp = _sh(["make", "-C", ROOT, "crash-ext"])
    assert cp.returncode == 0, (cp.stdout[-2000:], cp.stderr[-4000:])
    path = os.path.join(ROOT, "build", "pfnscope_crash.so")
    assert os.path.isfile(path)
    return path


def _ignore(d, names):
    return [n for n in names if n.endswith((".so", ".pyc")) or n in ("__pycache__", "build")
            or n.endswith(".egg-info")]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    # under /tmp: the chroot binds it at the same path
    return str(tmp_path_factory.mktemp("crash-ext"))


_SID: dict = {}


def sid_ext(work: str) -> str:
    """The extension and pfnscope._core built in the sid chroot against its
    crash 9 defs.h and Python, from a copy of this tree."""
    if "ext" in _SID:
        return _SID["ext"]
    cp = _sh([PROVISION, "sid"])
    assert cp.returncode == 0, cp.stderr
    src = os.path.join(work, "src")
    for p in PACKAGE_INPUTS:
        s, d = os.path.join(ROOT, p), os.path.join(src, p)
        if os.path.isdir(s):
            shutil.copytree(s, d, ignore=_ignore)
        else:
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d)
    cp = _sh([CHROOT_SH, "sid", "run", "-w", work, "-C", src, "--",
              "make", "python", "crash-ext"])
    assert cp.returncode == 0, ("build in sid", cp.stdout[-3000:], cp.stderr[-4000:])
    _SID["ext"] = os.path.join(src, "build", "pfnscope_crash.so")
    return _SID["ext"]


class CrashRun:
    def __init__(self, outs, cp, cmds) -> None:
        self.outs = outs
        self.stdout = cp.stdout
        self.stderr = cp.stderr
        self.rc = cp.returncode
        self.cmds = cmds

    def __repr__(self) -> str:
        return (f"<crash rc={self.rc} stdout={self.stdout[-2000:]!r} "
                f"stderr={self.stderr[-3000:]!r}>")


def run_crash(version: str, work: str, dump: str, vml: str, cmds: dict, tag: str,
              opts=()) -> CrashRun:
    """crash -s VMLINUX DUMP -i CMDFILE: extend, then each command of cmds
    ({name: command line}) with its output redirected to a file."""
    out = os.path.join(work, f"{tag}-{version}")
    os.makedirs(out)
    ext = host_ext() if version == "8.0.2" else sid_ext(work)
    with open(os.path.join(out, "cmds"), "w") as f:
        f.write(f"extend {ext}\n")
        for name, line in cmds.items():
            f.write(f"{line} > {os.path.join(out, name)}\n")
        f.write("exit\n")
    argv = ["crash", *opts, "-s", vml, dump, "-i", os.path.join(out, "cmds")]
    if version != "8.0.2":
        argv = [CHROOT_SH, "sid", "run", "-r", os.path.dirname(dump), "-r", os.path.dirname(vml),
                "-w", work, "--", *argv]
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    cp = _sh(["nice", "-n", "5", *argv], timeout=CRASH_TIMEOUT, stdin=subprocess.DEVNULL, env=env)
    outs = {}
    for name in cmds:
        p = os.path.join(out, name)
        outs[name] = open(p).read() if os.path.exists(p) else None
    r = CrashRun(outs, cp, cmds)
    assert cp.returncode == 0, r
    assert "shared object loaded" in cp.stdout, r
    return r


def records(text: str, layout_source=None):
    recs = [json.loads(x) for x in text.splitlines() if x.strip()]
    assert recs and recs[0].get("type") == "target", text[:500]
    if layout_source is not None:
        assert recs[0]["layout_source"] == layout_source, recs[0]
        v = S.validator()
        for r in recs:       # crash's records are the schema's too
            S.validate(v, r)
    recs[0] = dict(recs[0])
    recs[0].pop("layout_source")
    return recs


@functools.lru_cache(maxsize=None)
def target(key=HEALTHY, fmt=FULL_FORMAT):
    fx = L.fixture(*key)
    m = next((m for m in fx.manifest if m.get("kind") == MAPPING), None)
    assert m is not None or key != HEALTHY, fx.manifest
    return (os.path.realpath(fx.dumps[fmt]), os.path.realpath(fx.vmlinux),
            int(m["pid"]) if m else None, int(m["start"], 16) if m else None)


@functools.lru_cache(maxsize=None)
def cli(key, fmt, *argv):
    dump, vml, _, _ = target(key, fmt)
    r = L.run("-c", dump, "-s", vml, *argv, layout_cache=False)
    assert r.rc in (0, 1), r
    return r


def commands(key, fmt, full: bool) -> dict:
    """{name: CLI argv} of the comparison."""
    _, _, pid, addr = target(key, fmt)
    walk = ("walk", "-p", str(pid), "-a", hex(addr))
    cmds = {"walk-json": walk + ("--json",), "check-json": ("check", "--json")}
    if full:
        pfns = [e["pfn"] for e in cli(key, fmt, *walk, "--json").json()
                if e.get("type") == "entry" and e["special"]]
        assert pfns
        rmap = ("rmap", "%#x-%#x" % (min(pfns), max(pfns)))
        cmds.update({
            "walk": walk, "walk-summary": walk + ("--summary", "--json"),
            "walk-all-json": ("walk", "-p", str(pid), "--all", "--json"),
            "check": ("check",), "check-summary": ("check", "--summary", "--json"),
            "rmap-json": rmap + ("--json",), "rmap": rmap,
            "tasks-json": ("tasks", "--json"), "tasks": ("tasks",),
            "vmas-json": ("vmas", "-p", str(pid), "--json"), "vmas": ("vmas", "-p", str(pid)),
        })
    return cmds


def compare(key, fmt, res: CrashRun, cmds: dict) -> None:
    for name, argv in cmds.items():
        want = cli(key, fmt, *argv)
        got = res.outs[name]
        assert got is not None, (name, res)
        if "--json" in argv:
            assert records(got, "crash") == records(want.out), (name, res)
        else:
            assert got == want.out, (name, got[:3000], want.out[:3000])
        assert want.out.strip(), (name, want)   # something was compared


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_crash_matches_cli(version, fmt, work):
    """pfnscope walk/check (and, on the real kdump, every subcommand, text and
    --json) inside crash print what the CLI prints on the same dump."""
    full = fmt == FULL_FORMAT
    dump, vml, pid, _ = target(HEALTHY, fmt)
    cmds = commands(HEALTHY, fmt, full)
    lines = {n: "pfnscope " + " ".join(a) for n, a in cmds.items()}
    if full:
        # errors: the CLI's one line on stderr
        lines["err-pid"] = "pfnscope walk -p 999999 -a 0x1000 --json"
        lines["err-target"] = "pfnscope -c /nonexistent tasks"
        lines["crash-vm"] = f"vm {pid}"
    res = run_crash(version, work, dump, vml, lines, f"healthy-{fmt}")
    compare(HEALTHY, fmt, res, cmds)
    # the mapping's walk has both special and normal entries: a comparison
    # that can fail
    walk = [e for e in records(res.outs["walk-json"]) if e.get("type") == "entry"]
    assert any(e["special"] for e in walk) and any(not e["special"] for e in walk), walk
    if not full:
        return
    err = L.run("-c", dump, "-s", vml, "walk", "-p", "999999", "-a", "0x1000", "--json", layout_cache=False)
    L.assert_clean_error(err, "999999")
    # (the CLI prints the target record before it finds no such pid)
    assert res.outs["err-pid"] == err.out.replace('"debuginfo"', '"crash"'), (err, res)
    assert err.err.strip() in res.stderr.splitlines(), (err, res)
    assert res.outs["err-target"] == "", res
    assert "pfnscope: -c does not apply in crash (the target is crash's dump)" in \
        res.stderr.splitlines(), res
    vmas = [v for v in records(res.outs["vmas-json"]) if v.get("type") == "vma"]
    assert vmas
    if version != "8.0.2":
        # crash 9 lists the maple tree itself: the same VMAs
        own = [(int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16))
               for m in re.finditer(r"^[0-9a-f]{16}\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)",
                                    res.outs["crash-vm"], re.M)]
        assert own == [(int(v["start"], 16), int(v["end"], 16), int(v["flags"], 16))
                       for v in vmas], res.outs["crash-vm"]


@pytest.mark.parametrize("version", VERSIONS)
def test_crash_check_buggy(version, work):
    """On the buggy 6.1 dump (findings up to critical), check inside crash
    gives the CLI's findings."""
    fmt = FULL_FORMAT
    dump, vml, _, _ = target(BUGGY, fmt)
    cmds = {"check-json": ("check", "--json"), "check": ("check", "--summary")}
    res = run_crash(version, work, dump, vml,
                    {n: "pfnscope " + " ".join(a) for n, a in cmds.items()}, "buggy")
    assert cli(BUGGY, fmt, "check", "--json").rc == 1    # findings at or above high
    compare(BUGGY, fmt, res, cmds)
    codes = {f["code"] for f in records(res.outs["check-json"]) if f.get("type") == "finding"}
    assert {"MAPS_FREED_PAGE", "SPECIAL_OVER_RAM"} & codes, codes


def test_crash9_newer_kernel(work):
    """crash 9 on a 6.12 dump: walk and check equal the CLI's."""
    dump, vml, _, _ = target(NEWER, FULL_FORMAT)
    cmds = commands(NEWER, FULL_FORMAT, False)
    res = run_crash("9", work, dump, vml,
                    {n: "pfnscope " + " ".join(a) for n, a in cmds.items()}, "newer")
    compare(NEWER, FULL_FORMAT, res, cmds)


def test_crash802_newer_kernel_fails_cleanly(work):
    """crash 8.0.2 opens the 6.12 dump only with --kaslr and --no_modules (it
    neither finds the KASLR offset nor knows 6.12's struct module), and then
    its gdb 10.2 segfaults on one of the layout queries (STRUCT_SIZE
    ("mem_section") on one machine, a `struct page` member offset on
    another).  crash's SIGSEGV handler longjmps to its command loop: pfnscope turns that into one error line per command and
    the next command runs on a sound interpreter -- or, with a crash that
    reads the vmlinux, prints the CLI's output."""
    dump, vml, _, _ = target(NEWER, FULL_FORMAT)
    cmds = commands(NEWER, FULL_FORMAT, False)
    from pfnscope.target import core
    from pfnscope.vmcoreinfo import VmcoreInfo
    kf = core().KdumpFile(dump)
    off = VmcoreInfo(kf.vmcoreinfo).kaslr_offset
    kf.close()
    lines = {n: "pfnscope " + " ".join(a) for n, a in cmds.items()}
    res = run_crash("8.0.2", work, dump, vml, lines, "newer",
                    opts=(f"--kaslr={off:#x}", "--no_modules"))
    errs = [x for x in res.stderr.splitlines() if x.startswith("pfnscope: ")]
    if not errs:
        compare(NEWER, FULL_FORMAT, res, cmds)
        return
    # Which query meets gdb 10.2's SIGSEGV first differs between machines
    # (STRUCT_SIZE(mem_section) on one, a `struct page` member offset on
    # another): what must hold is one line per command naming the query.
    assert len(errs) == len(cmds), res
    for e in errs:
        assert re.fullmatch(r"pfnscope: crash: \S.* failed inside crash "
                            r"\(an error or a signal in crash or its gdb\)", e), res
    assert "Traceback" not in res.stderr and "SystemError" not in res.stderr, res
    assert all(res.outs[n] == "" for n in cmds), res
