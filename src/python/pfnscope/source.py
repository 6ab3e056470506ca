"""Layout sources: where the layout builder gets types and symbols.

A source (Source) has ``kind`` ("debuginfo", "btf", "gdb", "crash"),
``types`` and ``symbols``, one interface for every implementation: drgn's
debug info (DrgnTypes, DrgnSymbols), the kernel's BTF and kallsyms (BtfTypes,
KallsymsSymbols), GDB's types (plugins/gdb) and crash's (pfnscope.crash).

types (class Types):
    what                        "vmlinux debug info", "kernel BTF": for messages
    exists(tname) -> bool       "struct page", "enum pageflags", "pgd_t"
    sizeof(tname) -> int        LayoutError when the type has none
    offsetof(tname, path)       byte offset or None; path as drgn.offsetof takes
                                it ("mr64.pivot", "numbers[0].nr"), members of
                                anonymous structs/unions found
    array_len(tname, path)      elements of the array member, None: no such
                                member or not an array
    enumerators(tname)          {name: value} (first of a name wins) or None
    function_params(name)       parameter type names of a function (None: no
                                such function, or the source cannot tell)
    object_array_len(name)      length of a global array (None: not known;
                                BTF describes per-cpu globals only, the debug
                                vmlinux's symbol table gives swap_info's)

symbols (class Symbols):
    what                        "vmlinux", "kallsyms": for messages
    address(name) -> int|None   relocated address of a global
    read_u64(va) -> int         a u64 of the kernel image
    is_pointer(name)            whether the global is a pointer (None: unknown)

``pfnscope.layout.build_layout(source, vmci)`` uses only these, and
pfnscope.names reads file and VMA names through them.  The drgn source wraps
a Program with the debug vmlinux loaded; the BTF source is the kernel's own
BTF (/sys/kernel/btf/vmlinux, or the .BTF section found in a dump's memory
between __start_BTF and __stop_BTF) with kallsyms for symbols
(/proc/kallsyms, or the kallsyms tables a 6.0+ kernel names in VMCOREINFO).
"""
from __future__ import annotations

import os
import re
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, List, Optional, Tuple
    ReadBytes = Callable[[int, int], bytes]
    ReadU64 = Callable[[int], int]

from .errors import LayoutError, PfnscopeError
from .extension import core
from .vmcoreinfo import VmcoreInfo

U64_MAX = (1 << 64) - 1

# Symbols the layout and the session look up: found in one pass over the
# kallsyms tables (others cost one more pass each, on demand).
WANTED = (
    "_stext", "_text", "__start_BTF", "__stop_BTF", "init_top_pgt", "swapper_pg_dir",
    "init_task", "highest_memmap_pfn", "zero_pfn", "zero_page_pfn", "empty_zero_page",
    "huge_zero_pfn", "page_offset_base", "vmemmap_base", "mem_section", "init_pid_ns",
    "special_mapping_vmops", "legacy_special_mapping_vmops", "perf_mmap_vmops",
    "init_uts_ns", "simple_dname", "sockfs_dname", "pipefs_dname", "anon_inodefs_dname",
    "make_device_exclusive", "make_device_exclusive_range", "migrate_vma_setup",
)


