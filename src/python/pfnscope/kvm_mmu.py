"""KVM's own view of guest memory (docs/kvm.md): the VMs of a kernel
(`vm_list`), their memslots (gfn range -> host virtual address) and the leaf
SPTEs of their TDP MMU roots, each cross-referenced with what the host maps
at that address now.

KVM's types live in kvm.ko and kvm-amd.ko / kvm-intel.ko, not in vmlinux, so
their debug files are needed (given with -s, or found beside the vmlinux and
under /usr/lib/debug/lib/modules/RELEASE/).  They are loaded into a drgn
Program of their own, for types only; addresses come from the target's
module list (`mod->kallsyms`, whose symbol values are the relocated
addresses), so no module relocation is needed (drgn 0.0.22 cannot relocate
modules of 6.4+ kernels: `struct module` lost `core_size`).
"""
from __future__ import annotations

import glob
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple

import drgn

from .errors import PfnscopeError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
LEVEL_NAMES = {1: "pte", 2: "pmd", 3: "pud", 4: "p4d", 5: "pgd"}

# arch/x86/kvm/mmu/spte.h
SPTE_MMU_PRESENT_MASK = 1 << 11        # "KVM: x86/mmu: Use a dedicated bit to track shadow/MMU-present SPTEs" (v5.13)
SPTE_TDP_AD_SHIFT = 52
SPTE_TDP_AD_MASK = 3 << SPTE_TDP_AD_SHIFT
SPTE_TDP_AD_DISABLED = 1 << SPTE_TDP_AD_SHIFT
PT_PRESENT_MASK = 1 << 0
PT_WRITABLE_MASK = 1 << 1
PT_PAGE_SIZE_MASK = 1 << 7
# REMOVED_SPTE (v5.12), renamed FROZEN_SPTE and or'ed with SHADOW_NONPRESENT_VALUE
# (BIT_ULL(63) on x86-64, "KVM: x86/mmu: Set a non-zero value for non-present SPTEs", v6.10)
REMOVED_SPTE_LOW = 0x5a0
SHADOW_NONPRESENT_VALUE_6_10 = 1 << 63

# spte.c globals read from the target (set by kvm_mmu_reset_all_pte_masks and
# the vendor module: the same decoding the running kernel used)
MASK_SYMBOLS = ("shadow_host_writable_mask", "shadow_mmu_writable_mask", "shadow_nx_mask",
                "shadow_x_mask", "shadow_user_mask", "shadow_accessed_mask", "shadow_dirty_mask",
                "shadow_mmio_value", "shadow_mmio_mask", "shadow_present_mask", "shadow_me_mask",
                "shadow_acc_track_mask")
KVM_SYMBOLS = ("vm_list", "tdp_mmu_enabled", "enable_mmio_caching") + MASK_SYMBOLS

_PLATFORM = drgn.Platform(drgn.Architecture.X86_64,
                          drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN)


def debug_files(release: str, given: Iterable[str] = (), vmlinux: Optional[str] = None) -> List[str]:
    """kvm.ko and the vendor module's debug files: those given, else beside the
    vmlinux, else under /usr/lib/debug/lib/modules/RELEASE/."""
    out = [g for g in given if os.path.basename(g).startswith("kvm")]
    if out:
        for g in out:
            if not os.path.isfile(g):
                raise PfnscopeError(g, "no such module debug file")
        return out
    dirs = []
    if vmlinux:
        dirs.append(os.path.dirname(os.path.abspath(vmlinux)))
    dirs.append(f"/usr/lib/debug/lib/modules/{release}")
    for d in dirs:
        found = sorted(glob.glob(os.path.join(d, "kvm.ko*")) +
                       glob.glob(os.path.join(d, "**", "kvm.ko*"), recursive=True))
        if found:
            base = os.path.dirname(found[0])
            return [found[0]] + sorted(glob.glob(os.path.join(base, "kvm-*.ko*")))
    raise PfnscopeError("kvm.ko", "no debug file for KVM's module (give -s kvm.ko -s kvm-amd.ko, "
                        f"or install the debug package: /usr/lib/debug/lib/modules/{release}/)")


