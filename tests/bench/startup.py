#!/usr/bin/python3
"""Start-up of `pfnscope -c DUMP tasks` with the debug vmlinux against the
kernel's BTF + kallsyms, on the same dump.

    /usr/bin/python3 tests/bench/startup.py [--repeat N] DUMP [VMLINUX]

VMLINUX defaults to the one pfnscope finds; the BTF runs get an empty
$PFNSCOPE_CACHE so that none is found.  Per source: the best and the median
wall time, the median CPU time (user + system, all threads) and the peak RSS
of the pfnscope process.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "bin", "pfnscope")


def one(args, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cp = subprocess.run([BIN, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                        text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cp.returncode != 0:
        sys.exit(f"startup: {' '.join(args)}: exit {cp.returncode}: {cp.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("dump")
    ap.add_argument("vmlinux", nargs="?")
    a = ap.parse_args()
    empty = tempfile.mkdtemp(prefix="pfnscope-startup-")
    base = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    runs = {
        "debuginfo": (["-c", a.dump] + (["-s", a.vmlinux] if a.vmlinux else []) + ["tasks"], base),
        "btf": (["-c", a.dump, "tasks"], dict(base, PFNSCOPE_CACHE=empty)),
    }
    for name, (args, env) in runs.items():
        one(args, env)  # warm the page cache
    for name, (args, env) in runs.items():
        # RUSAGE_CHILDREN's maxrss is the largest child so far: measure each
        # source's peak in a fresh interpreter
        walls, cpus = [], []
        for _ in range(a.repeat):
            w, c, _ = one(args, env)
            walls.append(w)
            cpus.append(c)
        rss = subprocess.run([sys.executable, "-c",
                              "import resource,subprocess,sys;subprocess.run(sys.argv[1:],"
                              "stdout=subprocess.DEVNULL);print(resource.getrusage("
                              "resource.RUSAGE_CHILDREN).ru_maxrss)", BIN, *args],
                             env=env, capture_output=True, text=True).stdout.strip()
        print(f"{name:9} wall best {min(walls):.3f}s median {statistics.median(walls):.3f}s  "
              f"cpu median {statistics.median(cpus):.3f}s  peak rss {int(rss) // 1024} MiB  "
              f"({a.repeat} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