class Types:
    """The types interface of a layout source, written once: the cache of
    type lookups, what a missing type answers, the first-wins rule of
    enumerators and the error of sizeof().  A source implements lookup()
    (its handle of a type, None when the kernel has no such type) and the
    queries on a handle; function_params() and object_array_len() where it
    can tell (None: it cannot)."""
    what = "debug info"

    def __init__(self) -> None:
        self._types: Dict[str, object] = {}

    # --- what a source implements ---
    def lookup(self, tname: str) -> Optional[object]:
        raise NotImplementedError

    def type_size(self, t: object, tname: str) -> Optional[int]:
        raise NotImplementedError

    def member_offset(self, t: object, tname: str, path: str) -> Optional[int]:
        raise NotImplementedError

    def member_array_len(self, t: object, tname: str, path: str) -> Optional[int]:
        raise NotImplementedError

    def type_enumerators(self, t: object, tname: str) -> Optional[Iterable[Tuple[str, int]]]:
        raise NotImplementedError

    def function_params(self, name: str) -> Optional[List[str]]:
        """Parameter type names of the function name, spelled as drgn does
        ("struct vm_area_struct *"); None: no such function, or the source
        cannot tell."""
        return None

    def object_array_len(self, name: str) -> Optional[int]:
        """Length of the global array name (None: no such array, or the
        source cannot tell)."""
        return None

    # --- the interface build_layout uses ---
    def _type(self, tname: str) -> Optional[object]:
        if tname not in self._types:
            self._types[tname] = self.lookup(tname)
        return self._types[tname]

    def exists(self, tname: str) -> bool:
        return self._type(tname) is not None

    def sizeof(self, tname: str) -> int:
        t = self._type(tname)
        if t is None:
            raise LayoutError(tname, f"type not found in the {self.what}")
        n = self.type_size(t, tname)
        if n is None:
            raise LayoutError(tname, f"type has no size in the {self.what}")
        return int(n)

    def offsetof(self, tname: str, path: str) -> Optional[int]:
        t = self._type(tname)
        return None if t is None else self.member_offset(t, tname, path)

    def array_len(self, tname: str, path: str) -> Optional[int]:
        t = self._type(tname)
        return None if t is None else self.member_array_len(t, tname, path)

    def enumerators(self, tname: str) -> Optional[Dict[str, int]]:
        t = self._type(tname)
        es = self.type_enumerators(t, tname) if t is not None else None
        if not es:
            return None
        out: Dict[str, int] = {}
        for name, value in es:
            out.setdefault(name, int(value))
        return out or None


class Symbols:
    """The symbols interface of a layout source."""
    what = "symbols"
    read_u64: ReadU64

    def address(self, name: str) -> Optional[int]:
        raise NotImplementedError

    def is_pointer(self, name: str) -> Optional[bool]:
        raise NotImplementedError


class Source:
    """A layout source: kind ("debuginfo", "btf", "gdb", "crash": the target
    record's layout_source), types, symbols."""

    def __init__(self, kind: str, types: Types, symbols: Symbols) -> None:
        self.kind = kind
        self.types = types
        self.symbols = symbols


# --- drgn (debug vmlinux) ------------------------------------------------------

class DrgnTypes(Types):
    """Types of a drgn Program with the debug vmlinux loaded."""
    what = "vmlinux debug info"

    def __init__(self, prog) -> None:
        super().__init__()
        import drgn
        self._drgn = drgn
        self.prog = prog

    def lookup(self, tname: str) -> Optional[object]:
        try:
            return self.prog.type(tname)
        except LookupError:
            return None

    def type_size(self, t, tname: str) -> Optional[int]:
        return int(self._drgn.sizeof(t))

    def member_offset(self, t, tname: str, path: str) -> Optional[int]:
        try:
            return int(self._drgn.offsetof(t, path))
        except (LookupError, ValueError):
            return None

    def member_array_len(self, t, tname: str, path: str) -> Optional[int]:
        drgn = self._drgn
        try:
            mt = t
            for part in re.split(r"\.", path):
                while mt.kind == drgn.TypeKind.TYPEDEF:
                    mt = mt.type
                mt = mt.member(part).type
        except (LookupError, ValueError):
            return None
        while mt.kind == drgn.TypeKind.TYPEDEF:
            mt = mt.type
        if mt.kind != drgn.TypeKind.ARRAY or mt.length is None:
            return None
        return int(mt.length)

    def type_enumerators(self, t, tname: str) -> Optional[Iterable[Tuple[str, int]]]:
        if not t.enumerators:
            return None
        return [(e.name, int(e.value)) for e in t.enumerators]

    def object_array_len(self, name: str) -> Optional[int]:
        drgn = self._drgn
        try:
            t = self.prog.object(name).type_
        except LookupError:
            return None
        while t.kind == drgn.TypeKind.TYPEDEF:
            t = t.type
        return int(t.length) if t.kind == drgn.TypeKind.ARRAY and t.length is not None else None

    def function_params(self, name: str) -> Optional[List[str]]:
        try:
            t = self.prog.object(name, self._drgn.FindObjectFlags.FUNCTION).type_
        except LookupError:
            return None
        return [str(p.type) for p in t.parameters]


