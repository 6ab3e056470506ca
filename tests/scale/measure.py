"""Whole-system `check` on the scale guest (8 GiB, tests/scale/scalelab.py)
and on the bench guest (2 GiB, tests/bench/benchlab.py), both dumps each:
wall and CPU time and peak RSS of the `pfnscope check` process (best of
--repeat runs), with the layout from the debug info on one thread and with
the layout cached on the default threads; the entries walked (one
in-process check counting them) and entries per second; how the cost per
GiB of populated memory grows from the 2 GiB guest to the 8 GiB one.

    python3 -m tests.scale.measure [--repeat N] [--out build/scale/results.json]

`make bench-scale` runs it (it builds the fixtures when missing: ~10 min for
the 8 GiB one under TCG).  Nothing fails on time.
"""
import argparse
import json
import os
import sys
import time

SCALEDIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SCALEDIR))
for _p in (ROOT, os.path.join(ROOT, "src", "python")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from tests.bench import bench, benchlab  # noqa: E402
from tests.scale import scalelab  # noqa: E402

DUMPS = ("kdump-real", "elf-paging")
MARK_BEGIN = "<!-- scale:begin (from `make bench-scale`) -->"
MARK_END = "<!-- scale:end -->"


def entries_walked(dump, vmlinux):
    """(entries walked by a whole-system check, tasks, VMAs), in-process."""
    from pfnscope import api, target
    sess = target.open_dump(dump, vmlinux)
    n = {"entries": 0, "vmas": 0, "tasks": set()}

    def vma_done(t, v, entries):
        n["entries"] += entries
        n["vmas"] += 1
        n["tasks"].add(t.pid)
    api.check(sess.prog, None, None, [], vma_done, [], jobs=None)
    return n["entries"], len(n["tasks"]), n["vmas"]


def measure(fx, label, repeat):
    out = {}
    for d in DUMPS:
        dump = fx.dumps[d]
        argv = [bench.BIN, "-c", dump, "-s", fx.vmlinux, "check"]
        cold = bench._timed_runs(argv + ["-j", "1"], repeat, bench._env(PFNSCOPE_LAYOUT_CACHE="0"),
                                 ok=(0, 1, 2))
        first = bench._timed_runs(argv + ["-j", "1"], repeat, ok=(0, 1, 2), first=True)
        bench.run_timed(argv)
        hot = bench._timed_runs(argv, repeat, ok=(0, 1, 2))
        hot1 = bench._timed_runs(argv + ["-j", "1"], repeat, ok=(0, 1, 2))
        entries, tasks, vmas = entries_walked(dump, fx.vmlinux)
        out[d] = {"cold_j1": cold, "first_j1": first, "cached": hot, "cached_j1": hot1, "entries": entries,
                  "tasks": tasks, "vmas": vmas, "dump_bytes": os.path.getsize(dump)}
        bench.log("%s %s: %d entries, %d tasks, %d VMAs; cached %.2f s wall %.2f s CPU %d MiB"
                  % (label, d, entries, tasks, vmas, bench.best(hot["wall"]), bench.best(hot["cpu"]),
                     hot["maxrss_kb"] // 1024))
    return out


def table(res):
    lines = ["| guest | dump | entries | tasks | VMAs | layout from the DWARF (cache off), -j 1: "
             "wall / CPU / RSS | first run (vmlinux .BTF), -j 1 | cached, -j 1 | cached, default -j "
             "| entries/s (cached, CPU) |",
             "|---|---|---:|---:|---:|---|---|---|---|---:|"]
    for g in ("2 GiB", "8 GiB"):
        for d in DUMPS:
            r = res[g][d]

            def f(x):
                return "%.2f s / %.2f s / %d MiB" % (bench.best(x["wall"]), bench.best(x["cpu"]),
                                                    x["maxrss_kb"] // 1024)
            rate = r["entries"] / bench.best(r["cached"]["cpu"])
            lines.append("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %.3g |" % (
                g, d, r["entries"], r["tasks"], r["vmas"], f(r["cold_j1"]),
                f(r["first_j1"]) if "first_j1" in r else "-", f(r["cached_j1"]), f(r["cached"]), rate))
    lines += ["", "| growth 2 GiB -> 8 GiB (per entry walked) | kdump-real | elf-paging |",
              "|---|---:|---:|"]
    for run, key, what in (("cached_j1", "cpu", "CPU per entry, cached, -j 1"),
                           ("cached_j1", "wall", "wall per entry, cached, -j 1"),
                           ("cached", "cpu", "CPU per entry, cached, default -j"),
                           ("cached", "wall", "wall per entry, cached, default -j")):
        vals = []
        for d in DUMPS:
            a, b = res["2 GiB"][d], res["8 GiB"][d]
            pa = bench.best(a[run][key]) / max(a["entries"], 1)
            pb = bench.best(b[run][key]) / max(b["entries"], 1)
            vals.append("%.2fx" % (pb / pa))
        lines.append("| %s | %s | %s |" % (what, vals[0], vals[1]))
    rss = ["%d -> %d MiB" % (res["2 GiB"][d]["cached"]["maxrss_kb"] // 1024,
                             res["8 GiB"][d]["cached"]["maxrss_kb"] // 1024) for d in DUMPS]
    lines.append("| peak RSS, cached | %s | %s |" % tuple(rss))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="check at scale: 2 GiB vs 8 GiB guest")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "scale", "results.json"))
    ap.add_argument("--readme", action="store_true", help="record the table in README.md")
    args = ap.parse_args(argv)
    small = benchlab.fixture()
    big = scalelab.fixture()
    res = {"2 GiB": measure(small, "2 GiB", args.repeat), "8 GiB": measure(big, "8 GiB", args.repeat),
           "machine": bench.machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "fixtures": {"2 GiB": small.dir, "8 GiB": big.dir}}
    res["machine"]["loadavg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    text = table(res)
    m = res["machine"]
    text = ("Host: %s, %d CPUs, load average %.1f at start, %.1f at end (shared machine); %s.\n\n"
            % (m["cpu"], m["cpus"], m["loadavg"][0], m["loadavg_end"][0], res["date"])) + text
    print(text)
    print("\nresults: %s" % args.out)
    if args.readme:
        readme = os.path.join(ROOT, "README.md")
        with open(readme) as f:
            s = f.read()
        a, b = s.find(MARK_BEGIN), s.find(MARK_END)
        if a >= 0 and b > a:
            s = s[:a] + MARK_BEGIN + "\n" + text + "\n" + s[b:]
            with open(readme + ".tmp", "w") as f:
                f.write(s)
            os.rename(readme + ".tmp", readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
