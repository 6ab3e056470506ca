#!/usr/bin/python3
"""The pages a walk of one VMA must read, found without pfnscope's walker.

    floor.py DUMP VMLINUX PID VMA_START VMA_END LOG

drgn (the debug vmlinux) gives the task's mm->pgd, page_offset_base,
vmemmap_base, init_top_pgt, phys_base and sizeof(struct page); the page
tables are then walked here, in Python, over raw page reads of the dump
(x86-64, 4 or 5 levels as VMCOREINFO says): every table page of every
level under the VMA, and for each leaf pfn the vmemmap pages holding its
struct page (a THP or huge leaf: its head's and every subpage's, as a
struct page decode of compound pages reads them), translated through the
kernel's own page tables.  LOG receives (paddr, 4096) pairs, little-endian
u64, one per distinct page, in walk order: what tests/bench/physread.c
times through libkdumpfile (the same reader pfnscope uses, no decode) and
through plain memcpy from an ELF dump's mapping.  Prints one JSON line:
{"table_pages": N, "memmap_pages": N, "leaves": N}.
"""
from __future__ import annotations

import json
import struct
import sys

import drgn
from drgn.helpers.linux.pid import find_task

PRESENT, PSE = 1, 1 << 7
PFN_MASK = ((1 << 52) - 1) & ~0xFFF
START_KERNEL_MAP = 0xFFFFFFFF80000000


def main(argv):
    dump, vmlinux, pid = argv[1], argv[2], int(argv[3])
    vma = (int(argv[4], 0), int(argv[5], 0))
    out = argv[6]
    prog = drgn.Program()
    prog.set_core_dump(dump)
    prog.load_debug_info([vmlinux])
    task = find_task(prog, pid)
    mm = task.mm
    pob = int(prog["page_offset_base"])
    vmemmap = int(prog["vmemmap_base"])
    phys_base = prog.read_u64(prog.symbol("phys_base").address)   # an asm symbol: no type
    page_size = drgn.sizeof(prog.type("struct page"))
    try:
        levels = 5 if int(prog["__pgtable_l5_enabled"]) else 4
    except LookupError:
        levels = 4
    pgd_pa = int(mm.pgd.value_()) - pob
    top_pa = (prog.symbol("init_top_pgt").address - START_KERNEL_MAP + phys_base) & ((1 << 64) - 1)

    def rd(pa):
        return prog.read(pa, 4096, True)

    tables = {}
    order = []

    def table(pa):
        pa &= ~0xFFF
        if pa not in tables:
            tables[pa] = struct.unpack("<512Q", rd(pa))
            order.append(pa)
        return tables[pa]

    shifts = {5: 48, 4: 39, 3: 30, 2: 21, 1: 12}
    leaves = []   # (pfn, npages)

    def walk(pa, level, lo, hi):
        ents = table(pa)
        shift = shifts[level]
        va = lo
        while va < hi:
            span = 1 << shift
            nxt = (va & ~(span - 1)) + span
            e = ents[(va >> shift) & 511]
            if e & PRESENT:
                if level == 1:
                    leaves.append(((e & PFN_MASK) >> 12, 1))
                elif level in (2, 3) and e & PSE:
                    leaves.append(((e & PFN_MASK) >> 12, span >> 12))
                else:
                    walk(e & PFN_MASK, level - 1, va, min(nxt, hi))
            va = nxt
    walk(pgd_pa, levels, vma[0], vma[1])
    table_pages = list(order)

    # struct page of each leaf: vmemmap VA -> PA through init_top_pgt
    def kvirt(va):
        pa = top_pa
        for level in range(levels, 0, -1):
            e = struct.unpack_from("<Q", rd(pa), ((va >> shifts[level]) & 511) * 8)[0]
            if not e & PRESENT:
                return None
            if level == 1 or (level in (2, 3) and e & PSE):
                size = 1 << shifts[level]
                return (e & PFN_MASK & ~(size - 1)) | (va & (size - 1))
            pa = e & PFN_MASK
        return None
    mem_pages = []
    seen = set()
    vpages = set()
    for pfn, n in leaves:
        first = (vmemmap + pfn * page_size) >> 12
        last = (vmemmap + (pfn + n) * page_size - 1) >> 12
        for vp in range(first, last + 1):
            if vp in vpages:
                continue
            vpages.add(vp)
            pa = kvirt(vp << 12)
            if pa is not None and pa not in seen:
                seen.add(pa)
                mem_pages.append(pa & ~0xFFF)
    with open(out, "wb") as f:
        for pa in table_pages + mem_pages:
            f.write(struct.pack("<QQ", pa, 4096))
    print(json.dumps({"table_pages": len(table_pages), "memmap_pages": len(mem_pages),
                      "leaves": len(leaves), "vma": [hex(vma[0]), hex(vma[1])]}))


if __name__ == "__main__":
    main(sys.argv)
