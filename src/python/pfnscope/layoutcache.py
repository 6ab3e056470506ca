"""A cache of what the layout builder asked a layout source, per kernel build.

Loading a debug vmlinux through drgn costs ~0.5 s and ~200 MB before the
first entry (the first run reads the vmlinux's .BTF and symbol table
instead where they give the same layout: pfnscope.opening).  What pfnscope takes from it is small: the answers to a few
hundred questions of pfnscope.source's interface (is there a type, a
member's offset, an array's length, an enum's values, a function's
parameters, a symbol's address).  The first run on a kernel answers them
from the debug info and writes them down; later runs on the same kernel
build answer them from that file, and the layout is built by the same code
(pfnscope.layout.build_layout) from the same answers, so it is the same
layout.  Values that live in the dumped memory (highest_memmap_pfn,
page_offset_base, mem_section, ...) are still read from the dump: only the
types and link-time symbol addresses are cached.

The file is ``<cache>/layouts/<build-id>.json`` where ``<cache>`` is
$PFNSCOPE_CACHE, else $XDG_CACHE_HOME/pfnscope, else ~/.cache/pfnscope.  It
is used only when all of these match: the kernel's build-id (VMCOREINFO
BUILD-ID, which Linux 5.9+ writes) and release, pfnscope's version, the
field list of the C layout (pfnscope._core.Layout.fields()), the code that
builds a layout from the answers (this module, pfnscope.layout and
pfnscope.source), and a checksum of the answers themselves.  Anything else
-- a file from another version, cut short, edited, unreadable -- is ignored
and written again from the debug info.  A question the file does not answer
(a code path it never saw) is answered by the debug vmlinux, loaded then,
and the file is extended; never guessed.

Symbols are stored relative to the kernel's KASLR offset (KERNELOFFSET) so
that one file serves every boot of a build.

PFNSCOPE_LAYOUT_CACHE=0 turns the cache off (neither read nor written).
"""
from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional

from .errors import PfnscopeError

try:  # the built-in sha256: hashlib's import loads OpenSSL (~10 ms)
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - Python 3.12+ names it _sha2
    try:
        from _sha2 import sha256 as _sha256
    except ImportError:
        from hashlib import sha256 as _sha256

FORMAT = 1
U64_MAX = (1 << 64) - 1


def enabled() -> bool:
    return os.environ.get("PFNSCOPE_LAYOUT_CACHE", "1") not in ("0", "", "off", "no")


def cache_dir() -> str:
    """$PFNSCOPE_CACHE, else $XDG_CACHE_HOME/pfnscope, else ~/.cache/pfnscope."""
    d = os.environ.get("PFNSCOPE_CACHE")
    if d:
        return d
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "pfnscope")
    return os.path.expanduser("~/.cache/pfnscope")


def path_for(build_id: str) -> str:
    return os.path.join(cache_dir(), "layouts", f"{build_id}.json")


_CODE_HASH: Optional[str] = None


def code_hash() -> str:
    """What a cached file was made by: pfnscope's version, the C layout's
    fields and their initial values, and the Python that turns answers into
    a layout."""
    global _CODE_HASH
    if _CODE_HASH is None:
        from . import __version__, layout, source
        from .extension import core
        h = _sha256()
        h.update(f"format {FORMAT} pfnscope {__version__}\n".encode())
        h.update("\n".join(sorted(core().Layout.fields())).encode())
        # and each field's initial value: what "absent" is for it
        h.update(repr(sorted(core().Layout.initial().items())).encode())
        for mod in (layout, source):
            with open(mod.__file__, "rb") as f:
                h.update(f.read())
        with open(__file__, "rb") as f:
            h.update(f.read())
        _CODE_HASH = h.hexdigest()
    return _CODE_HASH


def _key(method: str, args: tuple) -> str:
    return method + "\x1f" + "\x1f".join(str(a) for a in args)


def _checksum(body: Dict[str, Any]) -> str:
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


class Miss(PfnscopeError):
    """A question the cache file does not answer and nothing else can."""