class DrgnSymbols(Symbols):
    """Relocated symbols of the debug vmlinux in a drgn Program.

    The Program may or may not have applied the KASLR offset (a Program made
    on vmlinux only has not).  The delta is measured once, from the relocated
    SYMBOL(init_top_pgt) of VMCOREINFO, and added to every symbol."""
    what = "vmlinux"

    def __init__(self, prog, vmci: VmcoreInfo, read_u64: ReadU64) -> None:
        self.prog = prog
        self.read_u64 = read_u64
        self.delta = 0
        ref = vmci.symbol("init_top_pgt") or vmci.symbol("swapper_pg_dir")
        linked = self.address("init_top_pgt")
        if ref is not None and linked is not None:
            self.delta = (ref - linked) & U64_MAX
            if self.delta not in (0, vmci.kaslr_offset):
                raise LayoutError(
                    "vmlinux",
                    f"init_top_pgt is at {linked:#x} in the vmlinux but {ref:#x} in the "
                    f"dump (KERNELOFFSET {vmci.kaslr_offset:#x}): vmlinux from another build")

    def address(self, name: str) -> Optional[int]:
        try:
            return (self.prog.symbol(name).address + self.delta) & U64_MAX
        except LookupError:
            pass
        try:
            return (int(self.prog.object(name).address_) + self.delta) & U64_MAX
        except (LookupError, TypeError, ValueError):
            return None

    def is_pointer(self, name: str) -> Optional[bool]:
        import drgn
        try:
            return self.prog.object(name).type_.kind == drgn.TypeKind.POINTER
        except LookupError:
            return None


def drgn_source(prog, vmci: VmcoreInfo, read_u64: Optional[ReadU64] = None) -> Source:
    return Source("debuginfo", DrgnTypes(prog),
                  DrgnSymbols(prog, vmci, read_u64 if read_u64 is not None else prog.read_u64))


# --- BTF -------------------------------------------------------------------------

class BtfTypes(Types):
    """Types from the kernel's BTF (pfnscope._core.Btf); a type's handle is
    its BTF id."""
    what = "kernel BTF"

    def __init__(self, btf) -> None:
        super().__init__()
        self.btf = btf

    def lookup(self, tname: str) -> Optional[int]:
        i = self.btf.find(tname)
        return i if i and self.btf.sizeof(i) is not None else None

    def type_size(self, t: int, tname: str) -> Optional[int]:
        return self.btf.sizeof(t)

    def member_offset(self, t: int, tname: str, path: str) -> Optional[int]:
        r = self.btf.offsetof(t, path)
        return None if r is None else int(r[0])

    def member_array_len(self, t: int, tname: str, path: str) -> Optional[int]:
        r = self.btf.offsetof(t, path)
        return None if r is None else self.btf.array_len(r[1])

    def type_enumerators(self, t: int, tname: str) -> Optional[Iterable[Tuple[str, int]]]:
        return self.btf.enumerators(t)

    def function_params(self, name: str) -> Optional[List[str]]:
        """Parameter type names of the function name, spelled as drgn does
        ("struct vm_area_struct *"); None: no BTF_KIND_FUNC of that name
        (pahole encodes the functions of the vmlinux symbol table)."""
        fid = self.btf.find_func(name)
        if not fid:
            return None
        return [self._type_name(t) for _, t in self.btf.params(fid)]

    def _type_name(self, tid: int, depth: int = 0) -> str:
        kind, name, ref = self.btf.type_info(tid)
        if tid == 0:
            return "void"
        if depth > 16:
            return "?"
        if kind == self.PTR:
            inner = self._type_name(ref, depth + 1)
            return inner + ("*" if inner.endswith("*") else " *")
        if kind in (self.CONST, self.VOLATILE, self.RESTRICT):
            q = {self.CONST: "const", self.VOLATILE: "volatile", self.RESTRICT: "restrict"}[kind]
            return f"{q} {self._type_name(ref, depth + 1)}"
        if kind in (self.STRUCT, self.UNION, self.ENUM, self.ENUM64, self.FWD):
            tag = {self.STRUCT: "struct", self.UNION: "union", self.ENUM: "enum",
                   self.ENUM64: "enum", self.FWD: "struct"}[kind]
            return f"{tag} {name}"
        if kind == self.TYPE_TAG:
            return self._type_name(ref, depth + 1)
        return name or "?"

    (PTR, STRUCT, UNION, ENUM, FWD, VOLATILE, CONST, RESTRICT, TYPE_TAG,
     ENUM64) = (2, 4, 5, 6, 7, 9, 10, 11, 18, 19)