class KvmTypes:
    """Types from the KVM modules' debug files (a drgn Program with no memory)."""

    def __init__(self, files: List[str]) -> None:
        self.prog = drgn.Program(_PLATFORM)
        try:
            self.prog.load_debug_info(files)
        except drgn.MissingDebugInfoError as e:
            raise PfnscopeError(files[0], f"cannot load KVM debug info: {e}")
        try:
            self.kvm = self.prog.type("struct kvm")
            self.slots = self.prog.type("struct kvm_memslots")
            self.slot = self.prog.type("struct kvm_memory_slot")
            self.sp = self.prog.type("struct kvm_mmu_page")
        except LookupError as e:
            raise PfnscopeError(files[0], f"KVM debug info lacks a type: {e}")
        self.off_vm_list = drgn.offsetof(self.kvm, "vm_list")
        self.off_roots = drgn.offsetof(self.kvm, "arch.tdp_mmu_roots")
        self.off_link = drgn.offsetof(self.sp, "link")

    def obj(self, t: drgn.Type, data: bytes) -> drgn.Object:
        return drgn.Object.from_bytes_(self.prog, t, data)

    def has(self, t: drgn.Type, member: str) -> bool:
        try:
            drgn.offsetof(t, member)
            return True
        except LookupError:
            return False


def module_symbols(prog: drgn.Program, want: Iterable[str]) -> Dict[str, int]:
    """Addresses of the symbols WANT in loaded modules, from each module's
    kallsyms symbol table (`mod->kallsyms`, kernel/module/kallsyms.c
    add_kallsyms: st_value is the final address)."""
    from drgn.helpers.linux.list import list_for_each_entry
    want = set(want)
    out: Dict[str, int] = {}
    for mod in list_for_each_entry("struct module", prog["modules"].address_of_(), "list"):
        name = mod.name.string_().decode(errors="replace")
        if not (name == "kvm" or name.startswith("kvm_")):
            continue
        ks = mod.kallsyms
        n = int(ks.num_symtab)
        if n <= 0 or n > 1 << 20:
            continue
        syms = prog.read(int(ks.symtab), 24 * n)
        ents = list(struct.iter_unpack("<IBBHQQ", syms))
        hi = max(e[0] for e in ents) + 256
        strtab = int(ks.strtab)
        try:
            strs = prog.read(strtab, hi)
        except drgn.FaultError:
            strs = b"".join(prog.read(strtab + i, min(PAGE_SIZE, hi - i)) for i in range(0, hi, PAGE_SIZE))
        for st_name, _info, _other, shndx, value, _size in ents:
            if shndx == 0:
                continue
            end = strs.find(b"\0", st_name)
            s = strs[st_name:end].decode(errors="replace")
            if s in want and s not in out:
                out[s] = value
    return out


