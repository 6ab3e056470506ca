"""pfnscope inside crash (the crash extension plugins/crash/pfnscope_crash.c).

    crash> extend pfnscope_crash.so
    crash> pfnscope walk -p 148 -a 0x7f0000000000 --json

The extension embeds Python and calls ``run(argv)`` with the words of the
command line; this module runs the CLI's commands (pfnscope.cli) on a
Session whose

* layout source is crash's (kind "crash"): types from crash's embedded gdb
  (STRUCT_SIZE / MEMBER_OFFSET, and gdb expressions for member paths, array
  lengths, enumerators and function prototypes), symbols from crash's symbol
  table, which crash has already relocated by the KASLR offset;
* reader is crash's readmem() of physical memory;
* VMCOREINFO is the dump's, item by item through crash's
  pc->read_vmcoreinfo (the reader crash chose for the dump's format).

Only importable inside crash: _pfnscope_crash is the extension's builtin
module.
"""
from __future__ import annotations

import os
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple

import _pfnscope_crash as _crash  # noqa: I001  (the extension's builtin module)

from . import cli as _cli
from . import layout as _layout
from .errors import PfnscopeError
from .session import SESSIONS, Session
from .source import Source, Symbols, Types
from .vmcoreinfo import VmcoreInfo

U64 = (1 << 64) - 1

# The VMCOREINFO items pfnscope reads (pfnscope.layout, pfnscope.source, the
# target record); crash gives them one key at a time.
VMCOREINFO_KEYS = (
    "OSRELEASE", "BUILD-ID", "PAGESIZE", "KERNELOFFSET", "NUMBER(phys_base)",
    "NUMBER(sme_mask)", "NUMBER(pgtable_l5_enabled)", "NUMBER(SECTION_SIZE_BITS)",
    "NUMBER(MAX_PHYSMEM_BITS)", "LENGTH(mem_section)", "SYMBOL(mem_section)",
    "SYMBOL(init_top_pgt)", "SYMBOL(swapper_pg_dir)", "SYMBOL(_stext)",
    "SYMBOL(init_uts_ns)", "NUMBER(HUGETLB_PAGE_DTOR)", "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)",
)

_IDENT = re.compile(r"^[A-Za-z_]\w*$")


def vmcoreinfo() -> VmcoreInfo:
    items = []
    for key in VMCOREINFO_KEYS:
        v = _crash.vmcoreinfo(key)
        if v is not None:
            items.append(f"{key}={v.strip()}\n")
    info = VmcoreInfo("".join(items))
    if "OSRELEASE" not in info:
        raise PfnscopeError("crash", "the dump has no VMCOREINFO (crash's read_vmcoreinfo "
                            "finds no OSRELEASE): pfnscope needs it")
    return info


def _split_type(tname: str) -> Tuple[str, str]:
    """("struct", "page") for "struct page"; ("", "pgd_t") for a typedef."""
    kw, _, rest = tname.partition(" ")
    if kw in ("struct", "union", "enum") and rest:
        return kw, rest.strip()
    return "", tname