class VmlinuxBtfTypes(BtfTypes):
    """The debug vmlinux's .BTF, and its symbol table for what BTF does not
    describe: a global's size.  BTF has no type for swap_info[] (pahole
    encodes the per-cpu variables only), but its symbol's st_size is
    MAX_SWAPFILES pointers: ``struct swap_info_struct
    *swap_info[MAX_SWAPFILES]`` (mm/swapfile.c), so the layout needs no
    DWARF and no kernel version for the swap types on any kernel."""
    what = "vmlinux BTF"
    # global arrays of pointers: the symbol's size is 8 bytes an element
    POINTER_ARRAYS = ("swap_info",)

    def __init__(self, btf, lookup) -> None:
        super().__init__(btf)
        self._lookup = lookup

    def object_array_len(self, name: str) -> Optional[int]:
        if name not in self.POINTER_ARRAYS:
            return None
        # either binding (Debian's 6.12 has a local swap_info, its 6.1 and
        # 7.2 a global one), but one symbol of the name
        syms = self._lookup([name], sizes=True).get(name, [])
        if len(syms) != 1 or not syms[0][2] or syms[0][2] % 8:
            return None
        return syms[0][2] // 8


class KallsymsSymbols(Symbols):
    """Symbols from kallsyms: ``lookup(names) -> {name: [(address, type)]}``
    gives every symbol of each name; a global (upper-case type) wins over
    statics of the same name, else the first in address order."""
    what = "kallsyms"

    def __init__(self, lookup: Callable[[Iterable[str]], Dict[str, List[tuple]]],
                 read_u64: ReadU64, vmci: VmcoreInfo, where: str) -> None:
        self._lookup = lookup
        self.read_u64 = read_u64
        self.vmci = vmci
        self.where = where
        self._addr: Dict[str, Optional[int]] = {}
        self._fill(WANTED)

    def _fill(self, names: Iterable[str]) -> None:
        found = self._lookup(list(names))
        for name in names:
            syms = found.get(name) or []
            glob = [a for a, t in syms if t.isupper()]
            self._addr[name] = (glob or [a for a, _ in syms] or [None])[0]

    def address(self, name: str) -> Optional[int]:
        if name not in self._addr:
            self._fill([name])
        return self._addr[name]

    def is_pointer(self, name: str) -> Optional[bool]:
        """VMCOREINFO's SYMBOL(x) of VMCOREINFO_SYMBOL_ARRAY (mem_section) is
        the value of x: the array's address for an array, the pointer's value
        for a pointer (crash_core.c); kallsyms has x's own address."""
        a, v = self.address(name), self.vmci.symbol(name)
        if a is None or v is None:
            return None
        return a != v


def btf_types(blob: bytes, where: str) -> BtfTypes:
    try:
        return BtfTypes(core().Btf(blob))
    except ValueError as e:
        raise PfnscopeError(where, str(e))


# --- live: /sys/kernel/btf/vmlinux, /proc/kallsyms --------------------------------

SYSFS_BTF = "/sys/kernel/btf/vmlinux"
PROC_KALLSYMS = "/proc/kallsyms"


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))


def proc_kallsyms_lookup(path: str = PROC_KALLSYMS) -> Callable[[Iterable[str]], Dict[str, List[tuple]]]:
    """Lookups in /proc/kallsyms (vmlinux symbols only: module symbols carry
    a "\\t[module]" suffix).  Zero addresses mean kptr_restrict hides them."""
    cache: Dict[str, bytes] = {}

    def lookup(names: Iterable[str]) -> Dict[str, List[tuple]]:
        names = list(names)
        if "text" not in cache:
            cache["text"] = _read_file(path)
        text = cache["text"]
        alt = b"|".join(re.escape(n.encode()) for n in names)
        out: Dict[str, List[tuple]] = {}
        zero = False
        for m in re.finditer(rb"^([0-9a-fA-F]+) (\w) (" + alt + rb")$", text, re.M):
            addr = int(m.group(1), 16)
            zero |= addr == 0
            out.setdefault(m.group(3).decode(), []).append((addr, m.group(2).decode()))
        if zero and all(a == 0 for syms in out.values() for a, _ in syms):
            raise PfnscopeError(path, "symbol addresses read as 0 (kptr_restrict): run as root, "
                                "or pass the debug vmlinux with -s")
        return out
    return lookup


