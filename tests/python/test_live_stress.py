"""Live walks under memory stress: a healthy guest (no scenario programs, only
init) runs stress-ng's memory stressors (vm, mmap, madvise, fork, mremap,
fault: page tables, VMAs and tasks created and freed all the time) while

* `pfnscope -k check --json --summary` runs back to back inside the guest
  (chrooted into the host's root over 9p, as test_live_61.py), and
* `pfnscope --qemu-ram RAMFILE check --json --summary` runs back to back on
  the host against the same running guest, at the same time,

each run bounded by a timeout.  Every run must finish (no hang), end with its
summary record and exit 0, or 2 with a one-line error record per task that
could not be read (a task that exited under the walk: no traceback, no
internal error); no finding at medium or above may be reported (the guest is
healthy: a finding would be read from tables that changed under the walk and
that the re-read failed to catch).  The `changed` records (findings withdrawn
because a re-read differed) and errors are counted and reported.

The -k runs take the kernel's layout from its BTF and kallsyms (--btf, what
pfnscope does where no debug vmlinux is installed), and every
PFNSCOPE_STRESS_DEBUGINFO_EVERY-th run (default 10; runs 1, 11, 21...) from
the debug vmlinux (-s): the walk, the re-read and the findings are the same
C code either way, only the source of the offsets differs.  Under TCG a -k
run spends ~40 of its ~55 s in drgn loading the vmlinux's DWARF, ~17 s in
all with --btf; the runs with the debug vmlinux keep that source stressed too.

PFNSCOPE_STRESS_RUNS (default 2: one of each source) -k runs and
PFNSCOPE_STRESS_RAM_RUNS (default 5) --qemu-ram runs; `make check-stress`
runs 100 of each.  The numbers go to build/stress/results.json.
"""
from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import threading
import time
from typing import Dict, List

import pytest

import live_support as L

RUNS = int(os.environ.get("PFNSCOPE_STRESS_RUNS", "2"))
RAM_RUNS = int(os.environ.get("PFNSCOPE_STRESS_RAM_RUNS", "5"))
RUN_TIMEOUT = int(os.environ.get("PFNSCOPE_STRESS_TIMEOUT", "600"))
DEBUGINFO_EVERY = int(os.environ.get("PFNSCOPE_STRESS_DEBUGINFO_EVERY", "10"))
# one worker each; nice 10 leaves pfnscope most of the single TCG vCPU while
# the stressors keep running whenever it waits (9p reads of the vmlinux)
STRESSORS = ("--vm 1 --vm-bytes 48M --mmap 1 --mmap-bytes 16M --madvise 1 --fork 1 "
             "--mremap 1 --mremap-bytes 8M --fault 1")
RESULTS = os.path.join(L.ROOT, "build", "stress", "results.json")
SEVERITIES = ("low", "medium", "high", "critical")


@pytest.fixture(scope="module")
def guest():
    lv = L.lab.live(kernel="6.1", cpu="max", scenario="none")
    try:
        rc, out, err = lv.run(f"cd /tmp && nohup nice -n 10 stress-ng --temp-path /tmp {STRESSORS} "
                              "--timeout 0 > /tmp/stress-ng.log 2>&1 &\necho started")
        assert rc == 0 and "started" in out, (rc, out, err)
        deadline = time.monotonic() + 120   # the workers start slowly under TCG
        while _stressors(lv) < 6 and time.monotonic() < deadline:
            time.sleep(2)
        assert _stressors(lv) >= 6, lv.run("cat /tmp/stress-ng.log")
        yield lv
    finally:
        lv.stop()


def _stressors(lv) -> int:
    rc, out, _ = lv.run("grep -l '^stress-ng' /proc/[0-9]*/comm 2>/dev/null | wc -l")
    return int(out.split()[-1]) if rc == 0 and out.split() else 0


def _tally(rc: int, out: str, err: str, wall: float) -> Dict:
    """One run: rc, wall time, findings at >= medium, changed, errors, and
    whether it hung or crashed."""
    objs = []
    bad_lines = 0
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                objs.append(json.loads(line))
            except ValueError:
                bad_lines += 1
    summary = [o for o in objs if o.get("type") == "summary"]
    layout = [o.get("layout_source") for o in objs if o.get("type") == "target"]
    weighty = [o for o in objs if o.get("type") == "finding"
               and SEVERITIES.index(o["severity"]) >= 1]
    errors = [o for o in objs if o.get("type") == "error"]
    hang = rc in (124, 137)
    crash = (not hang and (rc not in (0, 1, 2) or "Traceback" in err or "internal error" in err
                           or len(summary) != 1 or bad_lines > 0 or (rc == 2 and not errors)))
    return {"rc": rc, "wall": round(wall, 2), "layout": layout[0] if layout else None,
            "findings": len(weighty),
            "finding_codes": sorted({o["code"] for o in weighty}),
            "changed": sum(1 for o in objs if o.get("type") == "changed"),
            "changed_what": dict(collections.Counter(o.get("what", "entry") for o in objs
                                                     if o.get("type") == "changed")),
            "changed_codes": dict(collections.Counter(c for o in objs if o.get("type") == "changed"
                                                      for c in o.get("codes") or [])),
            "errors": len(errors),
            "error_messages": [f"{o.get('comm')}: {o.get('message')}" for o in errors][:3],
            "hang": hang, "crash": crash,
            "stderr": err[-500:] if (crash or hang) else ""}