class _Answers:
    """types or symbols of a source, answered from a dict of recorded
    answers, else from the real source (made on first need), recording what
    it answers.  Symbol addresses are stored relative to the KASLR offset."""

    def __init__(self, book: Dict[str, Any], real: Callable[[], Any], kaslr: int,
                 what: str, on_new: Callable[[], None]) -> None:
        self._book = book
        self._real = real
        self._kaslr = kaslr
        self.what = what
        self._on_new = on_new

    def _ask(self, method: str, *args):
        k = _key(method, args)
        if k in self._book:
            v = self._book[k]
            if method == "address" and v is not None:
                v = (v + self._kaslr) & U64_MAX
            elif method == "enumerators" and v is not None:
                v = {name: value for name, value in v}   # in the kernel's order
            return v
        v = getattr(self._real(), method)(*args)
        stored = v
        if method == "address" and v is not None:
            stored = (v - self._kaslr) & U64_MAX
        elif isinstance(v, dict):
            # pairs, not an object: the order of enumerators is the
            # kernel's (the first name of a value wins) and JSON objects
            # are written with sorted keys
            stored = [[name, value] for name, value in v.items()]
        elif isinstance(v, (list, tuple)):
            stored = list(v)
        self._book[k] = stored
        self._on_new()
        return v


class CachedTypes(_Answers):
    def exists(self, tname):
        return self._ask("exists", tname)

    def sizeof(self, tname):
        return self._ask("sizeof", tname)

    def offsetof(self, tname, path):
        return self._ask("offsetof", tname, path)

    def array_len(self, tname, path):
        return self._ask("array_len", tname, path)

    def enumerators(self, tname):
        return self._ask("enumerators", tname)

    def object_array_len(self, name):
        return self._ask("object_array_len", name)

    def function_params(self, name):
        v = self._ask("function_params", name)
        return list(v) if v is not None else None


class CachedSymbols(_Answers):
    def __init__(self, *a, read_u64, **kw) -> None:
        super().__init__(*a, **kw)
        self.read_u64 = read_u64

    def address(self, name):
        return self._ask("address", name)

    def is_pointer(self, name):
        return self._ask("is_pointer", name)


class CachedSource:
    """A layout source (pfnscope.source's interface) over a cache file's
    answers; kind is "cache" when the file answered, the real source's kind
    ("debuginfo") when the file is being made.  load_real() returns the real
    Source (the debug vmlinux's .BTF and symbol table, or its DWARF); it is
    called only for a question the file does not answer.  load_drgn()
    returns the Source over drgn's DWARF (load_real's when not given), for
    callers that need drgn's own types (real_source())."""

    def __init__(self, build_id: str, release: str, kaslr: int,
                 book: Dict[str, Dict[str, Any]], load_real: Optional[Callable[[], Any]],
                 read_u64, kind: str, load_drgn: Optional[Callable[[], Any]] = None) -> None:
        self.kind = kind
        self.build_id = build_id
        self.release = release
        self.dirty = False
        self._load_real = load_real
        self._real = None
        self.book = book

        def real():
            if self._real is None:
                if self._load_real is None:
                    raise Miss(path_for(build_id), "layout cache lacks an answer and no debug "
                               "vmlinux is available: pass it with -s")
                self._real = self._load_real()
            return self._real

        def drgn_source():
            if self._drgn is None:
                from .source import DrgnTypes
                if load_drgn is None or isinstance(getattr(self._real, "types", None), DrgnTypes):
                    self._drgn = real()   # (the DWARF is loaded once)
                else:
                    self._drgn = load_drgn()
            return self._drgn

        def new():
            self.dirty = True
        self._drgn = None
        self.real_source = drgn_source
        self.types = CachedTypes(book.setdefault("types", {}), lambda: real().types, kaslr,
                                 "vmlinux debug info", new)
        self.symbols = CachedSymbols(book.setdefault("symbols", {}), lambda: real().symbols,
                                     kaslr, "vmlinux", new, read_u64=read_u64)

    # real_source() -> the Source over drgn's DWARF, loading the debug
    # vmlinux first (for callers that need drgn's own types, such as
    # pfnscope.kvm_mmu)

    @property
    def used_debuginfo(self) -> bool:
        return self._real is not None or self._drgn is not None

    @property
    def used_dwarf(self) -> bool:
        """Whether drgn indexed the debug vmlinux's DWARF."""
        from .source import DrgnTypes
        return any(isinstance(getattr(s, "types", None), DrgnTypes) for s in (self._real, self._drgn))

    def save(self) -> Optional[str]:
        """Write the answers (atomically: a reader sees the old file or the
        new one); None when the cache directory cannot be written."""
        if not self.dirty or not enabled():
            return None
        body = {"types": self.book["types"], "symbols": self.book["symbols"]}
        doc = {"format": FORMAT, "code": code_hash(), "build_id": self.build_id,
               "release": self.release, "checksum": _checksum(body), **body}
        path = path_for(self.build_id)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            import tempfile   # only here: with shutil, random and more, ~10 ms of start-up
            fd, tmp = tempfile.mkstemp(prefix=".layout-", dir=os.path.dirname(path))
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(doc, f, sort_keys=True, separators=(",", ":"))
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return None
        self.dirty = False
        return path


