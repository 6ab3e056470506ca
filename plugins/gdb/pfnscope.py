"""pfnscope inside GDB, over QEMU's gdbstub.

    $ gdb vmlinux                      # the guest kernel's debug vmlinux
    (gdb) target remote /path/to/gdb.sock     # QEMU -gdb unix:PATH,server=on,wait=off
    (gdb) source plugins/gdb/pfnscope.py
    (gdb) pfnscope tasks
    (gdb) pfnscope walk -p 148 -a 0x7f0000000000 --json
    (gdb) pfnscope check --fail-on medium
    (gdb) pfnscope kvm -p 231 --json -s kvm.ko -s kvm-amd.ko
    (gdb) pfnscope rmap 0x2e2f
    (gdb) print $pfnscope_rc           # the CLI's exit status of the last command

Commands and options are the CLI's (`pfnscope --help`), parsed by the same
parser and run by the same code (pfnscope.cli, the C core); output is the
CLI's, --json included.  GDB-only options (before or after the command):
  --kaslr-offset OFF   the kernel's virtual KASLR offset (default: found)
  --reload             forget the cached layout (e.g. after a guest reboot)
The target options -c/-k/--qemu-ram do not apply (the target is GDB's
inferior); -s VMLINUX is ignored (the vmlinux is GDB's own file), -s kvm.ko
-s kvm-amd.ko name KVM's module debug files as in the CLI.

How it works
------------
* Layout: from GDB's types of the loaded vmlinux (gdb.lookup_type, offsets by
  pointer arithmetic on a null pointer, enum values from the type's fields,
  symbol addresses from lookup_global_symbol / minimal symbols): a layout
  source (pfnscope.source.Types and Symbols) like drgn's, BTF's and crash's.
  The values fill the same pfs_layout dict as every front end
  (pfnscope.layout.build_layout), and file and VMA names are read the same
  way (pfnscope.names: d_path, anon_inode:NAME, the maps path column).
* Session: one per inferior (pfnscope.session.SESSIONS, keyed by the
  gdb.Inferior), made again when its connection, the vmlinux or
  --kaslr-offset changes; its caches are dropped before each command, as the
  guest may have run since.
* Physical reads: QEMU's gdbstub "Qqemu.PhyMemMode:1" mode, switched on for
  the duration of one pfnscope command and off again afterwards.  Chosen over
  reading through the direct map (page_offset_base + pa with the inferior's
  virtual reads) because a virtual read is translated with the CR3 of the
  vCPU GDB stopped: with page-table isolation (Debian's default, and on under
  -cpu max) a vCPU stopped in user mode has a CR3 that maps neither the direct
  map nor the kernel image, so direct-map reads would fail or depend on where
  the guest happened to stop.  Physical mode is independent of the vCPU's
  state, reads non-RAM pfns too, and is what the C core wants anyway (it
  translates kernel virtual addresses itself from init_top_pgt).  GDB's own
  view (print, x) is virtual again when the command returns.
* KASLR: the physical load address is found by looking for the vmlinux's own
  linux_banner bytes at every 2 MiB-aligned candidate (CONFIG_PHYSICAL_ALIGN;
  the image's physical offset from _text is fixed).  That gives __pa_symbol()
  of every image symbol without knowing the virtual offset; the kernel's
  VMCOREINFO note (vmcoreinfo_note, a direct-map buffer filled at boot) is
  then read and gives KERNELOFFSET, phys_base and the rest, exactly as a dump
  would.  Symbols are relocated by adding the offset to GDB's (link-time)
  addresses; no add-symbol-file.  --kaslr-offset overrides KERNELOFFSET.
* KVM (`kvm`, the SPTEs of `rmap`): KVM's structures are read by the CLI's
  code (pfnscope.kvm_mmu) through a drgn Program over this session's memory
  (GdbSession.debug_program: the vmlinux's DWARF, relocated by the
  KERNELOFFSET found above, physical reads through the gdbstub), and
  kvm.ko's debug file in a types-only Program, as in the CLI.
* arm64 (run gdb-multiarch): the architecture is the vmlinux's ELF machine
  (pfnscope.arch).  The image is found from the vCPU's TTBR1_EL1, which
  holds the physical address of a page table of the image (swapper_pg_dir;
  the KPTI trampoline's while in user mode), checked against linux_banner;
  kimage_voffset and memstart_addr read from the image give the KASLR offset
  and the linear map (__lm_to_phys), through which the kernel's VMCOREINFO
  note is read: the layout is then pfnscope.arch_arm64's, as for a dump.
"""
from __future__ import annotations