class CrashTypes(Types):
    """Types from crash's gdb (pfnscope.source.Types); a type's handle is
    its size."""
    what = "vmlinux debug info (crash)"

    def __init__(self) -> None:
        super().__init__()
        self._off: Dict[tuple, Optional[int]] = {}

    @staticmethod
    def _gdb(cmd: str) -> Optional[str]:
        return _crash.gdb(cmd)

    def _gdb_int(self, expr: str) -> Optional[int]:
        out = self._gdb(f'printf "%lu\\n", (unsigned long)({expr})')
        try:
            return int(out.strip().splitlines()[-1]) if out else None
        except (ValueError, IndexError):
            return None

    def lookup(self, tname: str) -> Optional[int]:
        kw, bare = _split_type(tname)
        n = _crash.struct_size(bare) if kw in ("struct", "union") else -1
        if n < 0:
            n = self._gdb_int(f"sizeof({tname})")
        return n if n is not None and n >= 0 else None

    def type_size(self, t: int, tname: str) -> int:
        return t

    def member_offset(self, t: int, tname: str, path: str) -> Optional[int]:
        key = (tname, path)
        if key not in self._off:
            self._off[key] = self._offsetof(tname, path)
        return self._off[key]

    def _offsetof(self, tname: str, path: str) -> Optional[int]:
        kw, bare = _split_type(tname)
        if _IDENT.match(path) and kw in ("struct", "union"):
            o = _crash.member_offset(bare, path)
            if o >= 0:
                return o
        # a member path (mr64.pivot, numbers[0].nr), or a member of an
        # anonymous struct/union that MEMBER_OFFSET does not find
        return self._gdb_int(f"&(({tname} *)0)->{path}")

    def member_array_len(self, t: int, tname: str, path: str) -> Optional[int]:
        out = self._gdb(f"whatis (({tname} *)0)->{path}")
        m = re.search(r"\[(\d+)\](?:\[\d+\])*\s*$", out or "")
        return int(m.group(1)) if m else None

    def type_enumerators(self, t: int, tname: str) -> Optional[Iterable[Tuple[str, int]]]:
        """gdb's ptype of an enum: each enumerator, with " = N" where it is
        not the previous one's value plus one (gdb's c_type_print rule)."""
        out = self._gdb(f"ptype {tname}")
        if not out or "{" not in out:
            return None
        body = out[out.index("{") + 1:out.rindex("}")]
        res: List[Tuple[str, int]] = []
        val = 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            name, eq, num = item.partition("=")
            name = name.strip()
            if eq:
                try:
                    val = int(num.strip(), 0)
                except ValueError:
                    return None
            res.append((name, val))
            val += 1
        return res

    def function_params(self, name: str) -> Optional[List[str]]:
        """Parameter type names of a function, from gdb's prototype
        ("int (struct vm_area_struct *, unsigned long, ...)"); None: no such
        function in the debug info."""
        out = self._gdb(f"whatis {name}")
        if not out or "no debug info" in out:
            return None
        text = out.strip()
        if text.startswith("type = "):
            text = text[len("type = "):]
        if not text.endswith(")"):
            return None
        depth, start = 0, None
        for i in range(len(text) - 1, -1, -1):
            c = text[i]
            if c == ")":
                depth += 1
            elif c == "(":
                depth -= 1
                if depth == 0:
                    start = i
                    break
        if start is None:
            return None
        inner = text[start + 1:-1]
        params, depth, cur = [], 0, ""
        for c in inner:
            if c == "," and depth == 0:
                params.append(cur.strip())
                cur = ""
                continue
            depth += c == "("
            depth -= c == ")"
            cur += c
        if cur.strip():
            params.append(cur.strip())
        return [] if params == ["void"] else params

    def object_array_len(self, name: str) -> Optional[int]:
        out = self._gdb(f"whatis {name}")
        m = re.search(r"\[(\d+)\](?:\[\d+\])*\s*$", out or "")
        return int(m.group(1)) if m else None


class CrashSymbols(Symbols):
    """crash's symbols (already KASLR-relocated by crash); values read from
    the kernel image through __pa_symbol() and crash's physical reads."""
    what = "crash's symbol table"

    def __init__(self, phys_base: int) -> None:
        self.read_u64 = _layout.image_read_u64(_crash.readmem, phys_base)

    def address(self, name: str) -> Optional[int]:
        a = _crash.symbol(name)
        return None if a is None else a & U64

    def is_pointer(self, name: str) -> Optional[bool]:
        out = _crash.gdb(f"whatis {name}")
        if not out or "=" not in out:
            return None
        return out.strip().endswith("*")


class CrashSession(Session):
    """A pfnscope Session over crash's dump, registered under crash's
    extension module (one dump per crash process)."""

    def __init__(self) -> None:
        vmci = vmcoreinfo()
        phys_base = (vmci.number("phys_base", 0) or 0) & U64
        src = Source("crash", CrashTypes(), CrashSymbols(phys_base))
        super().__init__(vmci, _crash.readmem, "crash", "crash", src, key=_crash)
        self.vmlinux = None
        self.live = False


def session() -> Session:
    sess = SESSIONS.get(_crash)
    if sess is None:
        sess = CrashSession()
    return sess


_NOT_HERE = ("-c", "--core", "-k", "--kernel", "--qemu-ram", "--btf", "--reader")

last_rc = 0


def run(argv: List[str]) -> int:
    """One pfnscope command in crash; returns (and keeps in last_rc) the
    CLI's exit status.  Errors: one line on stderr, as the CLI."""
    global last_rc
    out = _cli.MemOut()
    saved = sys.stdout
    sys.stdout = out
    try:
        last_rc = _run(list(argv))
    finally:
        sys.stdout = saved
        try:
            sys.stderr.flush()
        except Exception:
            pass
        out.drain(_crash.write)
    return last_rc


def _run(argv: List[str]) -> int:
    for a in argv:
        opt = a.split("=", 1)[0]
        if opt in _NOT_HERE:
            return _cli._fail(f"{opt} does not apply in crash (the target is crash's dump)")
    try:
        args = _cli.build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error (already printed)
        return int(e.code or 0)
    if not hasattr(args, "json"):
        args.json = False
    try:
        rc = _cli.run_command(session(), args)
        sys.stdout.flush()
        return rc
    except PfnscopeError as e:
        return _cli._fail(e.line())
    except _crash.Error as e:
        return _cli._fail(f"crash: {e}")
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("pfnscope: interrupted\n")
        return 130
    except Exception as e:
        if os.environ.get("PFNSCOPE_DEBUG"):
            raise
        return _cli._fail(_cli._describe(e))
