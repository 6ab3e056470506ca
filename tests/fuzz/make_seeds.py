#!/usr/bin/python3
"""Extract the fuzzers' seed corpora from a lab fixture's real dump.

    PYTHONPATH=src/python /usr/bin/python3 tests/fuzz/make_seeds.py [KERNEL CPU SCENARIO]

writes tests/fuzz/corpus/{walk,vma,task,page,kdump,vmcoreinfo}/lab-*: real
page-table pages, maple nodes and the VMAs they hold, the task list and the
pid idr, memmap runs of struct pages, the first blocks of the kdump files
and ELF headers, and VMCOREINFO notes, in each target's input format (see
the comment at the top of each tests/fuzz/fuzz_*.c and fuzz_common.h).
Kernel pointers are rebased to the fixed seed windows of fuzz_common.h;
structures whose layout the mock kernel defines itself (vm_area_struct,
task_struct, struct pid) are re-encoded with the real values at the mock's
offsets.  Run once by hand when the lab changes; the output is committed.
"""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [ROOT, os.path.join(ROOT, "src", "python")]

from tests.vm import lab  # noqa: E402
from pfnscope import target  # noqa: E402

import drgn  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEED_POB = 0xffff888000000000
SEED_VMEMMAP = 0xffffea0000000000
SEED_IMAGE = 0xffffffff90000000
WINDOW = 8 << 30
IMG_MASK = 0x1fffff
ADDR = 0x000ffffffffff000
VERSION_IDX = {(5, 4): 0, (5, 10): 1, (5, 15): 1, (6, 1): 2, (6, 6): 3, (6, 12): 4, (6, 17): 5, (6, 18): 6, (7, 2): 7}


class Dump:
    def __init__(self, fx, fmt="elf-paging"):
        self.fx = fx
        self.sess = target.open_dump(fx.dumps[fmt], fx.vmlinux)
        self.prog = self.sess.prog
        lo = self.sess.layout_dict
        self.lo = lo
        self.levels = lo["pgtable_levels"]
        self.pob = lo["page_offset_base"]
        self.vmemmap = lo["vmemmap_base"]
        self.init_task = lo["init_task"]
        major, minor = (int(x) for x in self.sess.vmci.osrelease.split(".")[:2])
        self.vidx = VERSION_IDX.get((major, minor), 2)

    def phys(self, pa, n):
        return self.sess.target.read_phys(pa, n)

    def kv(self, va, n):
        return self.sess.target.read_kvirt(va, n)

    def u64(self, va):
        return struct.unpack("<Q", self.kv(va, 8))[0]

    def pa(self, va):
        assert self.pob <= va < self.pob + WINDOW, hex(va)
        return va - self.pob

    def rebase(self, v):
        if self.pob <= v < self.pob + WINDOW:
            return SEED_POB + (v - self.pob)
        if self.vmemmap <= v < self.vmemmap + WINDOW:
            return SEED_VMEMMAP + (v - self.vmemmap)
        if self.init_task <= v < self.init_task + 0x4000:
            return SEED_IMAGE + (v - self.init_task)
        return v

    def rebase_bytes(self, b):
        b = bytearray(b)
        for i in range(0, len(b) - 7, 8):
            v, = struct.unpack_from("<Q", b, i)
            struct.pack_into("<Q", b, i, self.rebase(v))
        return bytes(b)

    def mock_va(self, va):
        """A direct-map VA as the seed window has it."""
        return SEED_POB + self.pa(va)


def rec(where, off, data):
    return struct.pack("<IHH", where, off, len(data)) + data


def phys_rec(pa, data):
    assert pa % 8 == 0
    return rec((pa >> 12) & IMG_MASK, pa & 0xfff, data)


PREFIX = ""


def write(name, blob):
    if PREFIX:
        name = name.replace("/lab-", f"/lab-{PREFIX}-", 1)
    d = os.path.join(OUT, name.split("/")[0])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)
    print(f"{name}: {len(blob)} bytes")


def manifest(fx):
    return [m for m in fx.manifest if "start" in m and m.get("pid")]


def task_of(d, pid):
    t = d.sess.find_task(pid)
    return t  # (task_va, pid, tgid, mm, comm)


# --- walk: real page-table pages -------------------------------------------------

