#!/usr/bin/python3
"""pfnscope benchmark: pfnscope against crash, drgn 0.0.22 / 0.3 and
the physical limit, on the same dump, in one run.

    /usr/bin/python3 -m tests.bench.bench [--dumps kdump-real,elf-paging] [--repeat N]
                                          [--no-chroot] [--readme] [--out FILE]
    make bench          (the 2 GiB bench guest; README table updated)

What is measured (per dump; times are the best of N runs, median in the JSON):
  pfnscope walk of the 1 GiB anon VMA, --json to /dev/null and --summary, with the
    libkdumpfile reader and the drgn reader: end to end (bin/pfnscope process) and
    walk only (Target.walk_write in-process: fresh reader + Target per run for
    kdumpfile; the drgn reader keeps its Program, the Target cache is flushed);
  baseline_drgn0022.py (drgn 0.0.22, Python, read_u64 per pte + Objects per page);
  upstream drgn 0.3 follow_pfn + pfn_to_page loop (sid chroot);
  crash 9 `vm -p PID` (sid chroot): startup, one-shot end to end, per `vm -p` in a session;
  the physical limit: the walk's own physical reads (logged) replayed with plain reads
    through the same dump reader in C (tests/bench/physread.c), and through
    drgn's prog.read in Python;
  `pfnscope check` of the whole system: CPU seconds and peak RSS.
Every tool's pfns are checked against each other (and the guest's pagemap checksums).
Nothing here fails on time; a disagreement between tools fails.
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCHDIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(BENCHDIR))
SRC = os.path.join(ROOT, "src", "python")
for _p in (ROOT, SRC):
    if _p not in sys.path:
        sys.path.insert(0, _p)

PY = "/usr/bin/python3"
BIN = os.path.join(ROOT, "bin", "pfnscope")
CHROOT_SH = os.path.join(ROOT, "tests", "vm", "chroot.sh")
BUILD = os.path.join(ROOT, "build", "bench")
BASELINE = os.path.join(BENCHDIR, "baseline_drgn0022.py")
DRGN03 = os.path.join(BENCHDIR, "upstream_drgn03.py")
README = os.path.join(ROOT, "README.md")
CACHE = os.environ.get("PFNSCOPE_CACHE") or os.path.expanduser("~/.cache/pfnscope")
MARK_BEGIN = "<!-- bench:begin (written by `make bench`) -->"
MARK_END = "<!-- bench:end -->"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------ helpers

GNU_TIME = "/usr/bin/time"


def run_timed(argv, stdout=subprocess.DEVNULL, env=None):
    """Run ARGV; (wall seconds, user+sys CPU seconds, peak RSS KiB, rc, stderr text).

    The peak RSS comes from GNU time run in between: a child forked from
    this (large) process starts with this process's pages mapped, and its
    ru_maxrss keeps that high-water mark across exec."""
    err = tempfile.TemporaryFile()
    rss_file = tempfile.NamedTemporaryFile(prefix="pfnbench-rss-", delete=False)
    rss_file.close()
    wrap = [GNU_TIME, "-q", "-f", "%M", "-o", rss_file.name] if os.path.exists(GNU_TIME) else []
    t0 = time.perf_counter()
    p = subprocess.Popen(wrap + argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    text = err.read().decode(errors="replace")
    err.close()
    maxrss = ru.ru_maxrss
    try:
        with open(rss_file.name) as f:
            maxrss = int(f.read().split()[-1]) if wrap else maxrss
    except (OSError, ValueError, IndexError):
        pass
    finally:
        os.unlink(rss_file.name)
    return wall, ru.ru_utime + ru.ru_stime, maxrss, p.returncode, text


def stat(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"best": min(values), "median": statistics.median(values), "runs": len(values)}


def best(s):
    return s["best"] if s else None


def pfn_digest(pfns):
    s = x = n = 0
    for p in pfns:
        s += p
        x ^= p
        n += 1
    return {"count": n, "pfn_sum": s, "pfn_xor": x}


def chroot_ready():
    stamp = os.path.join(CACHE, "chroots", "sid.ready")
    try:
        with open(stamp) as f:
            return "python3-drgn" in f.read() and os.geteuid() == 0
    except OSError:
        return False


def chroot_argv(binds, argv):
    out = [CHROOT_SH, "sid", "run"]
    for d in dict.fromkeys(binds):
        out += ["-r", d]
    return out + ["--"] + argv


def _build_c(name, srcs, libs=()):
    os.makedirs(BUILD, exist_ok=True)
    out = os.path.join(BUILD, name)
    if os.path.exists(out) and all(os.path.getmtime(out) >= os.path.getmtime(s) for s in srcs):
        return out
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                        "-I" + os.path.join(ROOT, "include")] + list(srcs) + list(libs) +
                       ["-o", out + ".tmp"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        raise BenchError("cannot build %s: %s" % (name, r.stdout))
    os.rename(out + ".tmp", out)
    return out


def build_physread():
    """physread (plain reads through pfnscope's dump reader; --memcpy: out of
    the mapped ELF file)."""
    readers = sorted(glob.glob(os.path.join(ROOT, "src", "readers", "*.c")))
    return _build_c("physread", [os.path.join(BENCHDIR, "physread.c")] + readers +
                    [os.path.join(ROOT, "src/core/error.c")],
                    ["-lkdumpfile", "-ldeflate", "-lpthread"])


# ------------------------------------------------------------------ the case

class Case:
    """One VMA of one task in one dump."""

    def __init__(self, label, dump, vmlinux, pid, start, end, expect=None):
        self.label = label          # e.g. "kdump-real"
        self.dump = dump
        self.vmlinux = vmlinux
        self.pid = pid
        self.start = start
        self.end = end
        self.expect = expect        # {"count","pfn_sum","pfn_xor"} from the guest, or None

    @property
    def pages(self):
        return (self.end - self.start) // 4096


def _session(case, reader):
    from pfnscope import target
    sess = target.open_dump(case.dump, case.vmlinux, reader)
    t = sess.find_task(case.pid)
    vt = sess.find_vma(t[3], case.start)
    if vt is None or vt[1] != case.start or vt[2] != case.end:
        raise BenchError("%s: no VMA [%#x, %#x) in pid %d (found %r)"
                         % (case.dump, case.start, case.end, case.pid, vt))
    return sess, t[3], vt


def _runs_pfns(path):
    """pfns of present entries from summary-json runs."""
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") != "run" or r.get("kind") != "present" or r.get("pfn") is None:
                continue
            step = {"pte": 1, "pmd": 512, "pud": 512 * 512}[r["level"]]
            out.extend(range(r["pfn"], r["pfn"] + r["count"] * step, step))
    return out


# ------------------------------------------------------------------ measurements

def m_pfnscope_inprocess(case, repeat, results, verify):
    """Walk-only timings through the extension API, reader stats, the read log
    and the physical-limit replays."""
    from pfnscope import target
    c = target.core()
    devnull = os.open(os.devnull, os.O_WRONLY)
    tmp = os.path.join(BUILD, "tmp")
    os.makedirs(tmp, exist_ok=True)
    try:
        # kdumpfile reader: a fresh KdumpFile + Target per run (cold caches)
        sess, mm, vt = _session(case, "kdumpfile")
        for mode in ("json", "summary-json"):
            times, entries, st = [], None, None
            for _ in range(repeat):
                kf = c.KdumpFile(case.dump)
                tgt = c.Target(sess.layout, kf)
                t0 = time.perf_counter()
                entries, runs, diags = tgt.walk_write(devnull, mm, vt, case.pid, mode=mode)
                times.append(time.perf_counter() - t0)
                st = tgt.stats()
                del tgt
                kf.close()
            results["walk"][("kdumpfile", mode)] = {"time": stat(times), "entries": entries,
                                                    "reader_stats": st}
        # verification output (runs -> pfns)
        vpath = os.path.join(tmp, "pfnscope-%s.runs.jsonl" % case.label)
        with open(vpath, "w") as f:
            sess.target.walk_write(f.fileno(), mm, vt, case.pid, mode="summary-json")
        verify["pfnscope (kdumpfile)"] = pfn_digest(_runs_pfns(vpath))

        # the walk's physical reads, logged through a Python reader over the same KdumpFile
        kf = c.KdumpFile(case.dump)
        reads = []

        def logging_reader(a, n):
            reads.append((a, n))
            return kf.read_phys(a, n)
        tgt = c.Target(sess.layout, logging_reader)
        tgt.walk_write(devnull, mm, vt, case.pid, mode="summary-json")
        del tgt
        kf.close()
        logpath = os.path.join(tmp, "reads-%s.bin" % case.label)
        with open(logpath, "wb") as f:
            for a, n in reads:
                f.write(a.to_bytes(8, "little") + n.to_bytes(8, "little"))
        nbytes = sum(n for _, n in reads)
        r = subprocess.run([build_physread(), case.dump, logpath, str(max(repeat, 3))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        m = re.search(r"reads=(\d+) bytes=(\d+) failed=(\d+) best=([\d.]+) median=([\d.]+)", r.stdout)
        if r.returncode or not m:
            raise BenchError("physread failed: %s %s" % (r.stdout, r.stderr))
        results["phys"]["kdumpfile"] = {
            "time": {"best": float(m.group(4)), "median": float(m.group(5)), "runs": max(repeat, 3)},
            "reads": len(reads), "bytes": nbytes, "failed": int(m.group(3)),
            "page_table_reads": sum(1 for _, n in reads if n == 4096),
        }
        del sess  # (Session.close() refuses while its Target holds the reader)

        # drgn reader: same Program across runs, Target cache flushed
        sess, mm, vt = _session(case, "drgn")
        for mode in ("json", "summary-json"):
            times, entries = [], None
            for _ in range(repeat):
                sess.target.flush_cache()
                t0 = time.perf_counter()
                entries, runs, diags = sess.target.walk_write(devnull, mm, vt, case.pid, mode=mode)
                times.append(time.perf_counter() - t0)
            results["walk"][("drgn", mode)] = {"time": stat(times), "entries": entries}
        vpath = os.path.join(tmp, "pfnscope-drgn-%s.runs.jsonl" % case.label)
        with open(vpath, "w") as f:
            sess.target.walk_write(f.fileno(), mm, vt, case.pid, mode="summary-json")
        verify["pfnscope (drgn reader)"] = pfn_digest(_runs_pfns(vpath))
        # physical limit through drgn: the same reads with prog.read in a Python loop
        read = sess.prog.read
        times = []
        for _ in range(max(repeat, 3)):
            t0 = time.perf_counter()
            for a, n in reads:
                try:
                    read(a, n, True)
                except Exception:
                    pass
            times.append(time.perf_counter() - t0)
        results["phys"]["drgn"] = {"time": stat(times), "reads": len(reads), "bytes": nbytes}
        del sess  # (Session.close() refuses while its Target holds the reader)
    finally:
        os.close(devnull)


def m_pfnscope_cli(case, repeat, results):
    for reader in ("kdumpfile", "drgn"):
        for mode, flag in (("json", "--json"), ("summary-json", "--summary")):
            argv = [BIN, "-c", case.dump, "-s", case.vmlinux, "--reader", reader, "walk",
                    "-p", str(case.pid), "-a", hex(case.start), flag]
            walls, cpus, rss = [], [], []
            for _ in range(repeat):
                wall, cpu, maxrss, rc, err = run_timed(argv)
                if rc:
                    raise BenchError("%s failed (rc %d): %s" % (" ".join(argv), rc, err[-2000:]))
                walls.append(wall)
                cpus.append(cpu)
                rss.append(maxrss)
            results["e2e"][(reader, mode)] = {"time": stat(walls), "cpu": stat(cpus),
                                              "maxrss_kb": max(rss)}


def _parse_walk_seconds(err, tag):
    m = re.search(tag + r": entries=(\d+) walk_seconds=([\d.]+)", err)
    if not m:
        raise BenchError("no '%s: entries=.. walk_seconds=..' on stderr:\n%s" % (tag, err[-3000:]))
    return int(m.group(1)), float(m.group(2))


def _json_pfns(path):
    out = []
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e.get("pfn") is not None:
                out.append(e["pfn"])
    return out


def m_script(case, repeat, results, verify, key, argv, tag):
    tmp = os.path.join(BUILD, "tmp")
    walls, walks, entries = [], [], None
    vpath = os.path.join(tmp, "%s-%s.jsonl" % (key, case.label))
    # first run writes the output for the agreement check; the timed runs write to /dev/null
    with open(vpath, "w") as f:
        _, _, _, rc, err = run_timed(argv, stdout=f)
    if rc:
        raise BenchError("%s failed (rc %d): %s" % (" ".join(argv), rc, err[-3000:]))
    verify[key] = pfn_digest(_json_pfns(vpath))
    os.unlink(vpath)  # tens of MB for the 1 GiB VMA
    for _ in range(repeat):
        wall, _, _, rc, err = run_timed(argv)
        if rc:
            raise BenchError("%s failed (rc %d): %s" % (" ".join(argv), rc, err[-3000:]))
        entries, w = _parse_walk_seconds(err, tag)
        walls.append(wall)
        walks.append(w)
    results["tools"][key] = {"e2e": stat(walls), "walk": stat(walks), "entries": entries}


def m_baseline(case, repeat, results, verify):
    argv = [PY, BASELINE, "-c", case.dump, "-s", case.vmlinux, "-p", str(case.pid),
            "--start", hex(case.start), "--end", hex(case.end)]
    m_script(case, repeat, results, verify, "drgn 0.0.22 baseline", argv, "baseline")


def _binds(case):
    return [BENCHDIR, BUILD, os.path.dirname(os.path.realpath(case.dump)),
            os.path.dirname(os.path.realpath(case.vmlinux))]


def m_drgn03(case, repeat, results, verify):
    base = [PY.replace("/usr/bin/python3", "python3"), DRGN03, "-c", os.path.realpath(case.dump),
            "-s", os.path.realpath(case.vmlinux), "-p", str(case.pid), "-a", hex(case.start)]
    m_script(case, repeat, results, verify, "drgn 0.3 follow_pfn loop",
             chroot_argv(_binds(case), base), "drgn03")
    # the bare loop: follow_pfn + pfn_to_page, no struct page field reads
    argv = chroot_argv(_binds(case), base + ["--pfn-only"])
    walls, walks, entries = [], [], None
    for _ in range(repeat):
        wall, _, _, rc, err = run_timed(argv)
        if rc:
            raise BenchError("drgn 0.3 --pfn-only failed: %s" % err[-3000:])
        entries, w = _parse_walk_seconds(err, "drgn03")
        walls.append(wall)
        walks.append(w)
    results["tools"]["drgn 0.3 follow_pfn+pfn_to_page only"] = {
        "e2e": stat(walls), "walk": stat(walks), "entries": entries}


def m_crash(case, repeat, results, verify, per_session=3):
    tmp = os.path.join(BUILD, "tmp")
    dump, vml = os.path.realpath(case.dump), os.path.realpath(case.vmlinux)
    binds = _binds(case)
    stamp = "!date +%s.%N"
    # 1. startup and per-`vm -p` time in one session (date stamps between commands;
    #    the cost of a stamp alone is measured by two stamps back to back)
    cmds = os.path.join(tmp, "crash-session.cmds")
    with open(cmds, "w") as f:
        f.write("%s\n%s\n" % (stamp, stamp))
        for _ in range(per_session):
            f.write("vm -p %d > /dev/null\n%s\n" % (case.pid, stamp))
        f.write("quit\n")
    starts, pervm = [], []
    for _ in range(max(1, min(repeat, 2))):
        out = tempfile.TemporaryFile()
        t0 = time.time()
        wall, _, _, rc, err = run_timed(chroot_argv(binds, ["crash", "-s", vml, dump, "-i", cmds]),
                                        stdout=out)
        out.seek(0)
        stamps = [float(x) for x in re.findall(rb"^(\d{9,}\.\d+)$", out.read(), re.M)]
        out.close()
        if rc or len(stamps) != 2 + per_session:
            raise BenchError("crash session failed (rc %d, %d stamps): %s" % (rc, len(stamps), err[-3000:]))
        starts.append(stamps[0] - t0)
        nothing = stamps[1] - stamps[0]
        pervm += [max(0.0, stamps[i + 1] - stamps[i] - nothing) for i in range(1, 1 + per_session)]
    # 2. one shot: start, vm -p, quit (output kept for the agreement check)
    cmds1 = os.path.join(tmp, "crash-oneshot.cmds")
    with open(cmds1, "w") as f:
        f.write("vm -p %d\nquit\n" % case.pid)
    vpath = os.path.join(tmp, "crash-%s.out" % case.label)
    with open(vpath, "w") as f:
        wall, _, _, rc, err = run_timed(chroot_argv(binds, ["crash", "-s", vml, dump, "-i", cmds1]),
                                        stdout=f)
    if rc:
        raise BenchError("crash vm -p failed (rc %d): %s" % (rc, err[-3000:]))
    pfns = []
    with open(vpath) as f:
        for line in f:
            p = line.split()
            if len(p) == 2 and re.fullmatch(r"[0-9a-f]+", p[0]) and re.fullmatch(r"[0-9a-f]+", p[1]):
                va = int(p[0], 16)
                if case.start <= va < case.end:
                    pfns.append(int(p[1], 16) >> 12)
    verify["crash 9 vm -p"] = pfn_digest(pfns)
    os.unlink(vpath)
    results["tools"]["crash 9 vm -p"] = {"startup": stat(starts), "per_vm": stat(pervm),
                                         "e2e": stat([wall]), "entries": len(pfns)}


def _timed_runs(argv, repeat, env=None, ok=(0,), first=False):
    """Whole-process wall, CPU and peak RSS of argv over repeat runs.
    first: each run in an empty layout cache, what a first run on the
    kernel costs (the layout from the debug vmlinux's .BTF and symbol
    table, written to the cache)."""
    walls, cpus, rss = [], [], []
    for _ in range(repeat):
        cache = tempfile.mkdtemp(prefix="pfnscope-bench-cache-") if first else None
        try:
            wall, cpu, maxrss, rc, err = run_timed(
                argv, env=dict(env or os.environ, PFNSCOPE_CACHE=cache) if cache else env)
        finally:
            if cache:
                shutil.rmtree(cache, ignore_errors=True)
        if rc not in ok:
            raise BenchError("%s failed (rc %d): %s" % (" ".join(argv[:4]), rc, err[-2000:]))
        walls.append(wall)
        cpus.append(cpu)
        rss.append(maxrss)
    return {"wall": stat(walls), "cpu": stat(cpus), "maxrss_kb": max(rss)}


def _env(**kw):
    return dict(os.environ, **kw)


def m_check(case, repeat, results):
    """Whole-system check: layout from the DWARF (cache off) on one thread,
    as before the layout cache; a first run (empty cache: the vmlinux's
    .BTF); and with the layout cached, on one thread and on the default
    threads (the online CPUs)."""
    argv = [BIN, "-c", case.dump, "-s", case.vmlinux, "check"]
    results["check_cold"] = _timed_runs(argv + ["-j", "1"], repeat,
                                        _env(PFNSCOPE_LAYOUT_CACHE="0"), ok=(0, 1))
    results["check_first"] = _timed_runs(argv + ["-j", "1"], repeat, ok=(0, 1), first=True)
    run_timed(argv)   # makes the layout cache file
    results["check"] = _timed_runs(argv, repeat, ok=(0, 1))
    results["check_j1"] = _timed_runs(argv[:-1] + ["-j", "1", "check"], repeat, ok=(0, 1))


def _pages_of_log(path):
    pages = set()
    with open(path, "rb") as f:
        data = f.read()
    for i in range(0, len(data) - 15, 16):
        a, n = int.from_bytes(data[i:i + 8], "little"), int.from_bytes(data[i + 8:i + 16], "little")
        pages.update(range(a >> 12, (a + max(n, 1) - 1 >> 12) + 1))
    return pages


def _floor_in_walk(case):
    """The share of the floor's pages that pfnscope's walk read too (1.0:
    the independent walk and pfnscope's agree on what must be read)."""
    tmp = os.path.join(BUILD, "tmp")
    floor = _pages_of_log(os.path.join(tmp, "floor-%s.bin" % case.label))
    walk = _pages_of_log(os.path.join(tmp, "reads-%s.bin" % case.label))
    return len(floor & walk) / len(floor) if floor else None


def m_startup(case, repeat, results):
    """Start-up: `tasks` on the dump, layout from the DWARF (cache off), a
    first run (empty cache), cached."""
    argv = [BIN, "-c", case.dump, "-s", case.vmlinux, "tasks"]
    results["startup"] = {"cold": _timed_runs(argv, repeat, _env(PFNSCOPE_LAYOUT_CACHE="0")),
                          "first": _timed_runs(argv, repeat, first=True)}
    run_timed(argv)
    results["startup"]["cached"] = _timed_runs(argv, repeat)


def m_floor(case, repeat, results):
    """The floor of a walk of the VMA: the page-table and memmap pages it
    needs, found by an independent walk (tests/bench/floor.py, drgn + raw
    reads), read through libkdumpfile with no decode (physread.c: a fresh
    context per run) and, on an ELF dump, copied with plain memcpy out of
    the mapped file (physread.c --memcpy)."""
    logpath = os.path.join(BUILD, "tmp", "floor-%s.bin" % case.label)
    r = subprocess.run([PY, os.path.join(BENCHDIR, "floor.py"), case.dump, case.vmlinux,
                        str(case.pid), hex(case.start), hex(case.end), logpath],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise BenchError("floor.py failed: %s" % r.stderr[-2000:])
    info = json.loads(r.stdout.strip().splitlines()[-1])
    out = {"pages": info}
    pat = r"reads=(\d+) bytes=(\d+)(?: failed=(\d+))? best=([\d.]+) median=([\d.]+)"
    runs = max(repeat, 5)
    for key, mode in (("kdumpfile", []), ("memcpy", ["--memcpy"]),
                      ("memcpy-fresh", ["--memcpy-fresh"])):
        if key.startswith("memcpy") and not case.label.startswith("elf"):
            continue
        prog = build_physread()
        p = subprocess.run([prog] + mode + [case.dump, logpath, str(runs)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        m = re.search(pat, p.stdout)
        if p.returncode or not m:
            raise BenchError("%s failed: %s %s" % (prog, p.stdout, p.stderr))
        out[key] = {"time": {"best": float(m.group(4)), "median": float(m.group(5)), "runs": runs},
                    "reads": int(m.group(1)), "bytes": int(m.group(2)),
                    "failed": int(m.group(3) or 0)}
    results["floor"] = out


# ------------------------------------------------------------------ one case

def run_case(case, repeat=3, chroot=True, tools=("pfnscope", "baseline", "drgn03", "crash", "check")):
    """All measurements on CASE; returns the result dict (JSON-able) with "agree"."""
    os.makedirs(os.path.join(BUILD, "tmp"), exist_ok=True)
    results = {"walk": {}, "e2e": {}, "phys": {}, "tools": {}, "check": None, "floor": None,
               "startup": None, "check_cold": None, "check_first": None, "check_j1": None}
    m_floor(case, repeat, results)
    log("%s: floor done" % case.label)
    m_startup(case, repeat, results)
    log("%s: start-up done" % case.label)
    verify = {}
    log("%s: pid %d VMA [%#x, %#x) (%d pages)" % (case.label, case.pid, case.start, case.end, case.pages))
    m_pfnscope_inprocess(case, repeat, results, verify)
    log("%s: pfnscope in-process done" % case.label)
    m_pfnscope_cli(case, repeat, results)
    log("%s: pfnscope CLI done" % case.label)
    if "baseline" in tools:
        m_baseline(case, repeat, results, verify)
        log("%s: drgn 0.0.22 baseline done" % case.label)
    if chroot and "drgn03" in tools:
        m_drgn03(case, repeat, results, verify)
        log("%s: drgn 0.3 done" % case.label)
    if chroot and "crash" in tools:
        m_crash(case, repeat, results, verify)
        log("%s: crash done" % case.label)
    if "check" in tools:
        m_check(case, repeat, results)
        log("%s: check done" % case.label)
    results["floor"]["in_walk"] = _floor_in_walk(case)
    ref = verify["pfnscope (kdumpfile)"]
    agree = {k: v == ref for k, v in verify.items()}
    if case.expect:
        agree["guest pagemap"] = case.expect == ref
    out = {
        "dump": case.label, "dump_path": case.dump, "vmlinux": case.vmlinux, "pid": case.pid,
        "vma": [hex(case.start), hex(case.end)], "pages": case.pages,
        "digests": verify, "expect": case.expect, "agree": agree,
        "walk": {"%s/%s" % k: v for k, v in results["walk"].items()},
        "e2e": {"%s/%s" % k: v for k, v in results["e2e"].items()},
        "phys": results["phys"], "tools": results["tools"], "check": results["check"],
        "check_cold": results["check_cold"], "check_first": results["check_first"],
        "check_j1": results["check_j1"],
        "floor": results["floor"], "startup": results["startup"],
    }
    out["rows"], out["targets"] = summarize(out)
    return out


# ------------------------------------------------------------------ table

def summarize(r):
    """Table rows and the issue's targets from one case result."""
    rows = []
    n = r["pages"]
    jw = best(r["walk"]["kdumpfile/json"]["time"])

    def row(name, e2e, walk, entries, note=""):
        rows.append({"name": name, "e2e": e2e, "walk": walk, "entries": entries,
                     "rate": (entries / walk) if walk and entries else None,
                     "x_json_walk": (walk / jw) if walk and jw else None, "note": note})
    for reader in ("kdumpfile", "drgn"):
        for mode, label in (("json", "--json"), ("summary-json", "--summary")):
            w = r["walk"]["%s/%s" % (reader, mode)]
            e = r["e2e"]["%s/%s" % (reader, mode)]
            row("pfnscope walk %s (%s reader)" % (label, reader), best(e["time"]), best(w["time"]),
                w["entries"])
    t = r["tools"]
    for key in ("drgn 0.0.22 baseline", "drgn 0.3 follow_pfn loop", "drgn 0.3 follow_pfn+pfn_to_page only"):
        if key in t:
            row(key, best(t[key]["e2e"]), best(t[key]["walk"]), t[key]["entries"])
    if "crash 9 vm -p" in t:
        c = t["crash 9 vm -p"]
        row("crash 9 vm -p PID (VA->PA only)", best(c["e2e"]), best(c["per_vm"]), c["entries"],
            "startup %.2f s" % best(c["startup"]))
    for rd, label in (("kdumpfile", "physical limit: plain reads, the dump reader (C)"),
                      ("drgn", "physical limit: plain reads, drgn prog.read (Python)")):
        if rd in r["phys"]:
            p = r["phys"][rd]
            row(label, None, best(p["time"]), n, "%d reads, %d KiB" % (p["reads"], p["bytes"] // 1024))
    fl = r.get("floor") or {}
    for key, label in (("kdumpfile", "floor: the VMA's table and memmap pages, the dump reader, no decode"),
                       ("memcpy", "floor: the same pages, plain memcpy from the mapped ELF dump"),
                       ("memcpy-fresh", "the same memcpy, the dump mapped afresh (as each timed walk has it)")):
        if key in fl:
            p = fl[key]
            row(label, None, best(p["time"]), n, "%d pages (%d tables, %d memmap), %d KiB" % (
                p["reads"], fl["pages"]["table_pages"], fl["pages"]["memmap_pages"],
                p["bytes"] // 1024))
    targets = []
    t22 = t.get("drgn 0.0.22 baseline")
    t03 = t.get("drgn 0.3 follow_pfn loop")
    for name, tt in (("drgn 0.0.22 baseline", t22), ("drgn 0.3 follow_pfn loop", t03)):
        if tt:
            x = best(tt["walk"]) / jw
            targets.append({"target": "walk --json >= 30x faster than %s (walk vs walk)" % name,
                            "value": "%.0fx (end to end %.1fx)" % (
                                x, best(tt["e2e"]) / best(r["e2e"]["kdumpfile/json"]["time"])),
                            "met": x >= 30})
    cr = t.get("crash 9 vm -p")
    if cr:
        targets.append({"target": "walk --json no slower than crash's vm -p per VMA",
                        "value": "%.3f s vs %.3f s" % (jw, best(cr["per_vm"])),
                        "met": jw <= best(cr["per_vm"])})
    sw = best(r["walk"]["kdumpfile/summary-json"]["time"])
    if "kdumpfile" in fl:
        # the floor: plain memcpy of the pages on an ELF dump, reads through
        # the dump reader (libkdumpfile: inflate) on a compressed one
        rd = best(fl["kdumpfile"]["time"])
        if "memcpy" in fl:
            pl, what = best(fl["memcpy"]["time"]), "plain memcpy"
            extra = "; %.1fx the dump reader's floor %.4f s" % (sw / rd, rd) if rd else ""
            if "memcpy-fresh" in fl and best(fl["memcpy-fresh"]["time"]):
                fr = best(fl["memcpy-fresh"]["time"])
                extra += "; %.1fx the memcpy out of a fresh mapping %.4f s" % (sw / fr, fr)
        else:
            pl, what, extra = rd, "the dump reader, no decode", ""
        targets.append({"target": "walk --summary within 3x of the floor (%s)" % what,
                        "value": "%.1fx (%.4f s vs %.4f s%s)" % (sw / pl, sw, pl, extra) if pl else "n/a",
                        "met": pl > 0 and sw <= 3 * pl})
    if cr:
        e1 = best(r["e2e"]["kdumpfile/json"]["time"])
        st = best(cr["startup"])
        targets.append({"target": "one-shot walk --json end to end < 1/4 of crash's start-up",
                        "value": "%.2f s vs crash startup %.2f s / 4 = %.2f s" % (e1, st, st / 4),
                        "met": e1 < st / 4})
    su = r.get("startup")
    if su:
        c, h = su.get("first") or su["cold"], su["cached"]
        targets.append({"target": "start-up (tasks) with the layout cached < 0.1 s",
                        "value": "%.3f s wall, %.3f s CPU, %d MiB (first run: "
                                 "%.2f s wall, %.2f s CPU, %d MiB)" % (
                                     best(h["wall"]), best(h["cpu"]), h["maxrss_kb"] // 1024,
                                     best(c["wall"]), best(c["cpu"]), c["maxrss_kb"] // 1024),
                        "met": best(h["wall"]) < 0.1})
    if r["check"]:
        cpu = best(r["check"]["cpu"])
        rss = r["check"]["maxrss_kb"] // 1024
        cold = r.get("check_first") or r.get("check_cold")
        targets.append({"target": "whole-system check: peak RSS < 200 MB (first run), < 64 MB with "
                                  "the layout cached (2 GiB guest; 8 GiB: `make bench-scale`)",
                        "value": "%d MiB cached, %s" % (rss, "%d MiB on a first run" % (
                            cold["maxrss_kb"] // 1024) if cold else "-"),
                        "met": rss < 64 and (not cold or cold["maxrss_kb"] // 1024 < 200)})
        targets.append({"target": "whole-system check < 2 s wall (2 GiB guest; 8 GiB: `make bench-scale`)",
                        "value": "%.2f s wall, %.2f s CPU" % (best(r["check"]["wall"]), cpu),
                        "met": best(r["check"]["wall"]) < 2.0})
    return rows, targets


def _f(v, fmt="%.3f"):
    return "-" if v is None else fmt % v


def table(r):
    lines = ["dump %s: pid %d, VMA %s-%s, %d ptes (times: best of runs, seconds)"
             % (r["dump"], r["pid"], r["vma"][0], r["vma"][1], r["pages"]), "",
             "| what | end to end s | walk s | entries/s (walk) | walk / pfnscope --json walk | note |",
             "|---|---:|---:|---:|---:|---|"]
    for w in r["rows"]:
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            w["name"], _f(w["e2e"], "%.2f"), _f(w["walk"]), _f(w["rate"], "%.3g"),
            _f(w["x_json_walk"], "%.2fx"), w["note"]))
    for key, label in (("check_cold", "pfnscope check (whole system), layout from the DWARF (cache off), -j 1"),
                       ("check_first", "pfnscope check (whole system), first run (vmlinux .BTF), -j 1"),
                       ("check_j1", "pfnscope check (whole system), layout cached, -j 1"),
                       ("check", "pfnscope check (whole system), layout cached, default -j")):
        c = r.get(key)
        if c:
            lines.append("| %s | %s | | | | %.2f s CPU, peak RSS %d MiB |"
                         % (label, _f(best(c["wall"]), "%.2f"), best(c["cpu"]), c["maxrss_kb"] // 1024))
    su = r.get("startup")
    if su:
        for key, label in (("cold", "pfnscope tasks (start-up), layout from the DWARF (cache off)"),
                           ("first", "pfnscope tasks (start-up), first run (vmlinux .BTF)"),
                           ("cached", "pfnscope tasks (start-up), layout cached")):
            c = su.get(key)
            if c is None:
                continue
            lines.append("| %s | %s | | | | %.2f s CPU, peak RSS %d MiB |"
                         % (label, _f(best(c["wall"]), "%.2f"), best(c["cpu"]), c["maxrss_kb"] // 1024))
    lines += ["", "| target | value | met |", "|---|---|---|"]
    for t in r["targets"]:
        lines.append("| %s | %s | %s |" % (t["target"], t["value"], "yes" if t["met"] else "**no**"))
    lines += ["", "agreement (pfn count/sum/xor equal to pfnscope's): " +
              ", ".join("%s %s" % (k, "ok" if v else "MISMATCH") for k, v in r["agree"].items())]
    return "\n".join(lines)


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import drgn
        drgn_v = drgn.__version__
    except ImportError:
        drgn_v = None
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {"cpu": model, "cpus": os.cpu_count(), "mem_mib": mem, "kernel": platform.release(),
            "os": _os_release(), "python": platform.python_version(), "drgn": drgn_v,
            "loadavg": os.getloadavg()}


def _os_release():
    try:
        with open("/etc/os-release") as f:
            d = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return d.get("PRETTY_NAME", "").strip('"')
    except OSError:
        return ""


def write_readme(text):
    with open(README) as f:
        s = f.read()
    block = MARK_BEGIN + "\n" + text.rstrip("\n") + "\n" + MARK_END
    if MARK_BEGIN in s and MARK_END in s:
        a = s.index(MARK_BEGIN)
        b = s.index(MARK_END) + len(MARK_END)
        s = s[:a] + block + s[b:]
    else:
        s = s.rstrip("\n") + "\n\n## Benchmark\n\n" + block + "\n"
    with open(README + ".tmp", "w") as f:
        f.write(s)
    os.rename(README + ".tmp", README)


# ------------------------------------------------------------------ main

def bench_cases(fx, labels):
    a = fx.info["anon"]
    expect = {"count": a["present"], "pfn_sum": a["pfn_sum"], "pfn_xor": a["pfn_xor"]}
    return [Case(l, fx.dumps[l], fx.vmlinux, a["pid"], a["start"], a["end"], expect) for l in labels]


def main(argv=None):
    ap = argparse.ArgumentParser(description="pfnscope benchmark")
    ap.add_argument("--kernel", default=os.environ.get("PFNSCOPE_BENCH_KERNEL", "6.1"))
    ap.add_argument("--cpu", default="max")
    ap.add_argument("--dumps", default="kdump-real,elf-paging")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("PFNSCOPE_BENCH_REPEAT", "3")))
    ap.add_argument("--no-chroot", action="store_true", help="skip drgn 0.3 and crash (sid chroot)")
    ap.add_argument("--guest", default="200:1024:256", metavar="NSMALL:ANON_MIB:PFNMAP_MIB",
                    help="bench guest size (default: 200 small processes, 1 GiB anon, 256 MiB pfnmap)")
    ap.add_argument("--out", default=os.path.join(BUILD, "results.json"))
    ap.add_argument("--readme", action="store_true", help="record the table in README.md")
    args = ap.parse_args(argv)
    from tests.bench import benchlab
    t0 = time.time()
    use_chroot = not args.no_chroot
    if use_chroot:
        r = subprocess.run([CHROOT_SH, "sid"], stdout=subprocess.DEVNULL)
        if r.returncode:
            raise BenchError("the sid chroot (tests/vm/chroot.sh sid) could not be made")
    fx = benchlab.fixture(args.kernel, args.cpu, *(int(x) for x in args.guest.split(":")))
    build_physread()
    mach = machine()
    cases = []
    for case in bench_cases(fx, [d for d in args.dumps.split(",") if d]):
        cases.append(run_case(case, args.repeat, use_chroot))
    mach["loadavg_end"] = os.getloadavg()
    doc = {"fixture": fx.dir, "release": fx.release, "guest": {"mem": benchlab.GUEST_MEM,
           "levels": fx.levels, "info": fx.info}, "machine": mach, "repeat": args.repeat,
           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cases": cases,
           "seconds": time.time() - t0}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    text = ["Guest: %s, %s RAM, %d-level paging; %d processes (1 GiB anon VMA: %d ptes; %s pfnmap "
            "of %d pages; %d small processes).  Host: %s, %d CPUs, %d MiB, %s, kernel %s; "
            "load average %.1f at start, %.1f at end (shared machine).  %s, %d runs each."
            % (fx.release, benchlab.GUEST_MEM, fx.levels, 2 + fx.info["small"]["count"],
               fx.info["anon"]["pages"], fx.info["pfnmap"]["how"], fx.info["pfnmap"]["pages"],
               fx.info["small"]["count"], mach["cpu"], mach["cpus"], mach["mem_mib"], mach["os"],
               mach["kernel"], mach["loadavg"][0], mach["loadavg_end"][0], doc["date"], args.repeat)]
    for c in cases:
        text.append(table(c))
    out = "\n\n".join(text)
    print(out)
    print("\nresults: %s" % args.out)
    if args.readme:
        write_readme(out)
        print("README.md: Benchmark section updated")
    bad = [(c["dump"], k) for c in cases for k, v in c["agree"].items() if not v]
    if bad:
        print("bench: tools disagree: %s" % bad, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
