#!/usr/bin/python3
"""Baseline: what a drgn 0.0.22 user writes today, with no pfnscope code.

Walks the x86-64 page tables of one VMA of one task in a crash dump and prints
one JSON line per present (or swap) pte: the raw entry, pfn, special bit and the
struct page fields (refcount, mapcount, flags, anon) read through drgn Objects.

    /usr/bin/python3 baseline_drgn0022.py -c VMCORE -s VMLINUX -p PID --start A --end B

drgn 0.0.22 has no VMA helpers for the maple tree (6.1+), so the VMA range is an
argument (from /proc/PID/maps in the guest, or `pfnscope vmas`).  Upper levels are
read once per table; every pte is one prog.read_u64(addr, True).  On stderr:
"baseline: entries=N walk_seconds=T" (T: the walk alone, after the debug info load).
"""
import argparse
import json
import sys
import time

import drgn
from drgn.helpers.linux.mm import pfn_to_page
from drgn.helpers.linux.pid import find_task

PTRS = 512
PFN_MASK = 0x000FFFFFFFFFF000
_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_PSE = 1 << 7
_PAGE_SPECIAL = 1 << 9
_PAGE_DEVMAP = 1 << 57


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--core", required=True)
    ap.add_argument("-s", "--symbols", required=True)
    ap.add_argument("-p", "--pid", type=int, required=True)
    ap.add_argument("--start", type=lambda s: int(s, 0), required=True)
    ap.add_argument("--end", type=lambda s: int(s, 0), required=True)
    args = ap.parse_args()

    prog = drgn.Program()
    prog.set_core_dump(args.core)
    prog.load_debug_info([args.symbols])

    t0 = time.perf_counter()
    task = find_task(prog, args.pid)
    mm = task.mm
    page_offset = prog["page_offset_base"].value_()
    try:
        levels = 5 if prog["__pgtable_l5_enabled"].value_() else 4
    except KeyError:
        levels = 4
    pg_reserved = prog.constant("PG_reserved").value_()
    shifts = [12 + 9 * i for i in range(levels)][::-1]   # pgd .. pte
    pgd_phys = mm.pgd.value_() - page_offset
    read_u64 = prog.read_u64
    out = sys.stdout
    dumps = json.dumps
    n = 0

    def emit(addr, raw, level):
        nonlocal n
        n += 1
        e = {"addr": hex(addr), "level": level, "raw": hex(raw)}
        if raw & _PAGE_PRESENT:
            pfn = (raw & PFN_MASK) >> 12
            e["kind"] = "present"
            e["pfn"] = pfn
            e["special"] = bool(raw & _PAGE_SPECIAL)
            e["devmap"] = bool(raw & _PAGE_DEVMAP)
            e["writable"] = bool(raw & _PAGE_RW)
            try:
                page = pfn_to_page(prog, pfn)
                flags = page.flags.value_()
                e["page"] = {
                    "refcount": page._refcount.counter.value_(),
                    "mapcount": page._mapcount.counter.value_() + 1,
                    "flags": hex(flags),
                    "anon": bool(page.mapping.value_() & 1),
                    "reserved": bool(flags & (1 << pg_reserved)),
                }
            except drgn.FaultError:
                e["page"] = None
        else:
            e["kind"] = "swap"
        out.write(dumps(e) + "\n")

    def walk(table_phys, lvl, start, end):
        shift = shifts[lvl]
        size = 1 << shift
        addr = start
        while addr < end:
            nxt = min((addr | (size - 1)) + 1, end)
            idx = (addr >> shift) & (PTRS - 1)
            try:
                raw = read_u64(table_phys + idx * 8, True)
            except drgn.FaultError:
                addr = nxt
                continue
            if raw:
                if lvl == levels - 1:
                    emit(addr, raw, "pte")
                elif raw & _PAGE_PRESENT:
                    if raw & _PAGE_PSE and lvl >= levels - 3:
                        emit(addr, raw, "pmd" if lvl == levels - 2 else "pud")
                    else:
                        walk(raw & PFN_MASK, lvl + 1, addr, nxt)
            addr = nxt

    walk(pgd_phys, 0, args.start, args.end)
    out.flush()
    print("baseline: entries=%d walk_seconds=%.6f" % (n, time.perf_counter() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