def read_file(build_id: str, release: str) -> Optional[Dict[str, Dict[str, Any]]]:
    """The answers of the cache file of build_id, or None when there is no
    valid one (missing, unreadable, another pfnscope or kernel, corrupt)."""
    try:
        with open(path_for(build_id), "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    if (doc.get("format") != FORMAT or doc.get("build_id") != build_id
            or doc.get("release") != release or doc.get("code") != code_hash()):
        return None
    types, symbols = doc.get("types"), doc.get("symbols")
    if not isinstance(types, dict) or not isinstance(symbols, dict):
        return None
    if doc.get("checksum") != _checksum({"types": types, "symbols": symbols}):
        return None
    return {"types": types, "symbols": symbols}


def source_for(vmci, read_u64, load_real: Optional[Callable[[], Any]],
               load_drgn: Optional[Callable[[], Any]] = None) -> Optional[CachedSource]:
    """A layout source for the kernel of vmci: its cache file's answers
    (kind "cache"), else a recorder over load_real()'s (kind "debuginfo",
    saved by CachedSource.save after the session is built); None when the
    cache is off or the kernel has no build-id to key it by.  load_drgn:
    see CachedSource."""
    if not enabled():
        return None
    bid = vmci.build_id
    if not bid or not all(c in "0123456789abcdef" for c in bid.lower()):
        return None
    bid = bid.lower()
    kaslr = vmci.kaslr_offset or 0
    book = read_file(bid, vmci.osrelease)
    if book is not None:
        return CachedSource(bid, vmci.osrelease, kaslr, book, load_real, read_u64, "cache",
                            load_drgn)
    if load_real is None:
        return None
    src = CachedSource(bid, vmci.osrelease, kaslr, {"types": {}, "symbols": {}}, load_real,
                       read_u64, "debuginfo", load_drgn)
    src.dirty = True
    return src


# Questions a session asks after the layout is built (file and VMA names
# through raw reads: pfnscope.target.Session._d_path, _maps_path_raw,
# _name_offsets).  Asked once when a cache file is made, so that a cached
# run never needs the debug info for them.
SESSION_OFFSETS = (
    "struct file:f_path", "struct path:mnt", "struct path:dentry", "struct dentry:d_parent",
    "struct dentry:d_name", "struct qstr:name", "struct dentry:d_op",
    "struct dentry_operations:d_dname", "struct dentry:d_inode", "struct inode:i_sb",
    "struct super_block:s_type", "struct file_system_type:name", "struct vfsmount:mnt_root",
    "struct mount:mnt", "struct mount:mnt_parent", "struct mount:mnt_mountpoint",
    "struct inode:i_ino", "struct dentry:d_hash", "struct hlist_bl_node:pprev",
    "struct mm_struct:brk", "struct mm_struct:start_brk", "struct mm_struct:start_stack",
    "struct vm_special_mapping:name", "struct vm_operations_struct:name",
    "struct vm_area_struct:anon_name", "struct anon_vma_name:name",
    "struct vm_area_struct:shared",
    # rmap's question whether KVM is loaded (pfnscope.kvm_mmu.kvm_module_loaded)
    "struct module:list", "struct module:name",
)
SESSION_SYMBOLS = ("simple_dname", "sockfs_dname", "pipefs_dname", "anon_inodefs_dname", "modules")


def warm(src: CachedSource) -> None:
    """Ask the session's later questions now (see SESSION_OFFSETS)."""
    from .layout import _Types
    T = _Types(src.types)
    for k in SESSION_OFFSETS:
        tname, member = k.split(":", 1)
        T.off(tname, member, required=False)
    for name in SESSION_SYMBOLS:
        src.symbols.address(name)
