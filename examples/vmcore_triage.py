#!/usr/bin/python3
"""Triage a vmcore for mislabeled pfnmap pages.

    /usr/bin/python3 examples/vmcore_triage.py VMCORE [VMLINUX] [--fail-on SEV]

Runs the check over every task, groups the findings by code, and for each
finding at or above --fail-on (default high) shows the VMA and the entries of
the offending run with their struct page state and what GUP, KVM and VFIO
would do with them.  Exit status as the CLI: 0 clean, 1 findings, 2 error.
"""
import argparse
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "python"))
import pfnscope  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vmcore")
    ap.add_argument("vmlinux", nargs="?")
    ap.add_argument("--fail-on", default="high", choices=pfnscope.SEVERITIES)
    args = ap.parse_args()
    try:
        prog = pfnscope.open(args.vmcore, args.vmlinux)
    except pfnscope.PfnscopeError as e:
        print(f"vmcore_triage: {e}", file=sys.stderr)
        return 2
    findings = pfnscope.check(prog)
    print(f"{args.vmcore}: {len(findings)} findings")
    for (code, sev), n in Counter((f.code, f.severity) for f in findings).most_common():
        print(f"  {n:5}  {sev:8} {code}")
    fail = pfnscope.SEVERITIES.index(args.fail_on)
    bad = [f for f in findings if pfnscope.SEVERITIES.index(f.severity) >= fail]
    for f in bad[:20]:
        print(f"\n{f}")
        vma = pfnscope.find_vma(pfnscope.find_task(prog, f.pid), f.start, pid=f.pid)
        print(f"  vma: {vma}")
        if f.scope != "entry":
            continue
        for e in pfnscope.walk_vma(vma, start=f.start, end=min(f.end, f.start + 4 * 4096)):
            print(f"  {e.addr:#x} raw={e.raw:#x} {e.kind} pfn={e.pfn} special={e.special} "
                  f"vnp={e.normal_page}/{e.vnp_reason} page={e.page} consumers={e.consumers}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