class Memslot:
    __slots__ = ("id", "as_id", "base_gfn", "npages", "hva", "flags", "address")

    def __init__(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def to_dict(self) -> dict:
        return {"id": self.id, "as_id": self.as_id, "base_gfn": self.base_gfn,
                "npages": self.npages, "hva": f"{self.hva:#x}", "flags": slot_flag_names(self.flags)}


def slot_flag_names(flags: int) -> List[str]:
    # include/uapi/linux/kvm.h KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_MEM_GUEST_MEMFD
    names = [(1, "log_dirty_pages"), (2, "readonly"), (4, "guest_memfd")]
    return [n for b, n in names if flags & b]


class Vm:
    """One `struct kvm`."""

    def __init__(self, kvm: "Kvm", address: int, obj: drgn.Object) -> None:
        self.kvm = kvm
        self.address = address
        self.obj = obj
        self.mm = int(obj.mm)
        self.pid = kvm.pid_of_mm(self.mm)
        self.userspace_pid = int(obj.userspace_pid) if kvm.types.has(kvm.types.kvm, "userspace_pid") else None
        self.memslots = kvm.read_memslots(obj)
        self.roots = kvm.read_roots(address)

    def to_dict(self) -> dict:
        return {"type": "vm", "pid": self.pid, "kvm": f"{self.address:#x}", "mm": f"{self.mm:#x}",
                "memslots": [s.to_dict() for s in self.memslots],
                "roots": [{"level": r["level"], "hpa": f"{r['hpa']:#x}", "smm": r["smm"],
                           "invalid": r["invalid"], "sp": f"{r['sp']:#x}"} for r in self.roots],
                "tdp_mmu": self.kvm.tdp_mmu}

    def slot_for(self, gfn: int, as_id: int = 0) -> Optional[Memslot]:
        slots = [s for s in self.memslots if s.as_id == as_id]
        for s in slots:
            if s.base_gfn <= gfn < s.base_gfn + s.npages:
                return s
        return None


def kernel_program(sess) -> Optional[drgn.Program]:
    """A drgn Program with the kernel's DWARF over the session's memory (KVM's
    module list, task list and struct pages are read through it), or None.
    A front end whose own types are not drgn's (GDB) makes one on demand
    (sess.debug_program); a cached layout loads the debug vmlinux here."""
    from . import layoutcache
    from . import source as source_mod
    make = getattr(sess, "debug_program", None)
    if make is not None:
        return make()
    src = sess.layout_source
    if isinstance(src, layoutcache.CachedSource):
        try:
            src = src.real_source()
        except PfnscopeError:
            return None
    return sess.prog if isinstance(src.types, source_mod.DrgnTypes) else None


def drgn_types(sess) -> bool:
    """Whether KVM's tables can be read in this session (kernel_program)."""
    return kernel_program(sess) is not None


MODULE_NAME_LEN = 56    # include/linux/module.h: 64 - sizeof(unsigned long)


def kvm_module_loaded(sess) -> Optional[bool]:
    """Whether a module named "kvm" is on the kernel's module list (the
    `modules` list_head, struct module's list and name), read with the
    session's own layout source and kernel reads: no DWARF is loaded for a
    kernel without KVM (a cached layout answers these from its file).  None
    when it cannot be told (then kernel_program decides)."""
    from .extension import core
    src = sess.layout_source
    try:
        off_list = src.types.offsetof("struct module", "list")
        off_name = src.types.offsetof("struct module", "name")
        head = src.symbols.address("modules")
    except (PfnscopeError, LookupError):
        return None
    if off_list is None or off_name is None or not head:
        return None
    read = sess.target.read_kvirt
    try:
        node = struct.unpack("<Q", read(head, 8))[0]
        for _ in range(1 << 16):
            if node == head or not node:
                return False
            name = read(node - off_list + off_name, MODULE_NAME_LEN).split(b"\0", 1)[0]
            if name == b"kvm":
                return True
            node = struct.unpack("<Q", read(node, 8))[0]
    except core().Error:
        return None
    return None


class Kvm:
    """KVM in one target (a pfnscope Session with drgn types)."""

    def __init__(self, sess, files: Iterable[str] = ()) -> None:
        self.sess = sess
        self.prog = kernel_program(sess)
        if self.prog is None:
            raise PfnscopeError("kvm", "needs the debug vmlinux (KVM's structures are read with drgn), "
                                "not the kernel's BTF")
        release = sess.vmci.get("OSRELEASE") if hasattr(sess.vmci, "get") else None
        self.release = release or _uts_release(self.prog)
        self.syms = module_symbols(self.prog, KVM_SYMBOLS)
        if "vm_list" not in self.syms:
            raise PfnscopeError("kvm", "the kvm module is not loaded in this kernel (no vm_list)")
        self.files = debug_files(self.release, files, getattr(sess, "vmlinux", None))
        self.types = KvmTypes(self.files)
        self.masks = {k: self.prog.read_u64(self.syms[k]) for k in MASK_SYMBOLS if k in self.syms}
        self.tdp_mmu = None
        if "tdp_mmu_enabled" in self.syms:  # a module parameter from v6.3
            self.tdp_mmu = bool(self.prog.read_u8(self.syms["tdp_mmu_enabled"]))
        try:
            self.physical_mask = int(self.prog["physical_mask"])
        except (KeyError, LookupError):
            self.physical_mask = (1 << 52) - 1
        self.base_addr_mask = self.physical_mask & ~(PAGE_SIZE - 1) & ((1 << 52) - 1)
        self.nonpresent = SHADOW_NONPRESENT_VALUE_6_10 if _version(self.release) >= (6, 10) else 0
        self.removed = self.nonpresent | REMOVED_SPTE_LOW
        self.page_offset = int(self.prog["page_offset_base"])
        self._tasks = None
        self._pages = _PageReader(self.prog)

    # --- structure reads ----------------------------------------------------
    def pid_of_mm(self, mm: int) -> Optional[int]:
        if self._tasks is None:
            self._tasks = {}
            for t in self.sess.tasks():
                self._tasks.setdefault(t[3], t[1])
        return self._tasks.get(mm)

    def vms(self) -> List[Vm]:
        head = self.syms["vm_list"]
        out = []
        node = self.prog.read_u64(head)
        seen = 0
        while node != head:
            addr = node - self.types.off_vm_list
            data = self.prog.read(addr, self.types.kvm.size)
            out.append(Vm(self, addr, self.types.obj(self.types.kvm, data)))
            node = self.prog.read_u64(node)
            seen += 1
            if seen > 4096:
                raise PfnscopeError("vm_list", "list does not end (corrupt?)")
        return out

    def read_memslots(self, kobj: drgn.Object) -> List[Memslot]:
        T = self.types
        out: List[Memslot] = []
        ms = kobj.memslots
        n_as = len(ms) if ms.type_.kind == drgn.TypeKind.ARRAY else 1
        for as_id in range(n_as):
            p = int(ms[as_id]) if n_as > 1 or ms.type_.kind == drgn.TypeKind.ARRAY else int(ms)
            if not p:
                continue
            so = T.obj(T.slots, self.prog.read(p, T.slots.size))
            idx = int(so.node_idx)
            node_off = drgn.offsetof(T.slot, "gfn_node") + idx * 24  # struct rb_node
            stack = [int(so.gfn_tree.rb_node)]
            while stack:
                n = stack.pop()
                if not n:
                    continue
                saddr = n - node_off
                s = T.obj(T.slot, self.prog.read(saddr, T.slot.size))
                out.append(Memslot(id=int(s.id), as_id=int(s.as_id), base_gfn=int(s.base_gfn),
                                   npages=int(s.npages), hva=int(s.userspace_addr),
                                   flags=int(s.flags), address=saddr))
                stack.append(self.prog.read_u64(n + 8))    # rb_right
                stack.append(self.prog.read_u64(n + 16))   # rb_left
        out.sort(key=lambda s: (s.as_id, s.base_gfn))
        return out

    def read_roots(self, kvm_addr: int) -> List[dict]:
        T = self.types
        head = kvm_addr + T.off_roots
        out = []
        node = self.prog.read_u64(head)
        while node != head and node:
            sp = node - T.off_link
            o = T.obj(T.sp, self.prog.read(sp, T.sp.size))
            role = o.role
            spt = int(o.spt)
            out.append({"sp": sp, "spt": spt, "hpa": spt - self.page_offset,
                        "level": int(role.level), "smm": bool(int(role.smm)),
                        "invalid": bool(int(role.invalid)), "gfn": int(o.gfn)})
            node = self.prog.read_u64(node)
            if len(out) > 1024:
                raise PfnscopeError(f"kvm {kvm_addr:#x}", "tdp_mmu_roots does not end")
        return out

    # --- SPTEs ----------------------------------------------------------------
    def decode(self, raw: int, level: int) -> dict:
        """A leaf SPTE's bits, per arch/x86/kvm/mmu/spte.h with the masks the
        target's KVM set (shadow_*_mask)."""
        m = self.masks
        present = bool(raw & SPTE_MMU_PRESENT_MASK)   # is_shadow_present_pte
        mmio = bool(m.get("shadow_mmio_value")) and \
            (raw & m.get("shadow_mmio_mask", 0)) == m["shadow_mmio_value"]  # is_mmio_spte
        removed = raw == self.removed                  # is_removed_spte / is_frozen_spte
        d = {"present": present, "mmio": mmio and not present, "removed": removed,
             "hw_present": bool(raw & m.get("shadow_present_mask", PT_PRESENT_MASK))}
        if present:
            ad = (raw & SPTE_TDP_AD_MASK) != SPTE_TDP_AD_DISABLED   # spte_ad_enabled
            x, nx = m.get("shadow_x_mask", 0), m.get("shadow_nx_mask", 0)
            d.update({
                "writable": bool(raw & PT_WRITABLE_MASK),          # is_writable_pte
                "executable": (raw & (x | nx)) == x,               # is_executable_pte
                "accessed": bool(raw & m.get("shadow_accessed_mask", 0)) if ad and m.get("shadow_accessed_mask") else None,
                "dirty": bool(raw & m.get("shadow_dirty_mask", 0)) if ad and m.get("shadow_dirty_mask") else None,
                "host_writable": bool(raw & m.get("shadow_host_writable_mask", 0)),
                "mmu_writable": bool(raw & m.get("shadow_mmu_writable_mask", 0)),
                "ad_disabled": not ad,
            })
        return d

    def leaves(self, root: dict) -> List[Tuple[int, int, int]]:
        """(gfn, level, raw) of every MMU-present leaf SPTE under ROOT, one
        512-entry table per read, scanned by the C core (pfs_spte_scan,
        src/core/spte.c) as tdp_iter.c steps through it."""
        out: List[Tuple[int, int, int]] = []
        stack = [(root["hpa"], root["level"], root["gfn"])]
        while stack:
            hpa, level, gfn0 = stack.pop()
            try:
                buf = self.prog.read(hpa, PAGE_SIZE, True)
            except drgn.FaultError:
                out.append((gfn0, level, None))
                continue
            lv, ch = scan_table(buf, level, gfn0)
            out.extend(lv)
            stack.extend((raw & self.base_addr_mask, level - 1, gfn) for gfn, _l, raw in ch)
        out.sort()
        return out

    def sptes(self, vm: Vm, gfn: Optional[int] = None, pfns: Optional[Tuple[int, int]] = None,
              host: bool = True) -> List[dict]:
        """spte records of VM's valid roots (see docs/kvm.md)."""
        if self.tdp_mmu is False:
            raise PfnscopeError(f"kvm {vm.address:#x}", "TDP MMU off: the shadow MMU is not supported")
        if not vm.roots and self.tdp_mmu is None:
            raise PfnscopeError(f"kvm {vm.address:#x}", "no TDP MMU roots (shadow MMU not supported)")
        recs = []
        for root in vm.roots:
            if root["invalid"]:
                continue
            as_id = 1 if root["smm"] else 0
            for g, level, raw in self.leaves(root):
                if raw is None:
                    recs.append({"type": "spte", "pid": vm.pid, "kvm": f"{vm.address:#x}", "gfn": g,
                                 "level": LEVEL_NAMES.get(level, str(level)), "raw": None,
                                 "unreadable": True, "diagnoses": []})
                    continue
                npages = 1 << (9 * (level - 1))
                if gfn is not None and not g <= gfn < g + npages:
                    continue
                pfn = (raw & self.base_addr_mask) >> PAGE_SHIFT
                if pfns is not None and (pfn > pfns[1] or pfn + npages - 1 < pfns[0]):
                    continue
                r = {"type": "spte", "pid": vm.pid, "kvm": f"{vm.address:#x}", "as_id": as_id,
                     "root": f"{root['hpa']:#x}", "gfn": g, "level": LEVEL_NAMES.get(level, str(level)),
                     "raw": f"{raw:#x}", "pfn": pfn}
                r.update(self.decode(raw, level))
                slot = vm.slot_for(g, as_id)
                r["slot"] = None if slot is None else slot.id
                r["hva"] = None if slot is None else f"{slot.hva + ((g - slot.base_gfn) << PAGE_SHIFT):#x}"
                recs.append(r)
        if host:
            self._cross_reference(vm, recs)
        return recs

    def _cross_reference(self, vm: Vm, recs: List[dict]) -> None:
        """Per SPTE: the host leaf at its hva now (one walk per memslot range),
        the struct page of the SPTE's pfn, KVM's reference verdict and the
        diagnoses."""
        from . import api
        from .target import core
        host: Dict[int, dict] = {}
        host_error = None
        if vm.mm and vm.pid is not None:
            try:
                vmas = self.sess.vmas(vm.mm)
                for slot in vm.memslots:
                    lo, hi = slot.hva, slot.hva + (slot.npages << PAGE_SHIFT)
                    for vt in vmas:
                        if vt[2] <= lo or vt[1] >= hi:
                            continue
                        for e in self.sess.target.walk(vm.mm, vt, max(lo, vt[1]), min(hi, vt[2]), 0):
                            d = api.Entry(e, vm.pid, vt[1]).to_dict()
                            host[int(d["addr"], 16)] = d
            except core().Error as e:
                # the VMM's page tables cannot be read (a filtered dump): no
                # host side, and no diagnosis that needs it
                host_error = str(e)
        self._pages.prefetch([r["pfn"] for r in recs if r.get("pfn") is not None])
        for r in recs:
            if r.get("raw") is None:
                continue
            hva = None if r["hva"] is None else int(r["hva"], 16)
            h = host.get(hva) if hva is not None else None
            r["host"] = h
            if host_error is not None:
                r["host_error"] = host_error
            r["page"] = self._pages.get(r["pfn"])
            kv = (h or {}).get("consumers", {}).get("kvm")
            r["kvm_ref"] = None if kv is None else kv in ("page", "pfn_ref")
            r["diagnoses"] = spte_diagnoses(r, h, r["page"], host_known=host_error is None)


# code -> severity (docs/diagnoses.md, the KVM table)
KVM_DIAG_CODES = (("KVM_STALE_SPTE", "critical"), ("KVM_SPTE_FREED_PAGE", "critical"),
                  ("KVM_SPTE_WRITABLE_HOST_RO", "high"), ("KVM_REF_ON_SPECIAL", "high"))
_SEV = dict(KVM_DIAG_CODES)


def _diag(code: str) -> dict:
    return {"code": code, "severity": _SEV[code]}


def spte_diagnoses(r: dict, host: Optional[dict], page: Optional[dict],
                   host_known: bool = True) -> List[dict]:
    """The KVM_* diagnoses of one leaf SPTE (docs/diagnoses.md).  host_known:
    the VMM's page tables were read (else only the page-based one is given)."""
    out = []
    if not r.get("present"):
        return out
    if not host_known:
        if page is not None and (page.get("free") or page.get("refcount") == 0) and not page.get("reserved"):
            out.append(_diag("KVM_SPTE_FREED_PAGE"))
        return out
    # KVM_STALE_SPTE: the SPTE maps a pfn the host pte at its hva does not map
    # now: an invalidation (kvm_mmu_notifier_invalidate_range_start ->
    # kvm_unmap_gfn_range) that should have zapped it did not happen.
    if r.get("hva") is not None and (host is None or host.get("kind") != "present"
                                     or host.get("pfn") != r["pfn"]):
        out.append(_diag("KVM_STALE_SPTE"))
    # KVM_SPTE_FREED_PAGE: the SPTE maps a page free in the buddy allocator or
    # with refcount 0 (the guest reads and writes memory the host reuses)
    if page is not None and (page.get("free") or page.get("refcount") == 0) and not page.get("reserved"):
        out.append(_diag("KVM_SPTE_FREED_PAGE"))
    # KVM_SPTE_WRITABLE_HOST_RO: make_spte() only sets PT_WRITABLE_MASK with
    # host_writable (hva_to_pfn's writable), i.e. where the host pte is writable
    if r.get("writable") and host is not None and host.get("kind") == "present" and not host.get("writable"):
        out.append(_diag("KVM_SPTE_WRITABLE_HOST_RO"))
    # KVM_REF_ON_SPECIAL: kvm_pfn_to_refcounted_page() + get_page on a page
    # under a special pte it does not own (case C, before v6.13)
    if host is not None and host.get("special") and r.get("kvm_ref") and \
            (host.get("page") or {}).get("reserved") is False:
        out.append(_diag("KVM_REF_ON_SPECIAL"))
    return out


class _PageReader:
    """struct page facts for pfns (refcount, buddy, reserved), one read per page."""

    def __init__(self, prog: drgn.Program) -> None:
        self.prog = prog
        self.cache: Dict[int, Optional[dict]] = {}
        try:
            self.page_t = prog.type("struct page")
            self.vmemmap = int(prog["vmemmap_base"])
            self.max_pfn = int(prog["max_pfn"])
        except (KeyError, LookupError):
            self.page_t = None
        try:
            self.pgty_buddy = prog.constant("PGTY_buddy").value_()   # v6.12 page types
        except (KeyError, LookupError):
            self.pgty_buddy = None

    def prefetch(self, pfns: Iterable[int]) -> None:
        for p in pfns:
            self.get(p)

    def get(self, pfn: int) -> Optional[dict]:
        if pfn in self.cache:
            return self.cache[pfn]
        d = None
        if self.page_t is not None and pfn < self.max_pfn:
            try:
                pg = drgn.Object(self.prog, self.page_t, address=self.vmemmap + pfn * self.page_t.size)
                fo = pg.flags
                # 7.x: memdesc_flags_t { unsigned long f; }
                flags = int(fo.f) if _unaliased(fo.type_).kind == drgn.TypeKind.STRUCT else int(fo)
                rc = int(pg._refcount.counter)
                pt = int(pg.page_type) & 0xffffffff
                try:
                    reserved_bit = self.prog.constant("PG_reserved").value_()
                except LookupError:
                    reserved_bit = None
                if self.pgty_buddy is not None:
                    buddy = (pt >> 24) == self.pgty_buddy
                else:
                    # v6.1: PAGE_TYPE_BASE 0xf0000000, PG_buddy 0x80, bit clear = type set
                    buddy = (pt & (0xf0000000 | 0x80)) == 0xf0000000
                d = {"refcount": rc, "free": buddy, "reserved":
                     bool(flags >> reserved_bit & 1) if reserved_bit is not None else None}
            except drgn.FaultError:
                d = None
        self.cache[pfn] = d
        return d


def scan_table(buf: bytes, level: int, gfn0: int):
    """([(gfn, level, raw)] leaves, [(gfn, level, raw)] child tables) of one
    512-entry table (the C core's pfs_spte_scan: is_shadow_present_pte,
    is_last_spte)."""
    from .extension import core
    return core().spte_scan(buf, level, gfn0)


def _unaliased(t: drgn.Type) -> drgn.Type:
    while t.kind == drgn.TypeKind.TYPEDEF:
        t = t.type
    return t


def _version(release: str) -> Tuple[int, int]:
    try:
        a, b = release.split(".")[:2]
        return int(a), int("".join(c for c in b if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


def _uts_release(prog: drgn.Program) -> str:
    return prog["init_uts_ns"].name.release.string_().decode()
