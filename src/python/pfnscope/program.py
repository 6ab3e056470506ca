"""The drgn side of a target: a drgn Program for every Session that has one.

* session_for(prog): the Session of a Program (an interactive drgn session,
  or one pfnscope opened), made on first use, registered under the Program.
* program_from_vmcoreinfo(): a Program over a tiny synthetic ELF core that
  holds only the dump's VMCOREINFO note.  That is the only way drgn 0.0.22
  learns KERNELOFFSET (it relocates vmlinux by prog->vmcoreinfo.kaslr_offset,
  parsed only from a core's VMCOREINFO note) and marks the Program as a
  Linux kernel.  add_segments() then gives it memory: physical memory
  through the Session's reader, the kernel half of the virtual address space
  through the C core's page-table translation (Target.read_kvirt), so that
  drgn's own helpers work on dumps drgn cannot open itself.
* Readers and reads over a Program: drgn_reader(), uts_release(),
  load_vmlinux(), vma_from_object().
"""
from __future__ import annotations

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .names import VmaTuple
    from typing import Callable, Optional, Tuple
    import drgn
    ReadBytes = Callable[[int, int], bytes]
    ReadU64 = Callable[[int], int]

from . import source as source_mod
from .errors import PfnscopeError
from .extension import core
from .session import SESSIONS, Session
from .vmcoreinfo import VmcoreInfo, from_program


def drgn_session(prog: drgn.Program, vmci: VmcoreInfo, reader, source: str, reader_name: str,
                 layout_source: Optional[source_mod.Source] = None,
                 read_u64: Optional[ReadU64] = None,
                 vmlinux: Optional[str] = None) -> Session:
    """A Session whose Program is prog, registered under prog.  Types and
    symbols: layout_source, else prog's debug info (kernel-image values read
    with read_u64, else prog.read_u64)."""
    if layout_source is None:
        layout_source = source_mod.drgn_source(prog, vmci, read_u64)
    sess = Session(vmci, reader, source, reader_name, layout_source, key=prog)
    sess.prog = prog
    sess.vmlinux = vmlinux
    return sess


def session_for(prog) -> Session:
    """The Session of a Program (made on first use for foreign Programs);
    a Session is its own."""
    if isinstance(prog, Session):
        return prog
    sess = SESSIONS.get(prog)
    if sess is not None:
        return sess
    import drgn
    if not (prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL):
        raise PfnscopeError("program", "not a Linux kernel program")
    vmci = from_program(prog)
    live = bool(prog.flags & drgn.ProgramFlags.IS_LIVE)
    sess = drgn_session(prog, vmci, drgn_reader(prog), "/proc/kcore" if live else "drgn program",
                        "drgn")
    sess.confirm = live   # `drgn -k`: the kernel keeps running under the walk
    return sess


def vma_from_object(sess: Session, vma: drgn.Object) -> Tuple[int, VmaTuple]:
    """(mm_va, vma tuple) for a drgn ``struct vm_area_struct *``."""
    import drgn
    va = int(vma.value_()) if vma.type_.kind == drgn.TypeKind.POINTER else int(vma.address_)
    mm = int(vma.vm_mm.value_())
    start = int(vma.vm_start)
    found = sess.find_vma(mm, start)
    if found is None or found[0] != va:
        raise PfnscopeError(f"vma {va:#x}", "not found in its mm's VMA tree")
    return mm, found


# --- readers over a Program ------------------------------------------------------

def drgn_reader(prog: drgn.Program) -> ReadBytes:
    """The C core's physical reader through prog.read(addr, n, physical)."""
    read = prog.read

    def read_phys(paddr: int, size: int) -> bytes:
        return read(paddr, size, True)
    return read_phys


def drgn_image_reader(prog: drgn.Program) -> ReadBytes:
    """Kernel-image (virtual) reads through prog."""
    def read(va: int, n: int) -> bytes:
        return prog.read(va, n)
    return read


def uts_release(prog: drgn.Program) -> str:
    try:
        return prog["UTS_RELEASE"].string_().decode()
    except Exception as e:
        raise PfnscopeError("UTS_RELEASE", f"not available from the target: {e}")


def load_vmlinux(prog: drgn.Program, vmlinux: str) -> None:
    import drgn
    try:
        prog.load_debug_info([vmlinux])
    except drgn.MissingDebugInfoError as e:
        raise PfnscopeError(vmlinux, f"cannot load debug info: {e}")
    except OSError as e:
        raise PfnscopeError(vmlinux, e.strerror or str(e))


# --- a Program over VMCOREINFO and the C core -------------------------------------

def vmcoreinfo_elf(vmci_text: str, machine: int = 62) -> bytes:
    """An ELF64 ET_CORE file (e_machine MACHINE: 62 x86-64, 183 AArch64)
    whose only content is a VMCOREINFO note."""
    desc = vmci_text.encode()
    if not desc.endswith(b"\n"):
        desc += b"\n"
    name = b"VMCOREINFO\0"
    note = struct.pack("<III", len(name), len(desc), 0)
    note += name + b"\0" * (-len(name) % 4) + desc + b"\0" * (-len(desc) % 4)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(note), 0, 4)
    return ehdr + phdr + note


def import_drgn():
    """The drgn module, imported where a Program is first needed (a dump
    read by the C readers needs none)."""
    try:
        import drgn
    except ImportError as e:
        raise PfnscopeError("drgn", f"cannot import ({e}); run with /usr/bin/python3")
    return drgn


def program_from_vmcoreinfo(vmci: VmcoreInfo) -> drgn.Program:
    drgn = import_drgn()
    prog = drgn.Program()
    fd = os.memfd_create("pfnscope-vmcoreinfo")
    try:
        os.write(fd, vmcoreinfo_elf(vmci.text, vmci.arch.machine))
        prog.set_core_dump(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return prog


def add_segments(prog: drgn.Program, sess: Session) -> None:
    """Physical memory through the session's reader, kernel virtual memory
    through the C core's page-table translation (Target.read_kvirt)."""
    import drgn
    c = core()
    tgt = sess.target

    def read_phys(address: int, count: int, offset: int, physical: bool) -> bytes:
        try:
            return tgt.read_phys(address, count)
        except c.Error as e:
            raise drgn.FaultError(f"physical memory not in the dump: {e}", address)

    def read_kvirt(address: int, count: int, offset: int, physical: bool) -> bytes:
        try:
            return tgt.read_kvirt(address, count)
        except c.Error as e:
            raise drgn.FaultError(f"cannot read kernel memory: {e}", address)

    maxphys = 1 << int(sess.layout_dict["max_physmem_bits"])
    prog.add_memory_segment(0, maxphys, read_phys, True)
    start = sess.arch.kernel_start(sess.layout_dict)
    prog.add_memory_segment(start, (1 << 64) - start, read_kvirt, False)