import os
import re
import struct
import sys

import gdb

_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.normpath(os.path.join(_HERE, "..", "..", "src", "python"))
if os.path.isfile(os.path.join(_SRC, "pfnscope", "__init__.py")) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)      # the source tree; else an installed pfnscope

from typing import Iterable, List, Optional, Sequence, Tuple  # noqa: E402

from pfnscope import arch as _arch  # noqa: E402
from pfnscope import arch_arm64 as _arm64  # noqa: E402
from pfnscope import cli as _cli  # noqa: E402
from pfnscope import layout as _layout  # noqa: E402
from pfnscope.errors import PfnscopeError  # noqa: E402
from pfnscope.session import SESSIONS, Session  # noqa: E402
from pfnscope.source import Source, Symbols, Types  # noqa: E402
from pfnscope.vmcoreinfo import VmcoreInfo  # noqa: E402

ABSENT = _layout.ABSENT
U64 = (1 << 64) - 1
SKM = _layout.START_KERNEL_MAP
ALIGN = 2 << 20                 # CONFIG_PHYSICAL_ALIGN (x86-64 default)
SCAN_LIMIT = 64 << 30           # physical load address candidates below this


# --- reading the inferior ---------------------------------------------------

class PhysMode:
    """QEMU gdbstub physical-memory mode for the duration of a with block."""

    def __init__(self) -> None:
        self.on = False

    @staticmethod
    def _packet(p: str) -> str:
        out = gdb.execute(f"maintenance packet {p}", to_string=True)
        m = re.search(r'received: "(.*)"', out)
        return m.group(1) if m else out.strip()

    def __enter__(self) -> "PhysMode":
        r = self._packet("Qqemu.PhyMemMode:1")
        if r != "OK":
            raise PfnscopeError("gdbstub", f"Qqemu.PhyMemMode not supported (reply {r!r}): "
                                "pfnscope needs QEMU's gdbstub (qemu -gdb / -s)")
        self.on = True
        return self

    def __exit__(self, *exc) -> None:
        if self.on:
            self._packet("Qqemu.PhyMemMode:0")
            self.on = False


def _read_phys(pa: int, n: int) -> bytes:
    """Reader for the C core (PhyMemMode must be on).  A failed read raises:
    the core sees an unreadable range."""
    return bytes(gdb.selected_inferior().read_memory(pa, n))


def _u64(pa: int) -> int:
    return struct.unpack("<Q", _read_phys(pa, 8))[0]


# --- types and symbols from GDB ---------------------------------------------

_ULONG = None


def _ulong() -> gdb.Type:
    global _ULONG
    if _ULONG is None:
        _ULONG = gdb.lookup_type("unsigned long")
    return _ULONG