def live_btf_source(vmci: VmcoreInfo, read_u64: ReadU64) -> Source:
    blob = _read_file(SYSFS_BTF)
    types = btf_types(blob, SYSFS_BTF)
    syms = KallsymsSymbols(proc_kallsyms_lookup(), read_u64, vmci, PROC_KALLSYMS)
    return Source("btf", types, syms)


def sysfs_vmcoreinfo(read_phys: ReadBytes) -> VmcoreInfo:
    """The running kernel's VMCOREINFO note: /sys/kernel/vmcoreinfo gives its
    physical address and size (kernel/ksysfs.c vmcoreinfo_show)."""
    raw = _read_file("/sys/kernel/vmcoreinfo").split()
    try:
        pa, size = int(raw[0], 16), int(raw[1], 16)
    except (IndexError, ValueError):
        raise PfnscopeError("/sys/kernel/vmcoreinfo", "unexpected contents")
    note = read_phys(pa, size)
    namesz, descsz, _ = struct.unpack_from("<III", note, 0)
    off = 12 + ((namesz + 3) & ~3)
    info = VmcoreInfo(note[off:off + descsz])
    if "OSRELEASE" not in info:
        raise PfnscopeError("/sys/kernel/vmcoreinfo", f"no VMCOREINFO note at {pa:#x}")
    return info


# --- dumps: kallsyms tables and .BTF in the dump's memory ---------------------------

_KALLSYMS_TABLES = ("kallsyms_names", "kallsyms_num_syms", "kallsyms_token_table",
                    "kallsyms_token_index")


