#!/usr/bin/python3
"""Upstream drgn (0.3, Debian sid; run in the bench's sid chroot): the
follow_pfn() + pfn_to_page() loop over one VMA, one JSON line per mapped page
with the same struct page fields as baseline_drgn0022.py.

    python3 upstream_drgn03.py -c VMCORE -s VMLINUX -p PID -a ADDR [--pfn-only]

--pfn-only: follow_pfn + pfn_to_page and the pfn only (no struct page field reads).
On stderr: "drgn03: entries=N walk_seconds=T" (T: the loop alone).
"""
import argparse
import json
import sys
import time

import drgn
from drgn.helpers.linux.mm import follow_pfn, pfn_to_page, vma_find
from drgn.helpers.linux.pid import find_task


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--core", required=True)
    ap.add_argument("-s", "--symbols", required=True)
    ap.add_argument("-p", "--pid", type=int, required=True)
    ap.add_argument("-a", "--addr", type=lambda s: int(s, 0), required=True)
    ap.add_argument("--pfn-only", action="store_true")
    args = ap.parse_args()

    prog = drgn.Program()
    prog.set_core_dump(args.core)
    prog.load_debug_info([args.symbols])

    t0 = time.perf_counter()
    mm = find_task(prog, args.pid).mm
    vma = vma_find(mm, args.addr)
    start, end = vma.vm_start.value_(), vma.vm_end.value_()
    out = sys.stdout
    dumps = json.dumps
    n = 0
    for addr in range(start, end, 4096):
        try:
            pfn = follow_pfn(mm, addr).value_()
        except drgn.FaultError:
            continue
        page = pfn_to_page(prog, pfn)
        n += 1
        if args.pfn_only:
            out.write('{"addr": "%#x", "pfn": %d, "page": "%#x"}\n' % (addr, pfn, page.value_()))
            continue
        flags = page.flags.value_()
        e = {"addr": hex(addr), "pfn": pfn, "page": {
            "refcount": page._refcount.counter.value_(),
            "mapcount": page._mapcount.counter.value_() + 1,
            "flags": hex(flags),
            "anon": bool(page.mapping.value_() & 1)}}
        out.write(dumps(e) + "\n")
    out.flush()
    print("drgn03: entries=%d walk_seconds=%.6f" % (n, time.perf_counter() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
