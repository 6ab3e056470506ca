#!/usr/bin/python3
"""Record what the CLI prints on every cached lab dump, to prove that a change
of structure changes no output: `scripts/outputs.py OUT` writes, per fixture and
dump, the sha256 and size of `check --json`, `tasks --json`, `walk --json --all`
and `walk --json --summary --all` over every task (and the exit codes) to
OUT/outputs.json; compare two such files with `scripts/outputs.py --diff A B` (`--diff-body A B`: apart from the
first record, the target's, which says where the layout came from).  The
environment passes through: PFNSCOPE_JOBS=2 records two worker threads,
PFNSCOPE_LAYOUT_CACHE=0 the layout from the debug info every time."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

CACHE = os.environ.get("PFNSCOPE_CACHE", os.path.expanduser("~/.cache/pfnscope"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"))
    p = subprocess.run([sys.executable, "-m", "pfnscope", *args], env=env,
                       capture_output=True, timeout=1800)
    # body: the output without its target record, whose layout_source says
    # where the layout came from (debuginfo, or the layout cache)
    body = b"".join(ln for ln in p.stdout.splitlines(True) if not ln.startswith(b'{"type":"target"'))
    return {"rc": p.returncode, "size": len(p.stdout),
            "sha256": hashlib.sha256(p.stdout).hexdigest(),
            "sha256_body": hashlib.sha256(body).hexdigest(),
            "stderr": p.stderr.decode(errors="replace")[-400:], "_out": p.stdout}


def record(out: str) -> None:
    res: dict = {}
    lab = os.path.join(CACHE, "lab")
    for fx in sorted(os.listdir(lab)):
        d = os.path.join(lab, fx)
        if not os.path.exists(os.path.join(d, "complete")):
            continue
        rel = open(os.path.join(d, "fixture.json")).read()
        vml = json.loads(rel).get("vmlinux")
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".vmcore"):
                continue
            dump = os.path.join(d, fn)
            base = ["-c", dump] + (["-s", vml] if vml else [])
            r = {}
            r["check"] = run(base + ["--json", "check"])
            r["tasks"] = run(base + ["--json", "tasks"])
            pids = [str(j["pid"]) for j in map(json.loads, r["tasks"]["_out"].splitlines())
                    if j.get("type") == "task" and j.get("mm") not in (None, "0x0")]
            pargs = [a for p in pids for a in ("-p", p)]
            r["walk"] = run(base + ["--json", "walk", "--all"] + pargs) if pids else {}
            r["summary"] = run(base + ["--json", "walk", "--summary", "--all"] + pargs) if pids else {}
            for v in r.values():
                v.pop("_out", None)
            res[f"{fx}/{fn}"] = r
            print(fx, fn, {k: (v.get("rc"), v.get("size")) for k, v in r.items()}, flush=True)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "outputs.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)


def diff(a: str, b: str, field: str = "sha256") -> int:
    A = json.load(open(a))
    B = json.load(open(b))
    bad = 0
    for k in sorted(set(A) | set(B)):
        for c in ("check", "tasks", "walk", "summary"):
            x = A.get(k, {}).get(c, {})
            y = B.get(k, {}).get(c, {})
            if (x.get("rc"), x.get(field)) != (y.get("rc"), y.get(field)):
                bad += 1
                print(f"DIFFERS {k} {c}: {x.get('rc')}/{x.get('size')} -> {y.get('rc')}/{y.get('size')}")
    n = sum(len(v) for v in A.values())
    print(f"{n - bad} identical, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--diff"]:
        sys.exit(diff(sys.argv[2], sys.argv[3]))
    if sys.argv[1:2] == ["--diff-body"]:   # apart from the target record
        sys.exit(diff(sys.argv[2], sys.argv[3], "sha256_body"))
    record(sys.argv[1])