def dump_kallsyms_lookup(vmci: VmcoreInfo, read: ReadBytes, where: str
                         ) -> Callable[[Iterable[str]], Dict[str, List[tuple]]]:
    """Lookups in the kallsyms tables of the dumped kernel (kernel/kallsyms.c).

    VMCOREINFO names the tables from v6.0: commit 5fd8fea935a1 ("vmcoreinfo:
    include kallsyms symbols") and commit f09bddbd8661 ("vmcoreinfo: add
    kallsyms_num_syms symbol") (both in v6.0).  Addresses are
    kallsyms_offsets[] decoded one of three ways, told apart by a symbol
    whose address VMCOREINFO gives (_stext, else init_top_pgt / init_uts_ns):
    base-relative (kallsyms_relative_base + offset, v4.6-6.x), absolute
    per-cpu (negative offsets: relative_base - 1 - offset, until v6.15) and
    place-relative (&kallsyms_offsets[i] + offset, from v7.0: commit
    a081b5789255 ("kallsyms: Get rid of kallsyms relative base"));
    kallsyms_addresses[] (absolute) before v6.11 without base-relative."""
    loc = {n: vmci.symbol(n) for n in _KALLSYMS_TABLES + ("kallsyms_offsets",
                                                           "kallsyms_relative_base",
                                                           "kallsyms_addresses")}
    missing = [n for n in _KALLSYMS_TABLES if loc[n] is None]
    if missing or (loc["kallsyms_offsets"] is None and loc["kallsyms_addresses"] is None):
        raise PfnscopeError(where, f"kernel {vmci.osrelease} names no kallsyms tables in "
                            "VMCOREINFO (Linux 6.0+ does): without them symbols need the "
                            "debug vmlinux, pass it with -s")

    def rd(addr: int, n: int, what: str) -> bytes:
        try:
            b = read(addr, n)
        except Exception as e:
            raise PfnscopeError(where, f"cannot read {what} at {addr:#x}: {e}")
        if len(b) != n:
            raise PfnscopeError(where, f"cannot read {what} at {addr:#x}: short read")
        return b

    num = struct.unpack("<I", rd(loc["kallsyms_num_syms"], 4, "kallsyms_num_syms"))[0]
    if not 0 < num < (1 << 22):
        raise PfnscopeError(where, f"kallsyms_num_syms is {num}: not a kallsyms table")
    tok_index = rd(loc["kallsyms_token_index"], 512, "kallsyms_token_index")
    idx = struct.unpack("<256H", tok_index)
    tt_len = max(idx) + 256
    tok_table = rd(loc["kallsyms_token_table"], tt_len, "kallsyms_token_table")
    # kallsyms_names ends before the next table scripts/kallsyms.c emits
    names_at = loc["kallsyms_names"]
    after = [a for n, a in loc.items() if a is not None and a > names_at and n != "kallsyms_names"]
    names_len = min(min(after) - names_at if after else 1 << 24, 1 << 24)
    names = rd(names_at, names_len, "kallsyms_names")
    ref_name = next((n for n in ("_stext", "init_top_pgt", "init_uts_ns")
                     if vmci.symbol(n) is not None), None)
    if ref_name is None:
        raise PfnscopeError(where, "VMCOREINFO has no SYMBOL(_stext) to check kallsyms against")
    ref_addr = vmci.symbol(ref_name)
    # commit 73bbb94466fd ("kallsyms: support "big" kernel symbols") (in v6.1) made
    # lengths >= 0x80 two bytes; nothing in the dump says which: try both
    major, minor, _ = vmci.version
    orders = [True, False] if (major, minor) >= (6, 1) else [False, True]
    state: Dict[str, object] = {}

    def find(names_wanted: List[str], long_names: bool):
        return core().kallsyms_find(names, num, tok_table, tok_index, long_names, names_wanted)

    def decode_addresses(indices: List[int]) -> Dict[int, int]:
        out = {}
        if loc["kallsyms_offsets"] is None:
            for i in indices:
                out[i] = struct.unpack("<Q", rd(loc["kallsyms_addresses"] + 8 * i, 8,
                                                "kallsyms_addresses"))[0]
            return out
        base = None
        if loc["kallsyms_relative_base"] is not None:
            base = struct.unpack("<Q", rd(loc["kallsyms_relative_base"], 8,
                                          "kallsyms_relative_base"))[0]
        for i in indices:
            off = struct.unpack("<i", rd(loc["kallsyms_offsets"] + 4 * i, 4, "kallsyms_offsets"))[0]
            out[i] = state["decode"](i, off, base) & U64_MAX
        return out

    def setup(wanted: List[str]):
        """Find the decoding (name lengths, offset encoding) that puts
        ref_name where VMCOREINFO says, in the same pass as the first
        lookup; returns that lookup's lists."""
        errors = []
        base = None
        if loc["kallsyms_relative_base"] is not None:
            base = struct.unpack("<Q", rd(loc["kallsyms_relative_base"], 8,
                                          "kallsyms_relative_base"))[0]
        kos = loc["kallsyms_offsets"]
        for long_names in orders:
            try:
                _, lists = find(wanted + [ref_name], long_names)
            except ValueError as e:
                errors.append(str(e))
                continue
            if not lists[-1]:
                errors.append(f"no {ref_name}")
                continue
            i = lists[-1][0][0]
            if kos is None:
                a = struct.unpack("<Q", rd(loc["kallsyms_addresses"] + 8 * i, 8,
                                           "kallsyms_addresses"))[0]
                if a == ref_addr:
                    state["long"] = long_names
                    return lists[:-1]
                errors.append("kallsyms_addresses disagree with VMCOREINFO")
                continue
            off = struct.unpack("<i", rd(kos + 4 * i, 4, "kallsyms_offsets"))[0]
            ways = []
            if base is not None:
                ways.append(lambda j, o, b: b + (o & 0xFFFFFFFF))
                ways.append(lambda j, o, b: o if o >= 0 else b - 1 - o)
            ways.append(lambda j, o, b: kos + 4 * j + o)
            for way in ways:
                if way(i, off, base) & U64_MAX == ref_addr:
                    state["decode"] = way
                    state["long"] = long_names
                    return lists[:-1]
            errors.append(f"no offset encoding gives {ref_name} at {ref_addr:#x}")
        raise PfnscopeError(where, "cannot decode the kernel's kallsyms tables (" +
                            "; ".join(errors) + ")")

    def lookup(wanted: Iterable[str]) -> Dict[str, List[tuple]]:
        wanted = list(wanted)
        if "long" not in state:
            lists = setup(wanted)
        else:
            _, lists = find(wanted, bool(state["long"]))
        addrs = decode_addresses(sorted({i for lst in lists for i, _ in lst}))
        return {n: [(addrs[i], t) for i, t in lst] for n, lst in zip(wanted, lists)}
    return lookup