class GdbTypes(Types):
    """Types of GDB's vmlinux (pfnscope.source.Types); a type's handle is
    its gdb.Type."""
    what = "vmlinux debug info"

    def lookup(self, tname: str) -> Optional[gdb.Type]:
        try:
            return gdb.lookup_type(tname)
        except gdb.error:
            return None

    def type_size(self, t: gdb.Type, tname: str) -> int:
        return int(t.sizeof)

    @staticmethod
    def _member(t: gdb.Type, member: str) -> gdb.Value:
        """((t *)0)->member as a lazy gdb.Value (never read); member may be
        a designator (a.b, a[2].b), anonymous structs/unions are searched by
        GDB.  gdb.Value arithmetic, not parse_and_eval: parsing "struct page"
        in an expression makes GDB expand every compilation unit defining it
        (~12 s on Debian's vmlinux); lookup_type stops at the first."""
        v = gdb.Value(0).cast(t.pointer()).dereference()
        for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", member):
            v = v[int(part[1:-1])] if part.startswith("[") else v[part]
        return v

    def member_offset(self, t: gdb.Type, tname: str, member: str) -> Optional[int]:
        """offsetof(tname, member): the address of the member of a null pointer."""
        try:
            return int(self._member(t, member).address.cast(_ulong()))
        except (gdb.error, KeyError, TypeError, IndexError):
            return None

    def member_array_len(self, t: gdb.Type, tname: str, member: str) -> Optional[int]:
        try:
            mt = self._member(t, member).type.strip_typedefs()
        except (gdb.error, KeyError, TypeError, IndexError):
            return None
        if mt.code != gdb.TYPE_CODE_ARRAY:
            return None
        lo, hi = mt.range()
        return hi - lo + 1

    def type_enumerators(self, t: gdb.Type, tname: str) -> Optional[Iterable[Tuple[str, int]]]:
        t = t.strip_typedefs()
        if t.code != gdb.TYPE_CODE_ENUM:
            return None
        return [(f.name, int(f.enumval)) for f in t.fields()]

    def function_params(self, name: str) -> Optional[List[str]]:
        """Parameter type names of the function name; GDB spells them as
        drgn does ("struct vm_area_struct *")."""
        sym = _symbol(name)
        if sym is None or not sym.is_function:
            return None
        try:
            return [str(f.type) for f in sym.type.fields()]
        except (gdb.error, TypeError):
            return None


def _symbol(name: str) -> Optional[gdb.Symbol]:
    sym = gdb.lookup_global_symbol(name)
    if sym is None:
        sym = gdb.lookup_static_symbol(name)
    return sym


_FUNCS: dict = {}


def _elf_functions(path: str) -> dict:
    """{name: [st_value of each STT_FUNC symbol of that name]} of the
    vmlinux's .symtab, read once per file."""
    if path not in _FUNCS:
        from pfnscope.vmlinux import ElfFile
        out: dict = {}
        elf = ElfFile(path)
        try:
            sym, sec = elf.section(".symtab"), elf.sections.get(".symtab")
            strtab = elf.section(".strtab") or b""
        finally:
            elf.close()
        if sym and sec:
            for st_name, st_info, _, _, st_value, _ in struct.iter_unpack("<IBBHQQ", sym):
                if st_info & 0xF == 2:          # STT_FUNC
                    name = strtab[st_name:strtab.find(b"\0", st_name)].decode("latin-1")
                    out.setdefault(name, []).append(st_value)
        _FUNCS[path] = out
    return _FUNCS[path]


def _function_address(name: str, dwarf: int) -> int:
    """A function's address as the kernel's function pointers hold it: its
    ELF symbol.  The debug info's low_pc may lie past it: arm64 kernels built
    with -fpatchable-function-entry (DYNAMIC_FTRACE_WITH_REGS, commit
    3b23e4991fb6 ("arm64: implement ftrace with regs") (in v5.5)) start
    functions with ftrace's NOPs, which GCC leaves out of the DWARF range."""
    vals = [v for v in _elf_functions(_vmlinux_path()).get(name, ()) if 0 <= dwarf - v <= 16]
    return max(vals) if vals else dwarf