def walk_seed(d, pid, start, end, vm_flags, pgoff):
    _, _, _, mm, _ = task_of(d, pid)
    pgd = d.pa(d.u64(mm + d.lo["mm_pgd"]))
    shifts = [48, 39, 30, 21, 12] if d.levels == 5 else [39, 30, 21, 12]
    # follow the real path to the pte table of start
    tables = []
    pa = pgd
    for sh in shifts[:-1]:
        idx = (start >> sh) & 511
        e, = struct.unpack("<Q", d.phys(pa + 8 * idx, 8))
        tables.append((pa, idx, e))
        if not e & 1 or e & 0x80:
            break
        pa = e & ADDR
    else:
        tables.append((pa, (start >> 12) & 511, None))
    pud_h = (start >> 30) & 63
    hdr = bytes([(1 if d.levels == 5 else 0) | d.vidx << 1])
    hdr += struct.pack("<Q", vm_flags) + struct.pack("<I", pgoff & 0xffffffff)
    start_pages = pud_h << 18 | ((start >> 21) & 511) << 9 | ((start >> 12) & 511)
    npages = min((end - start) >> 12, 4096)
    hdr += struct.pack("<I", start_pages)[:3] + struct.pack("<H", npages - 1)
    ops = b""

    def op(t, mode, idx, val):
        return bytes([t | mode << 3]) + struct.pack("<HQ", idx, val)
    # harness: T0 under the top entry of BASE (0x7f0000000000); below it
    # the tables of the real path from the p4d (5-level) or pud level on
    base = 0x7f0000000000
    t = 0
    path = tables[1:]  # the real tables below the pgd
    for level, (tpa, idx, e) in enumerate(path):
        sh = shifts[level + 1]
        hidx = ((base + (start_pages << 12)) >> sh) & 511
        page = d.phys(tpa, 4096)
        for i in range(512):
            v, = struct.unpack_from("<Q", page, 8 * i)
            if not v:
                continue
            if i == idx and level + 1 < len(path):
                continue  # written as a link below
            ops += op(t, 0, hidx if i == idx else i, v)
        if level + 1 < len(path):
            nxt = t + 1
            e_ = e or 0
            ops += op(t, 1, hidx, nxt | (e_ & 0xfff) << 8 | (e_ & 0xfff0000000000000))
            t = nxt
    return hdr + ops


def walk_seeds(d, fx):
    kinds = ("anon_private_written", "thp_anon", "hugetlb_anon", "devmem_private_lowram_cow",
             "devmem_shared_hole", "swap_anon", "vvar", "protnone", "huge_zero_page", "io_uring_sq_ring")
    done = set()
    for m in manifest(fx):
        if m["kind"] not in kinds or m["kind"] in done:
            continue
        pid, start = int(m["pid"]), int(m["start"], 16)
        vt = d.sess.find_vma(task_of(d, pid)[3], start)
        if vt is None:
            continue
        _, s, e, flags, pgoff, _, _ = vt
        write(f"walk/lab-{m['kind']}", walk_seed(d, pid, s, e, flags, pgoff))
        done.add(m["kind"])


# --- vma: maple nodes and VMAs --------------------------------------------------------

def vma_record(d, vma_va, vma_next=None):
    lo = d.lo
    f = {k: d.u64(vma_va + lo[k]) for k in ("vma_vm_start", "vma_vm_end", "vma_vm_flags",
                                            "vma_vm_pgoff", "vma_vm_file", "vma_vm_ops")}
    mm = d.u64(vma_va + lo["vma_vm_mm"])
    b = bytearray(144)
    struct.pack_into("<QQQ", b, 0, f["vma_vm_start"], f["vma_vm_end"], d.rebase(mm))
    struct.pack_into("<Q", b, 32, f["vma_vm_flags"])
    struct.pack_into("<QQQ", b, 96, f["vma_vm_ops"], f["vma_vm_pgoff"], d.rebase(f["vma_vm_file"]))
    if vma_next is not None:
        struct.pack_into("<Q", b, 136, vma_next)
    return phys_rec(d.pa(vma_va), bytes(b)), f["vma_vm_start"], f["vma_vm_end"]


