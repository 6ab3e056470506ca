"""Opening a target: which reader reads its memory, where its types and
symbols come from, and the Session over both.

* open_dump(path, vmlinux, reader="kdumpfile"): the C KdumpFile reader opens
  the dump (pfnscope.dumpfile); the Session's drgn Program is made from the
  dump's VMCOREINFO and given memory through the Session
  (pfnscope.program), so drgn's helpers work on it too.
* open_dump(path, vmlinux, reader="drgn"): drgn opens the dump itself and
  ``prog.read(addr, n, True)`` is the C core's reader.
* open_live(): /proc/kcore through drgn.
* open_qemu_ram(): a running QEMU guest's RAM file (the C RawFile reader).

Types and symbols: the debug vmlinux (given, or found for the kernel's
release: pfnscope.vmlinux), else (or with btf=True) the kernel's own BTF and
kallsyms (pfnscope.source).
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Tuple
    import drgn
    ReadU64 = Callable[[int], int]

from . import arch as arch_mod
from . import layoutcache
from . import qemu_diskdump
from . import source as source_mod
from . import vmlinux as vmlinux_mod
from .dumpfile import check_file, dump_vmcoreinfo, kdumpfile_vmcoreinfo, open_kdumpfile
from .errors import PfnscopeError
from .extension import core
from .program import (add_segments, drgn_image_reader, drgn_reader, drgn_session, import_drgn,
                      load_vmlinux, program_from_vmcoreinfo, uts_release)
from .session import SESSIONS, Session
from .vmcoreinfo import VmcoreInfo, from_program, scan_vmcoreinfo


U64_MAX = (1 << 64) - 1


def open_dump(path: str, vmlinux: Optional[str] = None, reader: str = "kdumpfile",
              btf: bool = False, layout_cache: bool = False) -> Session:
    """Open a crash dump; returns a Session (session.prog is a drgn Program).

    Types and symbols: the debug vmlinux (given, or found for the dump's
    release); without one (or with btf=True) the kernel's own BTF and
    kallsyms tables, found in the dump through VMCOREINFO.  A damaged dump
    (cut short, corrupt page descriptors or bitmap blocks) opens with
    session.damage set (see KdumpFile.damage): its missing pages read as
    unreadable, everything else answers."""
    check_file(path, refuse_truncated=(reader != "kdumpfile"))
    if reader == "kdumpfile":
        kf = open_kdumpfile(path)
        vmci = kdumpfile_vmcoreinfo(kf, path)
        if vmci.arch is arch_mod.ARM64 and kf.format.startswith("diskdump") and \
                qemu_diskdump.probe(path) not in (None, 4096):
            # QEMU's aarch64 kdump-compressed file: 64 KiB blocks, which
            # libkdumpfile 0.5.1 reads as 4 KiB pages (pfnscope.qemu_diskdump)
            kf.close()
            qd = qemu_diskdump.QemuDiskdump(path)
            return _image_session(qd, vmci, path, "qemu-diskdump", vmlinux, btf, layout_cache)
        return _image_session(kf, vmci, path, "kdumpfile", vmlinux, btf, layout_cache)
    if reader == "drgn":
        drgn = import_drgn()
        prog = drgn.Program()
        try:
            prog.set_core_dump(path)
        except (drgn.FaultError, ValueError, OSError, Exception) as e:
            if qemu_diskdump.probe(path) not in (None, 4096):
                # libkdumpfile 0.5.1 under drgn takes the 64 KiB blocks of
                # QEMU's aarch64 kdump-compressed file for pages and finds no
                # architecture in its header
                raise PfnscopeError(path, f"drgn {drgn.__version__} cannot open QEMU's arm64 "
                                    f"kdump-compressed dump ({e}); use --reader kdumpfile")
            raise PfnscopeError(path, f"drgn cannot open this dump: {e} (try --reader kdumpfile)")
        arch = _drgn_arch(prog)
        release = uts_release(prog)
        vml, why = _find_vmlinux(vmlinux, release, btf)
        if vml is None:
            vmci = dump_vmcoreinfo(path)
            if vmci.arch is arch_mod.ARM64:
                _drgn_arm64_reads(prog, vmci.symbol("swapper_pg_dir"), path)
            read_img = drgn_image_reader(prog)
            lsrc = _btf_or_explain(lambda: source_mod.dump_btf_source(
                vmci, read_img, _guard_read(lambda a: prog.read_u64(a), path, drgn.FaultError),
                path), why)
            return drgn_session(prog, vmci, drgn_reader(prog), path, "drgn", lsrc)
        vmlinux_mod.check_match(vml, VmcoreInfo(f"OSRELEASE={release}\n"), arch)
        load_vmlinux(prog, vml)
        if arch is arch_mod.ARM64:
            _drgn_arm64_reads(prog, prog.symbol("swapper_pg_dir").address, path)
        try:
            vmci = from_program(prog)
        except PfnscopeError as e:
            raise PfnscopeError(path, "drgn cannot read kernel memory from this dump "
                                "(physical-only ELF?); use --reader kdumpfile") from e
        vmlinux_mod.check_match(vml, vmci)
        return drgn_session(prog, vmci, drgn_reader(prog), path, "drgn", vmlinux=vml)
    raise PfnscopeError("--reader", f"unknown reader {reader!r} (kdumpfile or drgn)")


def _drgn_arch(prog: drgn.Program) -> arch_mod.Arch:
    """The architecture drgn found in the core (its ELF machine)."""
    import drgn
    platform = prog.platform
    if platform is not None and platform.arch == drgn.Architecture.AARCH64:
        return arch_mod.ARM64
    return arch_mod.X86_64


def _drgn_arm64_reads(prog: drgn.Program, swapper_pg_dir: Optional[int], path: str) -> None:
    """One clear error when drgn cannot read an arm64 kernel's virtual
    memory.  drgn 0.0.22 translates a kernel address by walking
    swapper_pg_dir, itself a kernel-image address it must translate first
    (libdrgn/arch_aarch64.c): in a core without virtual segments for the
    image (QEMU's ELF dumps of arm64 guests) that read fails as "recursive
    address translation"."""
    if swapper_pg_dir is None:
        return
    import drgn
    try:
        prog.read(swapper_pg_dir, 8)
    except drgn.FaultError as e:
        raise PfnscopeError(path, f"drgn {drgn.__version__} cannot read arm64 kernel memory "
                            f"in this dump ({e}); use --reader kdumpfile") from None


def open_live(vmlinux: Optional[str] = None, btf: bool = False) -> Session:
    """The running kernel through /proc/kcore (needs root).  Types and
    symbols: the debug vmlinux (given or found), else (or with btf=True)
    /sys/kernel/btf/vmlinux and /proc/kallsyms."""
    drgn = import_drgn()
    prog = drgn.Program()
    try:
        prog.set_kernel()
    except (PermissionError, OSError) as e:
        raise PfnscopeError("/proc/kcore", f"cannot open: {getattr(e, 'strerror', None) or e}")
    except Exception as e:
        raise PfnscopeError("/proc/kcore", f"cannot open: {e}")
    release = uts_release(prog)
    vml, why = _find_vmlinux(vmlinux, release, btf)
    if vml is None:
        reader = drgn_reader(prog)
        vmci = source_mod.sysfs_vmcoreinfo(reader)
        read_u64 = _guard_read(lambda a: prog.read_u64(a), "/proc/kcore", drgn.FaultError)
        lsrc = _btf_or_explain(lambda: source_mod.live_btf_source(vmci, read_u64), why)
        sess = drgn_session(prog, vmci, reader, "/proc/kcore", "kcore", lsrc)
        sess.confirm = True   # the same running kernel, whichever layout source
        return sess
    vmlinux_mod.check_match(vml, VmcoreInfo(f"OSRELEASE={release}\n"))
    load_vmlinux(prog, vml)
    vmci = from_program(prog)
    sess = drgn_session(prog, vmci, drgn_reader(prog), "/proc/kcore", "kcore", vmlinux=vml)
    sess.confirm = True
    return sess


def open_qemu_ram(path: str, vmlinux: Optional[str] = None, low_size: int = 3 << 30,
                  high_start: int = 4 << 30, btf: bool = False,
                  layout_cache: bool = False) -> Session:
    """A running QEMU guest through its RAM file (``-object
    memory-backend-file,mem-path=FILE,share=on``), read without pausing the
    guest: entries may change under a walk (session.live is True; the CLI
    re-reads and reports entries that changed).  Guest physical [0, low_size)
    is file offset [0, low_size); RAM above 4 GiB follows (QEMU pc/q35)."""
    c = core()
    vmci, _ = scan_vmcoreinfo(path)
    try:
        raw = c.RawFile(path, low_size, high_start)
    except c.OpenError as e:
        raise PfnscopeError(path, str(e).replace(path + ": ", "", 1))
    sess = _image_session(raw, vmci, path, "qemu-ram", vmlinux, btf, layout_cache)
    sess.live = True
    sess.confirm = True
    return sess


def _image_session(phys, vmci: VmcoreInfo, path: str, reader_name: str,
                   vmlinux: Optional[str], btf: bool, layout_cache: bool = False) -> Session:
    """A Session over a physical reader (KdumpFile, RawFile) and the dump's
    VMCOREINFO: kernel-image reads go through __pa_symbol().

    layout_cache: types and symbols from the layout cache of the kernel's
    build-id (pfnscope.layoutcache), the debug vmlinux loaded only for what
    the cache lacks -- so session.prog may have no DWARF: the CLI's choice,
    which uses no drgn objects; the Python API loads the vmlinux as before."""
    vml, why = _find_vmlinux(vmlinux, vmci.osrelease, btf)
    damage = getattr(phys, "damage", None)
    read_u64 = _guard_read(vmci.arch.image_read_u64(phys.read_phys, vmci), path)
    progs = _LazyProgram(vmci)
    try:
        lsrc = _layout_cache_source(progs.get, vmci, vml, btf, read_u64) if layout_cache else None
        if lsrc is not None:
            pass
        elif vml is None:
            read_img = vmci.arch.image_reader(phys.read_phys, vmci)
            lsrc: Optional[source_mod.Source] = _btf_or_explain(
                lambda: source_mod.dump_btf_source(vmci, read_img, read_u64, path), why)
        else:
            vmlinux_mod.check_match(vml, vmci)
            load_vmlinux(progs.get(), vml)
            lsrc = source_mod.drgn_source(progs.get(), vmci, read_u64)
        sess = Session(vmci, phys, path, reader_name, lsrc)
        sess.vmlinux = vml
        if isinstance(lsrc, layoutcache.CachedSource):
            if lsrc.kind != "cache":
                layoutcache.warm(lsrc)
            lsrc.save()
    except PfnscopeError as e:
        phys.close()
        if damage:  # the kernel's own data is in the part that is gone
            raise PfnscopeError(e.where, f"{e.problem} (the dump is damaged: "
                                f"{damage['message']})") from e
        raise
    except Exception:
        phys.close()
        raise

    def attach():
        # the session's Program: memory through the session, registered
        # under it (pfnscope.program.session_for finds it)
        prog = progs.get()
        add_segments(prog, sess)
        sess.key = prog
        SESSIONS.add(prog, sess)
        return prog
    if progs.made:   # the debug info is in it already: the Program now, as drgn_session's
        sess.prog = attach()
    else:
        sess.make_prog = attach
    sess.damage = damage
    return sess


class _LazyProgram:
    """The drgn Program over a dump's VMCOREINFO (program_from_vmcoreinfo),
    made when first asked for: by the DWARF loader, or by session.prog."""

    def __init__(self, vmci: VmcoreInfo) -> None:
        self.vmci = vmci
        self.prog = None

    @property
    def made(self) -> bool:
        return self.prog is not None

    def get(self):
        if self.prog is None:
            self.prog = program_from_vmcoreinfo(self.vmci)
        return self.prog


def _layout_cache_source(get_prog: Callable[[], "drgn.Program"], vmci: VmcoreInfo,
                         vml: Optional[str], btf: bool, read_u64):
    """The layout source from the layout cache of the kernel's build-id
    (pfnscope.layoutcache): its file's answers, or the debug vmlinux's,
    recorded (loaded only when needed, into get_prog()); None: no cache
    for this target."""
    if btf or source_mod.force_btf():
        return None
    if vml is not None:
        # the build (machine, build-id) now; its banner when it is read: a
        # cached layout was recorded for this build-id and release
        vmlinux_mod.check_match(vml, vmci, release=False)
    checked = []

    def check_release():
        if not checked:
            vmlinux_mod.check_release(vml, vmci)
            checked.append(vml)

    def dwarf():
        check_release()
        prog = get_prog()
        load_vmlinux(prog, vml)
        return source_mod.drgn_source(prog, vmci, read_u64)

    def real():
        # the vmlinux's .BTF and symbol table when it has them: the same
        # layout as its DWARF (tests/python/test_layout_cache.py) without
        # drgn's index of it (~200 MB mapped, ~1 s)
        check_release()
        src = source_mod.vmlinux_btf_source(vml, vmci, read_u64)
        return src if src is not None else dwarf()
    if vml is None:
        return layoutcache.source_for(vmci, read_u64, None)
    return layoutcache.source_for(vmci, read_u64, real, dwarf)


def _find_vmlinux(vmlinux: Optional[str], release: str,
                  btf: bool) -> Tuple[Optional[str], Optional[PfnscopeError]]:
    """(vmlinux path or None for BTF, why no vmlinux was found)."""
    if vmlinux is not None:
        return vmlinux, None
    if btf or source_mod.force_btf():
        return None, None
    try:
        return vmlinux_mod.find_vmlinux(release), None
    except PfnscopeError as e:
        return None, e


def _btf_or_explain(make: Callable[[], source_mod.Source],
                    why: Optional[PfnscopeError]) -> source_mod.Source:
    """make() the BTF source; when it fails and no vmlinux was found either,
    one error says both."""
    try:
        return make()
    except PfnscopeError as e:
        if why is None:
            raise
        reason = e.problem.split(": without")[0].split(": pass")[0]
        tried = why.problem.split("; pass")[0]
        raise PfnscopeError(e.where, f"{reason}, and {tried}: pass the debug vmlinux with -s")


def _guard_read(read_u64: ReadU64, path: str, fault: Optional[type] = None) -> ReadU64:
    """read_u64 whose failures (the C core's, or fault: drgn.FaultError for a
    Program's reads) name the target and the address."""
    c = core()
    errors = (c.Error,) if fault is None else (c.Error, fault)

    def read(va: int) -> int:
        try:
            return read_u64(va)
        except errors as e:
            raise PfnscopeError(path, f"cannot read kernel image at {va:#x}: {e}")
    return read