def linked_address(name: str) -> Optional[int]:
    """Link-time (unrelocated) address of a symbol of the vmlinux, from its
    debug info or, for assembler symbols (init_top_pgt, _text), its minimal
    symbol; None when absent."""
    sym = _symbol(name)
    try:
        if sym is not None:
            v = sym.value()
            if sym.is_function:
                return _function_address(name, int(v.address.cast(_ulong())))
            a = v.address if sym.is_variable or v.address is not None else None
            if a is not None:
                return int(a.cast(_ulong()))
    except gdb.error:
        pass
    try:
        return int(gdb.parse_and_eval(f"(unsigned long)&'{name}'"))
    except gdb.error:
        return None


class GdbSymbols(Symbols):
    """Relocated symbols (link address + KASLR offset), values read through
    __pa_symbol (pfnscope.source.Symbols)."""
    what = "vmlinux"

    def __init__(self, voff: int, read_u64) -> None:
        self.delta = voff
        self.read_u64 = read_u64

    def address(self, name: str) -> Optional[int]:
        a = linked_address(name)
        return None if a is None else (a + self.delta) & U64

    def is_pointer(self, name: str) -> Optional[bool]:
        sym = _symbol(name)
        if sym is None or sym.is_function:
            return None
        return sym.type.strip_typedefs().code == gdb.TYPE_CODE_PTR


# --- locating the kernel (KASLR) ---------------------------------------------