def vma_list_seed(d, pid, name):
    """A pre-6.1 kernel's mm->mmap list, re-encoded (vm_next at 136)."""
    _, _, _, mm, _ = task_of(d, pid)
    vs = []
    v = d.u64(mm + d.lo["mm_mmap"])
    while v and len(vs) < 65536:
        vs.append(v)
        v = d.u64(v + d.lo["vma_vm_next"])
    recs = b""
    spans = []
    for i, v in enumerate(vs):
        nxt = d.mock_va(vs[i + 1]) if i + 1 < len(vs) else 0
        r, s_, e = vma_record(d, v, nxt)
        recs += r
        spans.append((s_, e))
    probe = [spans[0][0], spans[len(spans) // 2][0] + 0x1000, spans[-1][1] - 1]
    vidx = d.vidx if d.vidx in (0, 1) else 1
    hdr = bytes([(1 if d.levels == 5 else 0) | vidx << 1]) + struct.pack("<4Q", d.mock_va(vs[0]), *probe)
    write(f"vma/lab-list-{name}", hdr + recs)


def vma_seeds(d, pid, name):
    _, _, _, mm, _ = task_of(d, pid)
    if d.lo.get("mm_mm_mt", -1) < 0:  # ABSENT: the pre-6.1 list
        return vma_list_seed(d, pid, name)
    root = d.u64(mm + d.lo["mm_mm_mt"] + d.lo["maple_tree_ma_root"])
    recs = b""
    vmas = []
    todo = [root]
    while todo:
        enode = todo.pop()
        if (enode & 3) != 2 or enode < 4096:
            continue
        node = enode & ~0xff
        typ = (enode >> 3) & 0xf
        raw = d.kv(node, 256)
        recs += phys_rec(d.pa(node), d.rebase_bytes(raw))
        slot_off, nslots = {0: (8, 31), 1: (128, 16), 2: (128, 16), 3: (80, 10)}.get(typ, (0, 0))
        for i in range(nslots):
            v, = struct.unpack_from("<Q", raw, slot_off + 8 * i)
            if not v:
                continue
            if not d.pob <= (v & ~0xff) < d.pob + WINDOW:
                continue  # metadata in the last slot, XA_ZERO_ENTRY
            if typ in (2, 3):
                todo.append(v | 2)  # child (bits 0-1 clear in a slot)
            elif v & 7 == 0:
                vmas.append(v)
    vrecs = b""
    starts = []
    for v in vmas:
        r, s, e = vma_record(d, v)
        vrecs += r
        starts.append((s, e))
    starts.sort()
    probe = [starts[0][0], starts[len(starts) // 2][0] + 0x1000, starts[-1][1] - 1]
    hdr = bytes([(1 if d.levels == 5 else 0) | d.vidx << 1])
    hdr += struct.pack("<4Q", d.rebase(root), *probe)
    write(f"vma/lab-maple-{name}", hdr + recs + vrecs)
    # the same VMAs as a pre-6.1 mm->mmap list (5.15 layout)
    vs = sorted(vmas, key=lambda v: d.u64(v + d.lo["vma_vm_start"]))
    lrecs = b""
    for i, v in enumerate(vs):
        nxt = d.mock_va(vs[i + 1]) if i + 1 < len(vs) else 0
        lrecs += vma_record(d, v, nxt)[0]
    hdr = bytes([(1 if d.levels == 5 else 0) | 1 << 1]) + struct.pack("<4Q", d.mock_va(vs[0]), *probe)
    write(f"vma/lab-list-{name}", hdr + lrecs)


# --- task: the task list and the pid idr ------------------------------------------------

def task_seed(d):
    lo = d.lo
    head = d.init_task + lo["task_tasks"]
    tasks = []
    p = d.u64(head)
    while p != head and len(tasks) < 512:
        tasks.append(p - lo["task_tasks"])
        p = d.u64(p)
    recs = b""
    for i, t in enumerate(tasks):
        nxt = d.mock_va(tasks[i + 1]) + 0x400 if i + 1 < len(tasks) else SEED_IMAGE + 0x400
        prv = d.mock_va(tasks[i - 1]) + 0x400 if i else SEED_IMAGE + 0x400
        pid = struct.unpack("<i", d.kv(t + lo["task_pid"], 4))[0]
        tgid = struct.unpack("<i", d.kv(t + lo["task_tgid"], 4))[0]
        mm = d.u64(t + lo["task_mm"])
        comm = d.kv(t + lo["task_comm"], 16)
        flags = d.kv(t + lo["task_flags"], 4)
        base = d.pa(t)
        recs += phys_rec(base + 0x28, b"\0" * 4 + flags)
        recs += phys_rec(base + 0x400, struct.pack("<QQ", nxt, prv))
        recs += phys_rec(base + 0x450, struct.pack("<Q", d.rebase(mm)))
        recs += phys_rec(base + 0x500, struct.pack("<ii", pid, tgid))
        recs += phys_rec(base + 0x700, comm)
    # init_pid_ns.idr: xa_nodes verbatim, struct pids re-encoded
    ns = d.prog["init_pid_ns"]
    xa_head = int(ns.idr.idr_rt.xa_head.value_())
    todo = [xa_head]
    pids = []
    while todo:
        e = todo.pop()
        if e & 3 == 2 and e > 4096:
            node = e & ~3
            raw = d.kv(node, 576)
            recs += phys_rec(d.pa(node), d.rebase_bytes(raw))
            shift = raw[0]
            for i in range(64):
                v, = struct.unpack_from("<Q", raw, 40 + 8 * i)
                if v and shift:
                    todo.append(v)
                elif v and v & 3 == 0:
                    pids.append(v)
        elif e and e & 3 == 0:
            pids.append(e)
    for pv in pids:
        pobj = drgn.Object(d.prog, "struct pid", address=pv)
        nr = int(pobj.numbers[0].nr)
        first = int(pobj.tasks[0].first.value_())
        task = 0
        if first:
            off = drgn.offsetof(d.prog.type("struct task_struct"), "pid_links")
            task = d.mock_va(first - off) + 0x600
        recs += phys_rec(d.pa(pv) + 32, struct.pack("<Q", task))
        recs += phys_rec(d.pa(pv) + 112, struct.pack("<I", nr) + b"\0" * 4)
    hdr = bytes([(1 if d.levels == 5 else 0) | d.vidx << 1])
    hdr += struct.pack("<4Q", d.mock_va(tasks[0]) + 0x400, d.mock_va(tasks[-1]) + 0x400,
                       d.rebase(xa_head), 1 | 200 << 32)
    write("task/lab-tasks", hdr + recs)
    # without the idr (the list alone)
    write("task/lab-tasks-no-idr", hdr[:17] + struct.pack("<Q", 0) + hdr[25:] + recs)


# --- page: memmap runs ------------------------------------------------------------------

def page_seeds(d, fx):
    want = {}
    for m in manifest(fx):
        for p in m.get("pages", [])[:1]:
            if p.get("pfn") and m["kind"] not in want:
                want[m["kind"]] = int(p["pfn"])
    # the kernel's own pages: init_task's (slab/kernel image), a page table
    _, _, _, mm, _ = task_of(d, int(manifest(fx)[0]["pid"]))
    want["pgtable"] = d.pa(d.u64(mm + d.lo["mm_pgd"])) >> 12
    want["task_struct_slab"] = d.pa(task_of(d, int(manifest(fx)[0]["pid"]))[0]) >> 12
    kinds = ("anon_private_written", "thp_anon", "hugetlb_anon", "huge_zero_page", "anon_zero_page",
             "devmem_shared_lowram", "file_readonly", "swap_anon", "pgtable", "task_struct_slab",
             "io_uring_sq_ring", "vvar")
    psz = 64
    for k in kinds:
        if k not in want:
            continue
        pfn = want[k] & ~31  # a run of 64 around it
        raw = d.kv(d.vmemmap + pfn * psz, 64 * psz)
        hdr = bytes([(1 if d.levels == 5 else 0) | d.vidx << 1])
        hdr += struct.pack("<4Q", pfn & IMG_MASK, 63, (want[k] & IMG_MASK), 0)
        write(f"page/lab-{k}", hdr + rec(0x80000000 | (pfn & IMG_MASK), 0, d.rebase_bytes(raw)))


# --- kdump: file headers ----------------------------------------------------------------

def kdump_seeds(fx):
    for fmt in ("kdump-real", "kdump-zlib"):
        path = fx.dumps[fmt]
        with open(path, "rb") as f:
            hdr = f.read(464)
            bs, sub, bmb = struct.unpack_from("<iiI", hdr, 428)
            desc = (1 + sub + bmb) * bs
            f.seek(0)
            head = f.read(min(desc + 24 * 16, 80 << 10))
        write(f"kdump/lab-{fmt}-head", head)
    path = fx.dumps["elf-nopaging"]
    with open(path, "rb") as f:
        raw = f.read(1 << 16)
    phoff, = struct.unpack_from("<Q", raw, 32)
    phnum, = struct.unpack_from("<H", raw, 56)
    end = phoff + 56 * phnum
    for i in range(phnum):
        t, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", raw, phoff + 56 * i)
        if t == 4:
            end = max(end, off + filesz)
    write("kdump/lab-elf-headers", raw[:min(end, len(raw))])
    write("kdump/whole-elf-small", whole_elf(path))


def whole_elf(path):
    """A whole ELF core as QEMU writes one (its ELF header, notes and section
    name table) of two PT_LOADs of the dump's pages, 8 at 0 and 4 at 1 MiB:
    one src/readers/elfcore.c opens without libkdumpfile."""
    with open(path, "rb") as f:
        raw = f.read(1 << 16)
        phoff, = struct.unpack_from("<Q", raw, 32)
        phnum, = struct.unpack_from("<H", raw, 56)
        notes = b""
        for i in range(phnum):
            t, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", raw, phoff + 56 * i)
            if t == 4:
                f.seek(off)
                notes = f.read(filesz)
        loads = []
        for pa, pages in ((0, 8), (1 << 20, 4)):
            for i in range(phnum):
                t, _, off, _, ppa, filesz = struct.unpack_from("<IIQQQQ", raw, phoff + 56 * i)
                if t == 1 and ppa <= pa and pa + pages * 4096 <= ppa + filesz:
                    f.seek(off + pa - ppa)
                    loads.append((pa, f.read(pages * 4096)))
                    break
    shoff = 64
    phoff = shoff + 2 * 64
    noteoff = phoff + 3 * 56
    stroff = noteoff + len(notes)
    strtab = b"\0.shstrtab\0"
    dataoff = (stroff + len(strtab) + 4095) & ~4095
    eh = bytearray(raw[:64])
    struct.pack_into("<QQ", eh, 32, phoff, shoff)
    struct.pack_into("<HHHHHH", eh, 52, 64, 56, 3, 64, 2, 1)
    sh = bytes(64) + struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, stroff, len(strtab), 0, 0, 1, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, noteoff, 0, 0, len(notes), len(notes), 0)
    data = b""
    for pa, blob in loads:
        ph += struct.pack("<IIQQQQQQ", 1, 7, dataoff + len(data), 0xffff888000000000 + pa, pa,
                          len(blob), len(blob), 0)
        data += blob
    head = bytes(eh) + sh + ph + notes + strtab
    return head + bytes(dataoff - len(head)) + data


def vmcoreinfo_seeds():
    for key in lab.default_set():
        d = lab.fixture_dir(*key)
        if not os.path.exists(os.path.join(d, "complete")):
            continue
        fx = lab.fixture(*key)
        from pfnscope import _core
        k = _core.KdumpFile(fx.dumps["kdump-real"])
        text = k.vmcoreinfo
        k.close()
        write(f"vmcoreinfo/lab-{'-'.join(key)}", text.encode())


def main():
    """The default fixture gives every corpus; another (KERNEL CPU SCENARIO)
    adds its page tables, VMAs, tasks and memmap runs as lab-KERNEL-*."""
    global PREFIX
    key = tuple(sys.argv[1:4]) if len(sys.argv) >= 4 else ("6.1", "max", "healthy")
    default = key == ("6.1", "max", "healthy")
    if not default:
        PREFIX = key[0]
    fx = lab.fixture(*key)
    d = Dump(fx)
    walk_seeds(d, fx)
    pid = max(m["pid"] for m in manifest(fx))
    vma_seeds(d, int(pid), "scenarios")
    vma_seeds(d, 1, "init")
    task_seed(d)
    page_seeds(d, fx)
    if default:
        kdump_seeds(fx)
        vmcoreinfo_seeds()


if __name__ == "__main__":
    main()