def _report(name: str, runs: List[Dict], final: bool = True) -> Dict:
    walls = [r["wall"] for r in runs]
    rep = {"target": name, "runs": len(runs),
           "wall_min": min(walls) if walls else None,
           "wall_median": round(statistics.median(walls), 2) if walls else None,
           "wall_max": max(walls) if walls else None,
           "by_layout": {src: {"runs": len(w), "wall_min": min(w),
                               "wall_median": round(statistics.median(w), 2), "wall_max": max(w)}
                         for src in sorted({str(r.get("layout")) for r in runs})
                         for w in [[r["wall"] for r in runs if str(r.get("layout")) == src]]},
           "changed": sum(r["changed"] for r in runs),
           "changed_what": dict(sum((collections.Counter(r["changed_what"]) for r in runs),
                                    collections.Counter())),
           "changed_codes": dict(sum((collections.Counter(r["changed_codes"]) for r in runs),
                                     collections.Counter())),
           "runs_with_changed": sum(1 for r in runs if r["changed"]),
           "findings": sum(r["findings"] for r in runs),
           "errors": sum(r["errors"] for r in runs),
           "runs_with_errors": sum(1 for r in runs if r["errors"]),
           "hangs": sum(r["hang"] for r in runs), "crashes": sum(r["crash"] for r in runs)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with _LOCK:
        _write_results(name, rep, runs, final)
    if final:
        print(f"\nstress {name}: " + json.dumps(rep))
    return rep


_LOCK = threading.Lock()


def _write_results(name: str, rep: Dict, runs: List[Dict], final: bool) -> None:
    try:
        with open(RESULTS) as f:
            allr = json.load(f)
    except (OSError, ValueError):
        allr = {}
    allr[name] = dict(rep, per_run=runs, complete=final,
                      when=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    with open(RESULTS + ".tmp", "w") as f:
        json.dump(allr, f, indent=1)
    os.replace(RESULTS + ".tmp", RESULTS)


def _check(rep: Dict, runs: List[Dict]) -> None:
    bad = [r for r in runs if r["hang"] or r["crash"] or r["findings"]]
    assert rep["hangs"] == 0 and rep["crashes"] == 0 and rep["findings"] == 0, (rep, bad[:5])


def _layout_args(i: int, guest) -> str:
    """Run I's layout source: the debug vmlinux on runs 1, 1+EVERY, ...,
    BTF and kallsyms otherwise."""
    return f"-s {guest.vmlinux}" if i % DEBUGINFO_EVERY == 1 % DEBUGINFO_EVERY else "--btf"


def _kcore_run(guest, i: int) -> Dict:
    rc, out, err = guest.run(
        "s=$(cut -d' ' -f1 /proc/uptime)\n"
        f"PFNSCOPE_NO_PROGRESS=1 PYTHONPYCACHEPREFIX=/tmp/pycache timeout -k 10 {RUN_TIMEOUT} {L.GUEST_CLI} -k {_layout_args(i, guest)}"
        " check --json --summary"
        " > /tmp/run.out 2> /tmp/run.err\n"
        "rc=$?\ne=$(cut -d' ' -f1 /proc/uptime)\n"
        "cat /tmp/run.out; cat /tmp/run.err >&2; echo \"@@ $rc $s $e\"",
        timeout=RUN_TIMEOUT + 120)
    tail = [ln for ln in out.splitlines() if ln.startswith("@@ ")]
    assert rc == 0 and tail, (rc, out[-2000:], err[-2000:])
    _, prc, s, e = tail[-1].split()
    return _tally(int(prc), out, err, float(e) - float(s))


def _ram_run(guest) -> Dict:
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    t = time.monotonic()
    try:
        cp = subprocess.run([L.BIN, "--qemu-ram", guest.ram_file, "-s", guest.vmlinux,
                             "check", "--json", "--summary"], capture_output=True, text=True,
                            timeout=RUN_TIMEOUT, env=env)
        rc, out, err = cp.returncode, cp.stdout, cp.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = 124, e.stdout or "", e.stderr or ""
        out = out.decode() if isinstance(out, bytes) else out
        err = err.decode() if isinstance(err, bytes) else err
    return _tally(rc, out, err, time.monotonic() - t)


@pytest.fixture(scope="module")
def stress_runs(guest):
    """The -k runs inside the guest and, at the same time, the --qemu-ram runs
    from the host (the guest is busiest then: stressors plus a -k check)."""
    ram: List[Dict] = []
    stop = threading.Event()

    def ram_loop():
        for _ in range(RAM_RUNS):
            if stop.is_set():
                break
            ram.append(_ram_run(guest))
            _report("qemu-ram", ram, final=False)
    th = threading.Thread(target=ram_loop, daemon=True)
    th.start()
    kcore: List[Dict] = []
    try:
        for i in range(RUNS):
            kcore.append(_kcore_run(guest, i))
            _report("kcore", kcore, final=False)
        th.join()
    finally:
        stop.set()
        th.join()
    return {"kcore": kcore, "qemu-ram": ram, "alive": _stressors(guest)}


def test_kcore_check_under_stress(stress_runs):
    runs = stress_runs["kcore"]
    rep = _report("kcore", runs)
    assert len(runs) == RUNS
    want = {"btf"} | ({"debuginfo"} if RUNS > 1 else set())
    assert want <= {r["layout"] for r in runs}, [r["layout"] for r in runs]
    assert stress_runs["alive"] >= 6, f"the stressors died during the runs ({stress_runs['alive']} left)"
    _check(rep, runs)


def test_qemu_ram_check_under_stress(stress_runs):
    runs = stress_runs["qemu-ram"]
    rep = _report("qemu-ram", runs)
    assert len(runs) == RAM_RUNS
    assert stress_runs["alive"] >= 6, f"the stressors died during the runs ({stress_runs['alive']} left)"
    _check(rep, runs)