def _elf_bytes(path: str, vaddr: int, n: int) -> bytes:
    """n bytes at link address vaddr of the vmlinux file (PT_LOAD segments)."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2:
            raise PfnscopeError(path, "not an ELF64 vmlinux")
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
        for i in range(phnum):
            p_type, _, p_off, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
            if p_type == 1 and p_vaddr <= vaddr and vaddr + n <= p_vaddr + p_filesz:
                f.seek(p_off + vaddr - p_vaddr)
                return f.read(n)
    raise PfnscopeError(path, f"{vaddr:#x} is not in a loaded segment of the vmlinux")


def _vmlinux_path() -> str:
    path = gdb.current_progspace().filename
    if not path:
        raise PfnscopeError("gdb", "no vmlinux loaded: start gdb with the guest's debug vmlinux")
    return path


def _elf_machine(path: str) -> int:
    try:
        with open(path, "rb") as f:
            h = f.read(20)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))
    return struct.unpack_from("<H", h, 18)[0] if len(h) == 20 and h[:4] == b"\x7fELF" else 0


def _register(name: str) -> Optional[int]:
    """A register of the stopped vCPU as QEMU's gdbstub gives it (its
    system registers too, e.g. TTBR1_EL1), None when it has none."""
    try:
        v = gdb.selected_frame().read_register(name)
    except (gdb.error, ValueError):
        return None
    if v.type.code == gdb.TYPE_CODE_VOID:
        return None
    return int(v) & U64


def locate_kernel(kaslr_offset: Optional[int] = None) -> Tuple[VmcoreInfo, int]:
    """(VmcoreInfo, kaslr offset) of the kernel in the inferior, found the
    way of the vmlinux's architecture (pfnscope.arch, from its ELF machine;
    the VMCOREINFO found must say the same).  PhyMemMode must be on."""
    vml = _vmlinux_path()
    machine = _elf_machine(vml)
    arch = _arch.for_machine(machine)
    if arch is None:
        raise PfnscopeError(vml, f"not an x86-64 or arm64 vmlinux (e_machine {machine})")
    locate = {_arch.ARM64: _locate_arm64}.get(arch, _locate_x86_64)
    vmci, voff = locate(vml, kaslr_offset)
    if vmci.arch is not arch:
        raise PfnscopeError(vml, f"an {arch.label} vmlinux, but the guest's VMCOREINFO "
                            f"is an {vmci.arch.label} kernel's")
    return vmci, voff


def _kaslr_offset(vml: str, release: str, vmci: VmcoreInfo, found: int,
                  given: Optional[int]) -> int:
    """The KASLR offset to use: --kaslr-offset when given (with a warning
    when it differs from the kernel's own), else the one found; the vmlinux
    must be the guest's release."""
    if release != vmci.osrelease:
        raise PfnscopeError(vml, f"vmlinux is {release}, the guest runs {vmci.osrelease}")
    if given is not None and given != found:
        gdb.write(f"pfnscope: warning: --kaslr-offset {given:#x} differs from the "
                  f"kernel's KERNELOFFSET {found:#x}\n", gdb.STDERR)
    return found if given is None else given


def _settled(vmci: VmcoreInfo, voff: int, given: Optional[int], top_table: str,
             numbers: dict) -> VmcoreInfo:
    """The kernel's VMCOREINFO with KERNELOFFSET, the arch's numbers that
    depend on it and the kernel's top page table (the kernel's own unless
    --kaslr-offset overrides the offset) set for voff."""
    items = dict(vmci.items)
    items["KERNELOFFSET"] = f"{voff:x}"
    items.update(numbers)
    top = f"{(linked_address(top_table) + voff) & U64:x}"
    if given is not None:
        items[f"SYMBOL({top_table})"] = top
    else:
        items.setdefault(f"SYMBOL({top_table})", top)
    return VmcoreInfo("".join(f"{k}={v}\n" for k, v in items.items()))


def _locate_x86_64(vml: str, kaslr_offset: Optional[int]) -> Tuple[VmcoreInfo, int]:
    """The x86-64 kernel in the inferior (see the module's docstring)."""
    banner_va, text_va = linked_address("linux_banner"), linked_address("_text")
    if banner_va is None or text_va is None:
        raise PfnscopeError(vml, "no linux_banner/_text symbol: not a Linux vmlinux")
    banner = _elf_bytes(vml, banner_va, 64)
    banner = banner.split(b"\0", 1)[0]
    delta = banner_va - text_va
    found = None
    for base in range(0, SCAN_LIMIT, ALIGN):
        try:
            if _read_phys(base + delta, len(banner)) == banner:
                found = base + delta
                break
        except gdb.MemoryError:
            continue
    if found is None:
        raise PfnscopeError("kernel image", "the vmlinux's linux_banner is nowhere in guest "
                            "physical memory: is this vmlinux the running kernel's?")
    # __pa_symbol(x) = x - __START_KERNEL_map + phys_base, x = link address + voff:
    # for image symbols only phys_base + voff matters; call it c.
    c = (found - banner_va + SKM) & U64

    def image_u64(name: str) -> Optional[int]:
        a = linked_address(name)
        return None if a is None else _u64((a - SKM + c) & U64)
    vmci = None
    try:
        note = image_u64("vmcoreinfo_note")
        pob = image_u64("page_offset_base")
        if note and pob:
            pa = (note - pob) & U64
            namesz, descsz, _ = struct.unpack("<III", _read_phys(pa, 12))
            if namesz == 11 and 0 < descsz <= 65536:
                info = VmcoreInfo(_read_phys(pa + 12 + 12, descsz))
                if "OSRELEASE" in info:
                    vmci = info
    except (gdb.MemoryError, gdb.error, struct.error):
        vmci = None
    release = banner.decode("latin-1").split(" ")[2] if banner.count(b" ") >= 2 else "unknown"
    if vmci is None:
        # no readable VMCOREINFO (e.g. CONFIG_CRASH_CORE off): the kernel's own
        # init_mm.pgd == swapper_pg_dir (a relocated image address) gives voff
        mm_pgd = _u64((linked_address("init_mm") + GdbTypes().offsetof("struct mm_struct", "pgd")
                       - SKM + c) & U64)
        voff = (mm_pgd - linked_address("init_top_pgt")) & U64
        l5 = linked_address("__pgtable_l5_enabled")
        l5v = (struct.unpack("<I", _read_phys((l5 - SKM + c) & U64, 4))[0] if l5 else 0)
        vmci = VmcoreInfo(f"OSRELEASE={release}\nKERNELOFFSET={voff:x}\n"
                          f"NUMBER(phys_base)={(c - voff) & U64}\nNUMBER(pgtable_l5_enabled)={l5v}\n")
    voff = _kaslr_offset(vml, release, vmci, vmci.kaslr_offset, kaslr_offset)
    return _settled(vmci, voff, kaslr_offset, "init_top_pgt",
                    {"NUMBER(phys_base)": str((c - voff) & U64)}), voff


# the page tables TTBR1_EL1 may point at: swapper_pg_dir in the kernel, the
# trampoline's with KPTI while the vCPU is in user mode (arch/arm64/kernel/entry.S
# tramp_map_kernel), the others during boot (head.S)
_ARM64_PGDS = ("swapper_pg_dir", "tramp_pg_dir", "reserved_pg_dir", "init_pg_dir",
               "idmap_pg_dir")


def _locate_arm64(vml: str, kaslr_offset: Optional[int]) -> Tuple[VmcoreInfo, int]:
    """The arm64 kernel in the inferior.  The image is found from the vCPU's
    TTBR1_EL1 (a page table of the image, physical), checked against the
    vmlinux's linux_banner; its kimage_voffset and memstart_addr
    (PHYS_OFFSET) are then read from the image, and the kernel's VMCOREINFO
    note (vmcoreinfo_note, a linear-map buffer filled at boot) gives the rest,
    exactly as a dump would: the layout is arch_arm64's from there."""
    banner_va = linked_address("linux_banner")
    if banner_va is None:
        raise PfnscopeError(vml, "no linux_banner symbol: not a Linux vmlinux")
    banner = _elf_bytes(vml, banner_va, 64).split(b"\0", 1)[0]
    ttbr = _register("TTBR1_EL1")
    if ttbr is None:
        raise PfnscopeError("gdbstub", "no TTBR1_EL1 register: pfnscope needs QEMU's "
                            "gdbstub (qemu-system-aarch64 -gdb / -s) and gdb-multiarch")
    pgd = _arm64.ttbr_baddr(ttbr)
    link_off = None             # link address - physical address of the image
    for name in _ARM64_PGDS:
        a = linked_address(name)
        if a is None:
            continue
        k = (a - pgd) & U64
        try:
            if _read_phys((banner_va - k) & U64, len(banner)) == banner:
                link_off = k
                break
        except gdb.MemoryError:
            continue
    if link_off is None:
        raise PfnscopeError("kernel image", f"TTBR1_EL1 {ttbr:#x} is no page table of this "
                            "vmlinux (its linux_banner is not there): is this vmlinux the "
                            "running kernel's?")

    def image_u64(name: str) -> Optional[int]:
        a = linked_address(name)
        return None if a is None else _u64((a - link_off) & U64)
    # kimage_voffset = kimage_vaddr - kimage_paddr (asm/memory.h), set by
    # head.S from the KASLR-relocated image: the KASLR offset is what it adds
    # to the link-time offset
    kvo = image_u64("kimage_voffset")
    memstart = image_u64("memstart_addr")
    if kvo is None or memstart is None:
        raise PfnscopeError(vml, "no kimage_voffset/memstart_addr symbol: not an arm64 vmlinux")
    found_kaslr = (kvo - link_off) & U64
    release = banner.decode("latin-1").split(" ")[2] if banner.count(b" ") >= 2 else "unknown"
    vmci = None
    note = image_u64("vmcoreinfo_note")
    for va_bits in _arm64.CONFIG_VA_BITS if note else ():
        # the configured VA_BITS is not in the debug info: the note's
        # header and its own NUMBER(VA_BITS) must agree with the guess
        pa = _arm64.lm_to_phys(note, va_bits, memstart)
        try:
            namesz, descsz, _ = struct.unpack("<III", _read_phys(pa, 12))
            if namesz != 11 or not 0 < descsz <= 65536 or \
                    _read_phys(pa + 12, 11) != b"VMCOREINFO\0":
                continue
            info = VmcoreInfo(_read_phys(pa + 12 + 12, descsz))
        except (gdb.MemoryError, gdb.error, struct.error):
            continue
        if "OSRELEASE" in info and info.number("VA_BITS") == va_bits:
            vmci = info
            break
    if vmci is None:
        # no VMCOREINFO (CONFIG_CRASH_CORE off): the vCPU's own registers
        tcr = _register("TCR_EL1")
        vbits = 64 - _arm64.t1sz(tcr) if tcr else 48
        vmci = VmcoreInfo(f"OSRELEASE={release}\nPAGESIZE=4096\nKERNELOFFSET={found_kaslr:x}\n"
                          f"NUMBER(VA_BITS)={vbits}\nNUMBER(kimage_voffset)={kvo:#x}\n"
                          f"NUMBER(PHYS_OFFSET)={memstart:#x}\n"
                          + (f"NUMBER(TCR_EL1_T1SZ)={_arm64.t1sz(tcr):#x}\n" if tcr else ""))
    voff = _kaslr_offset(vml, release, vmci, found_kaslr, kaslr_offset)
    return _settled(vmci, voff, kaslr_offset, "swapper_pg_dir",
                    {"NUMBER(kimage_voffset)": f"{(link_off + voff) & U64:#x}"}), voff


# --- the session ---------------------------------------------------------------

class GdbSession(Session):
    """pfnscope Session over the inferior, registered under it: ident is
    what else must not change for the session to stay valid (the
    connection, the vmlinux, --kaslr-offset)."""

    def __init__(self, inferior: gdb.Inferior, ident: tuple,
                 kaslr_offset: Optional[int] = None) -> None:
        vmci, voff = locate_kernel(kaslr_offset)
        # kernel-image reads as the architecture makes them physical
        read_u64 = vmci.arch.image_read_u64(_read_phys, vmci)
        src = Source("gdb", GdbTypes(), GdbSymbols(voff, read_u64))
        super().__init__(vmci, _read_phys, "gdb:" + _vmlinux_path(), "gdb", src, key=inferior)
        self.ident = ident
        self.kaslr_offset = voff
        self.vmlinux = _vmlinux_path()
        self.live = False           # the guest is stopped while GDB reads it

    def debug_program(self):
        """A drgn Program over this session's memory (physical reads through
        the gdbstub, kernel virtual ones through the C core's translation)
        with the vmlinux's DWARF, relocated by the KERNELOFFSET found above:
        what pfnscope.kvm_mmu reads KVM's structures with, so `kvm` and
        `rmap`'s SPTEs run the CLI's code.  Made on first use (loading the
        DWARF takes a moment), kept for the session."""
        if self.prog is None:
            from pfnscope.program import add_segments, load_vmlinux, program_from_vmcoreinfo
            prog = program_from_vmcoreinfo(self.vmci)
            add_segments(prog, self)
            load_vmlinux(prog, self.vmlinux)
            self.prog = prog
        return self.prog

    def forget(self) -> None:
        super().forget()
        # KVM's state (VMs, task list, struct pages) is read again: the guest may have run
        self._kvm = None


def session(kaslr_offset: Optional[int] = None, reload: bool = False) -> GdbSession:
    """The session of the selected inferior, made again when the inferior
    is connected elsewhere, the vmlinux or --kaslr-offset changed, or on
    --reload; caches dropped (the guest may have run since the last
    command)."""
    inf = gdb.selected_inferior()
    ident = (inf.connection_num, _vmlinux_path(), kaslr_offset)
    sess = SESSIONS.get(inf)
    if sess is not None and (reload or not isinstance(sess, GdbSession) or sess.ident != ident):
        sess.close()
        sess = None
    if sess is None:
        sess = GdbSession(inf, ident, kaslr_offset)
    sess.forget()
    return sess


def current_session() -> Optional[Session]:
    """The session of the selected inferior (None before its first pfnscope
    command)."""
    return SESSIONS.get(gdb.selected_inferior())


def _forget(event) -> None:
    """An inferior exited: its session goes (a new run is a new kernel)."""
    inf = getattr(event, "inferior", None) or gdb.selected_inferior()
    sess = SESSIONS.get(inf)
    if sess is not None:
        sess.close()


gdb.events.exited.connect(_forget)


# --- the command ---------------------------------------------------------------

def _split_gdb_opts(argv: List[str]) -> Tuple[List[str], Optional[int], bool]:
    """Take the GDB-only options out of argv."""
    out, kaslr, reload = [], None, False
    it = iter(argv)
    for a in it:
        if a == "--kaslr-offset" or a.startswith("--kaslr-offset="):
            v = a.split("=", 1)[1] if "=" in a else next(it, None)
            if v is None:
                raise gdb.GdbError("pfnscope: --kaslr-offset needs a value")
            try:
                kaslr = int(v, 0)
            except ValueError:
                raise gdb.GdbError(f"pfnscope: --kaslr-offset: not a number: {v!r}")
        elif a == "--reload":
            reload = True
        elif a in ("-c", "--core", "--qemu-ram", "-k", "--kernel"):
            raise gdb.GdbError(f"pfnscope: {a} does not apply in GDB (the target is the inferior)")
        elif a in ("-s", "--symbols") or a.startswith("--symbols="):
            v = a.split("=", 1)[1] if "=" in a else next(it, None)
            if v is not None and ".ko" in os.path.basename(v):
                out += ["-s", v]     # a module's debug file (kvm.ko, kvm-amd.ko): kept
        else:
            out.append(a)
    return out, kaslr, reload


def _gdb_write(b: bytes) -> None:
    gdb.write(b.decode("utf-8", "replace"))


def run(argv: Sequence[str]) -> int:
    """Run one pfnscope command in GDB; returns the CLI's exit status."""
    argv, kaslr, reload = _split_gdb_opts(list(argv))
    try:
        args = _cli.build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if not hasattr(args, "json"):
        args.json = False
    args.module_debug = _cli._split_symbols(args)[1]
    out = _cli.MemOut()
    saved = sys.stdout
    os.environ.setdefault("PFNSCOPE_NO_PROGRESS", "1")
    try:
        with PhysMode():
            sess = session(kaslr, reload)
            sys.stdout = out
            try:
                rc = _cli.run_command(sess, args)
            finally:
                sys.stdout = saved
    except PfnscopeError as e:
        sys.stdout = saved
        out.drain(_gdb_write)
        raise gdb.GdbError(f"pfnscope: {e.line()}")
    except Exception as e:
        sys.stdout = saved
        out.drain(_gdb_write)
        if os.environ.get("PFNSCOPE_DEBUG"):
            raise
        raise gdb.GdbError(f"pfnscope: {_cli._describe(e)}")
    out.drain(_gdb_write)
    return rc


class PfnscopeCommand(gdb.Command):
    """pfnscope tasks|vmas|walk|check|rmap|kvm [options]: page-table entries of a VMA as the
kernel sees them (special bit, vm_normal_page verdict, struct page refcount and
mapcount, consumer verdicts, diagnoses).  Same options and output as the
`pfnscope` CLI (try `pfnscope --help`, `pfnscope walk --help`), e.g.
  pfnscope walk -p 148 -a 0x7f0000000000 --json
  pfnscope check --fail-on medium
GDB-only: --kaslr-offset OFF (default: found from the guest), --reload.
The exit status of the command is in $pfnscope_rc.  Needs QEMU's gdbstub."""

    def __init__(self) -> None:
        super().__init__("pfnscope", gdb.COMMAND_DATA)

    def invoke(self, arg: str, from_tty: bool) -> None:
        self.dont_repeat()
        rc = run(gdb.string_to_argv(arg))
        gdb.set_convenience_variable("pfnscope_rc", rc)


PfnscopeCommand()