def dump_btf_source(vmci: VmcoreInfo, read_image: ReadBytes, read_u64: ReadU64,
                    where: str) -> Source:
    """The BTF source of a dump: kallsyms from the tables VMCOREINFO names,
    BTF from the kernel image between __start_BTF and __stop_BTF."""
    syms = KallsymsSymbols(dump_kallsyms_lookup(vmci, read_image, where), read_u64, vmci, where)
    start, stop = syms.address("__start_BTF"), syms.address("__stop_BTF")
    if start is None and syms.address("init_task") is None:
        # kallsyms keeps data symbols only with CONFIG_KALLSYMS_ALL (off in
        # Debian's arm64 6.1): no layout without the debug vmlinux
        raise PfnscopeError(where, "kallsyms lists no data symbols (kernel without "
                            "CONFIG_KALLSYMS_ALL): pass the debug vmlinux with -s")
    if start is None or stop is None or not 0 < stop - start < (256 << 20):
        raise PfnscopeError(where, "no __start_BTF/__stop_BTF in kallsyms (kernel without "
                            "CONFIG_DEBUG_INFO_BTF?): pass the debug vmlinux with -s")
    try:
        blob = read_image(start, stop - start)
    except Exception as e:
        raise PfnscopeError(where, f"cannot read the kernel's BTF at {start:#x}: {e}")
    return Source("btf", btf_types(blob, f"{where}: BTF at {start:#x}"), syms)


# --- the debug vmlinux without its DWARF: .BTF and .symtab --------------------------

def vmlinux_btf_source(path: str, vmci: VmcoreInfo, read_u64: ReadU64) -> Optional[Source]:
    """The debug vmlinux's answers read without indexing its DWARF: types
    from its .BTF section (CONFIG_DEBUG_INFO_BTF: the bytes the kernel image
    carries between __start_BTF and __stop_BTF, encoded by pahole from this
    file's DWARF), symbols from its ELF symbol table, moved as DrgnSymbols
    moves them (one delta, measured at init_top_pgt or swapper_pg_dir
    against VMCOREINFO).  drgn's index of the DWARF maps and reads most of
    the file (~200 MB of a Debian vmlinux); this reads the two sections.

    Kind "debuginfo": the answers are the vmlinux's.  None when the file has
    no .BTF section or symbol table, its BTF does not parse, or no symbol
    VMCOREINFO names lets the delta be checked: the caller loads the DWARF."""
    from . import vmlinux as vmlinux_mod
    elf = vmlinux_mod.ElfFile(path)
    try:
        blob = elf.section(".BTF")
        lookup = elf.symbol_lookup() if blob else None
    finally:
        elf.close()
    if not blob or lookup is None:
        return None
    try:
        types = VmlinuxBtfTypes(core().Btf(blob), lookup)
    except ValueError:
        return None
    linked = None
    for ref_name in ("init_top_pgt", "swapper_pg_dir"):
        ref = vmci.symbol(ref_name)
        syms = [a for a, t in lookup([ref_name]).get(ref_name, []) if t.isupper()]
        if ref is not None and len(syms) == 1:
            linked = syms[0]
            break
    if linked is None:
        return None
    delta = (ref - linked) & U64_MAX
    if delta not in (0, vmci.kaslr_offset):
        raise LayoutError(
            path, f"{ref_name} is at {linked:#x} in the vmlinux but {ref:#x} in the dump "
            f"(KERNELOFFSET {vmci.kaslr_offset:#x}): vmlinux from another build")

    def moved(names: Iterable[str]) -> Dict[str, List[tuple]]:
        return {n: [((a + delta) & U64_MAX, t) for a, t in syms]
                for n, syms in lookup(names).items()}
    symbols = KallsymsSymbols(moved, read_u64, vmci, path)
    symbols.what = "vmlinux"
    return Source("debuginfo", types, symbols)


def force_btf() -> bool:
    """PFNSCOPE_BTF=1: never look for a debug vmlinux (as --btf)."""
    return os.environ.get("PFNSCOPE_BTF", "") not in ("", "0")
