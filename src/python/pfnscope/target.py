"""Targets: a drgn Program (types, helpers) + a C core Target (fast walks).

Three ways in:

* ``open_dump(path, vmlinux, reader="kdumpfile")``: the C KdumpFile reader opens
  the dump (any libkdumpfile format, including QEMU ELF paging=false and QEMU
  kdump-zlib that drgn 0.0.22 cannot open).  For drgn's types *and memory*, a
  tiny synthetic ELF core holding only the dump's VMCOREINFO note is handed to
  ``Program.set_core_dump``: that is the only way drgn 0.0.22 learns
  KERNELOFFSET (it relocates vmlinux by ``prog->vmcoreinfo.kaslr_offset``,
  parsed only from a core's VMCOREINFO note) and marks the Program as a Linux
  kernel.  Memory segments are then added: physical memory through the
  KdumpFile, the kernel half of the virtual address space through
  ``Target.read_kvirt`` -- so drgn's own helpers work on these dumps too.
* ``open_dump(path, vmlinux, reader="drgn")``: drgn opens the dump itself and
  ``prog.read(addr, n, True)`` is the core's reader.
* ``open_live()``: /proc/kcore through drgn.
* ``session_for(prog)``: an existing Program (an interactive drgn session).
"""
from __future__ import annotations

import os
import struct
from typing import Callable, Dict, List, Optional, Tuple

import drgn

from . import layout as layout_mod
from . import layoutcache
from . import source as source_mod
from . import vmlinux as vmlinux_mod
from .errors import PfnscopeError
from .vmcoreinfo import VmcoreInfo, from_program

try:
    from . import _core
except ImportError as _e:  # pragma: no cover - reported when used
    _core = None
    _CORE_IMPORT_ERROR = str(_e)
else:
    _CORE_IMPORT_ERROR = ""

U64_MAX = (1 << 64) - 1

# id(prog) -> Session; the Session holds the Program, so ids stay unique.
_SESSIONS: Dict[int, "Session"] = {}


def core():
    """The C extension module, or a one-line error telling how to build it."""
    if _core is None:
        raise PfnscopeError("pfnscope._core", f"C extension not built ({_CORE_IMPORT_ERROR}); run `make python`")
    return _core


Task = Tuple[int, int, int, int, str]            # (task_va, pid, tgid, mm_va, comm)
VmaTuple = Tuple[int, int, int, int, int, int, int]  # (vma_va, start, end, flags, pgoff, file, ops)


class Session:
    """One target: drgn Program + layout + C core Target.

    layout_source (pfnscope.source): where types and symbols come from --
    drgn's debug info (the default, from prog), BTF + kallsyms, or another
    debugger's (the GDB front end's).  With anything but drgn's debug info,
    prog has no types: file and VMA names are then read through the layout
    source's offsets and symbols, not drgn objects."""

    # a target that keeps running (/proc/kcore, a running guest's RAM):
    # findings at medium or above are read again before they are reported
    confirm = False

    def __init__(self, prog: drgn.Program, vmci: VmcoreInfo, reader, source: str,
                 reader_name: str, read_u64: Optional[Callable[[int], int]] = None,
                 layout_source=None) -> None:
        c = core()
        self.prog = prog
        self.vmci = vmci
        self.source = source
        self.reader_name = reader_name
        self.reader = reader
        if layout_source is None:
            layout_source = source_mod.drgn_source(prog, vmci, read_u64)
        self.layout_source = layout_source
        self.drgn_types = isinstance(layout_source.types, source_mod.DrgnTypes)
        self._T = layout_mod._Types(layout_source.types)
        # facts: where each semantics profile came from (kernel or version)
        self.facts: Dict[str, str] = {}
        self.layout_dict = layout_mod.build_layout(layout_source, vmci, facts=self.facts)
        try:
            self.layout = c.Layout(self.layout_dict)
        except ValueError as e:
            raise PfnscopeError("layout", str(e).replace("layout: ", ""))
        self.target = c.Target(self.layout, reader)
        self._files: Dict[int, Optional[str]] = {}
        self._mm_names: Dict[int, Tuple[int, int, int]] = {}
        self._name_offs: Optional[Dict[str, int]] = None
        # what a damaged dump lacks (KdumpFile.damage), None when whole
        self.damage: Optional[Dict[str, object]] = None
        _SESSIONS[id(prog)] = self

    # --- tasks and VMAs -------------------------------------------------
    def tasks(self) -> List[Task]:
        """Thread-group leaders.  On a live target the task list may change
        under the iteration (a task exits, its task_struct is freed): a
        listing that fails is read again, caches dropped, as vmas() does."""
        if not self.confirm:
            return list(self.target.tasks())
        return self._live_read(lambda: list(self.target.tasks()), "task list")

    def find_task(self, pid: int) -> Task:
        t = self.target.find_task(int(pid))
        if t is None:
            raise PfnscopeError(f"pid {pid}", "no such process in the target")
        return t

    # reads of a live task list or VMA tree before giving up (see vmas())
    VMA_TREE_READS = 3

    def vmas(self, mm: int) -> List[VmaTuple]:
        """The VMAs of mm.  On a live target the maple tree may change under
        the iteration (nodes replaced and freed after an RCU grace period,
        which the kernel's readers notice as dead nodes and restart from the
        root, mas_walk/mas_dead_node); a listing that fails is read again
        from the root, caches dropped, up to VMA_TREE_READS times."""
        if not self.confirm:
            return list(self.target.vmas(int(mm)))
        return self._live_read(lambda: list(self.target.vmas(int(mm))), "VMA tree",
                               "or the task exited")

    def _live_read(self, read, what: str, why: str = ""):
        """read() until it does not fail, VMA_TREE_READS times at most.  The
        mm's maple tree replaces nodes and frees the old ones after an RCU
        grace period (commit 3dd4432549415f "mm: enable maple tree RCU mode
        by default", v6.3, in 6.1.y too) and stores some updates into a
        node in place; a reader outside the kernel's RCU read side can meet a
        node half rewritten or already reused.  Each retry comes after a short
        pause, so that a preempted writer (which pfnscope may outrank) can
        finish its update."""
        import time
        c = core()
        for attempt in range(self.VMA_TREE_READS):
            if attempt:
                time.sleep(0.01 * 4 ** attempt)
            try:
                return read()
            except c.Error as e:
                last = e
                self.target.flush_cache()
        raise c.Error(f"{last} ({what} read {self.VMA_TREE_READS} times: it kept "
                      f"changing{', ' + why if why else ''})")

    def find_vma(self, mm: int, addr: int) -> Optional[VmaTuple]:
        return self.target.find_vma(int(mm), int(addr))

    def vma_from_object(self, vma: drgn.Object) -> Tuple[int, VmaTuple]:
        """(mm_va, vma tuple) for a drgn ``struct vm_area_struct *``."""
        va = int(vma.value_()) if vma.type_.kind == drgn.TypeKind.POINTER else int(vma.address_)
        mm = int(vma.vm_mm.value_())
        start = int(vma.vm_start)
        found = self.find_vma(mm, start)
        if found is None or found[0] != va:
            raise PfnscopeError(f"vma {va:#x}", "not found in its mm's VMA tree")
        return mm, found

    # --- file names ------------------------------------------------------
    def file_name(self, file_va: int) -> Optional[str]:
        if not file_va:
            return None
        if file_va not in self._files:
            self._files[file_va] = self._resolve_file(file_va)
        return self._files[file_va]

    def _resolve_file(self, file_va: int) -> Optional[str]:
        dname = self._dentry_name(file_va)
        try:
            if self.drgn_types:
                from drgn.helpers.linux.fs import d_path
                f = drgn.Object(self.prog, "struct file *", value=file_va)
                path = os.fsdecode(d_path(f.f_path.address_of_()))
            else:
                path = self._d_path(file_va)
        except Exception:
            return dname
        # anon_inode_getfile() files live on a pseudo fs whose d_path is the
        # fs root; /proc/PID/maps prints them via d_dname as anon_inode:NAME
        if path.endswith("[anon_inodefs]") and dname and dname != path:
            return "anon_inode:" + dname
        return path

    def _offs(self, *keys: str) -> Dict[str, int]:
        """{"struct x:member.path": offset} through the layout source (-1:
        absent), cached."""
        cache = self.__dict__.setdefault("_off_cache", {})
        for k in keys:
            if k not in cache:
                tname, member = k.split(":", 1)
                cache[k] = self._T.off(tname, member, required=False)
        return cache

    def _d_path(self, file_va: int) -> str:
        """drgn's d_path() (drgn.helpers.linux.fs) through raw reads: "[fs
        type]" for a dentry with d_op->d_dname, else the names up to the
        root, across mounts."""
        o = self._offs("struct file:f_path", "struct path:mnt", "struct path:dentry",
                       "struct dentry:d_parent", "struct dentry:d_name", "struct qstr:name",
                       "struct dentry:d_op", "struct dentry_operations:d_dname",
                       "struct dentry:d_inode", "struct inode:i_sb",
                       "struct super_block:s_type", "struct file_system_type:name",
                       "struct vfsmount:mnt_root", "struct mount:mnt",
                       "struct mount:mnt_parent", "struct mount:mnt_mountpoint")
        if min(o.values()) < 0:
            raise PfnscopeError("struct file", "offsets for d_path not in the types")
        u64 = self._u64
        path = file_va + o["struct file:f_path"]
        vfsmnt = u64(path + o["struct path:mnt"])
        dentry = u64(path + o["struct path:dentry"])
        d_op = u64(dentry + o["struct dentry:d_op"])
        if d_op and u64(d_op + o["struct dentry_operations:d_dname"]):
            sb = u64(u64(dentry + o["struct dentry:d_inode"]) + o["struct inode:i_sb"])
            fstype = u64(sb + o["struct super_block:s_type"])
            return "[" + (self._kstr(u64(fstype + o["struct file_system_type:name"])) or "") + "]"
        mount = vfsmnt - o["struct mount:mnt"]
        names: List[str] = []
        for _ in range(4096):
            if dentry == u64(mount + o["struct mount:mnt"] + o["struct vfsmount:mnt_root"]):
                parent = u64(mount + o["struct mount:mnt_parent"])
                if parent == mount:
                    break
                dentry = u64(mount + o["struct mount:mnt_mountpoint"])
                mount = parent
                continue
            parent = u64(dentry + o["struct dentry:d_parent"])
            if parent == dentry:
                break
            names.append(self._kstr(u64(dentry + o["struct dentry:d_name"] + o["struct qstr:name"]))
                         or "")
            dentry = parent
        return "/" + "/".join(reversed(names))

    def _dentry_name(self, file_va: int) -> Optional[str]:
        lo = self.layout_dict
        try:
            dentry = self._u64(file_va + lo["file_f_path"] + lo["path_dentry"])
            name = self._u64(dentry + lo["dentry_d_name"] + lo["qstr_name"])
            raw = self.target.read_kvirt(name, 256).split(b"\0", 1)[0]
            return raw.decode("utf-8", "replace")
        except Exception:
            return None

    # --- VMA names (/proc/PID/maps' path column) --------------------------
    def _name_offsets(self) -> Dict[str, int]:
        """Offsets for vma_name(), from the types; -1 when absent."""
        if self._name_offs is None:
            def off(tname: str, member: str) -> int:
                return self._T.off(tname, member, required=False)
            o = {"brk": off("struct mm_struct", "brk"),
                 "start_brk": off("struct mm_struct", "start_brk"),
                 "start_stack": off("struct mm_struct", "start_stack"),
                 "sm_name": off("struct vm_special_mapping", "name"),
                 "ops_name": off("struct vm_operations_struct", "name"),
                 "anon_name": off("struct vm_area_struct", "anon_name"),
                 "avn_name": off("struct anon_vma_name", "name")}
            # 6.1: anon_name shares a union with shared.rb (valid only
            # without vm_file); later kernels give it its own member
            shared = off("struct vm_area_struct", "shared")
            o["anon_name_union"] = int(o["anon_name"] >= 0 and o["anon_name"] == shared)
            self._name_offs = o
        return self._name_offs

    def _mm_bounds(self, mm: int) -> Tuple[int, int, int]:
        """(start_brk, brk, start_stack) of mm, read once per mm."""
        if mm not in self._mm_names:
            o = self._name_offsets()
            vals = []
            for k in ("start_brk", "brk", "start_stack"):
                try:
                    vals.append(self._u64(mm + o[k]) if o[k] >= 0 and mm else -1)
                except Exception:
                    vals.append(-1)
            self._mm_names[mm] = (vals[0], vals[1], vals[2])
        return self._mm_names[mm]

    def _maps_path(self, file_va: int, file: Optional[str]) -> Optional[str]:
        """The path column of maps for a file VMA, as d_path() prints it:
        the dentry's d_dname when it has one (socket:[INO], pipe:[INO],
        anon_inode:NAME, simple_dname's /NAME (deleted) of memfd and hugetlb
        files), else ``file`` plus " (deleted)" for an unlinked dentry.
        ``file`` itself when any of that cannot be read."""
        if file is None:
            return None
        if not self.drgn_types:
            return self._maps_path_raw(file_va, file)
        try:
            f = drgn.Object(self.prog, "struct file *", value=file_va)
            dentry = f.f_path.dentry
            is_root = int(dentry.d_parent.value_()) == int(dentry.value_())
            dop = dentry.d_op
            dname_fn = int(dop.d_dname.value_()) if int(dop.value_()) else 0
            if dname_fn and (not is_root or int(dentry.value_()) != int(f.f_path.mnt.mnt_root.value_())):
                fn = self.prog.symbol(dname_fn).name
                name = os.fsdecode(drgn.cast("char *", dentry.d_name.name).string_())
                if fn == "simple_dname":
                    return f"/{name} (deleted)"
                if fn in ("sockfs_dname", "pipefs_dname"):
                    ino = int(dentry.d_inode.i_ino)
                    return f"{'socket' if fn == 'sockfs_dname' else 'pipe'}:[{ino}]"
                if fn == "anon_inodefs_dname":
                    return "anon_inode:" + name
                return file
            # d_unlinked(): d_unhashed() && !IS_ROOT()
            if not int(dentry.d_hash.pprev.value_()) and not is_root:
                return file + " (deleted)"
            return file
        except Exception:
            return file

    def _maps_path_raw(self, file_va: int, file: str) -> str:
        """_maps_path() through the layout source: the d_dname function is
        told by its address (kallsyms or the vmlinux's symbols)."""
        try:
            o = self._offs("struct file:f_path", "struct path:mnt", "struct path:dentry",
                           "struct dentry:d_parent", "struct dentry:d_name",
                           "struct qstr:name", "struct dentry:d_op",
                           "struct dentry_operations:d_dname", "struct dentry:d_inode",
                           "struct inode:i_ino", "struct dentry:d_hash",
                           "struct hlist_bl_node:pprev", "struct vfsmount:mnt_root")
            if min(o.values()) < 0:
                return file
            u64 = self._u64
            path = file_va + o["struct file:f_path"]
            dentry = u64(path + o["struct path:dentry"])
            mnt_root = u64(u64(path + o["struct path:mnt"]) + o["struct vfsmount:mnt_root"])
            is_root = u64(dentry + o["struct dentry:d_parent"]) == dentry
            d_op = u64(dentry + o["struct dentry:d_op"])
            dname_fn = u64(d_op + o["struct dentry_operations:d_dname"]) if d_op else 0
            if dname_fn and (not is_root or dentry != mnt_root):
                syms = self.layout_source.symbols
                fns = {syms.address(n): n for n in ("simple_dname", "sockfs_dname",
                                                     "pipefs_dname", "anon_inodefs_dname")}
                fn = fns.get(dname_fn)
                name = self._kstr(u64(dentry + o["struct dentry:d_name"] + o["struct qstr:name"]))
                if name is None:
                    return file
                if fn == "simple_dname":
                    return f"/{name} (deleted)"
                if fn in ("sockfs_dname", "pipefs_dname"):
                    ino = u64(u64(dentry + o["struct dentry:d_inode"]) + o["struct inode:i_ino"])
                    return f"{'socket' if fn == 'sockfs_dname' else 'pipe'}:[{ino}]"
                if fn == "anon_inodefs_dname":
                    return "anon_inode:" + name
                return file
            pprev = u64(dentry + o["struct dentry:d_hash"] + o["struct hlist_bl_node:pprev"])
            if not pprev and not is_root:
                return file + " (deleted)"
            return file
        except Exception:
            return file

    def _kstr(self, va: int, n: int = 256) -> Optional[str]:
        """The C string at va (at most n bytes), read a page at a time so that
        a string ending before an unreadable page still reads."""
        if not va:
            return None
        out = b""
        try:
            while len(out) < n:
                chunk = self.target.read_kvirt(va + len(out),
                                               min(n - len(out), 4096 - (va + len(out)) % 4096))
                out += chunk
                if b"\0" in chunk:
                    break
        except Exception:
            if b"\0" not in out:
                return None
        return out.split(b"\0", 1)[0].decode("utf-8", "replace")

    def vma_name(self, mm: int, t: VmaTuple, file: Optional[str]) -> Optional[str]:
        """The name /proc/PID/maps prints for the VMA (fs/proc/task_mmu.c
        get_vma_name / 6.1 show_map_vma): the file's path, the special
        mapping's name ([vdso], [vvar], [vvar_vclock], ...), [heap], [stack],
        [anon:NAME]; None when maps prints nothing."""
        vma_va, start, end, _flags, _pgoff, file_ptr, ops = t
        o = self._name_offsets()
        lo = self.layout_dict
        if file_ptr:
            if o["anon_name"] >= 0 and not o["anon_name_union"] and o["avn_name"] >= 0:
                try:
                    an = self._u64(vma_va + o["anon_name"])
                except Exception:
                    an = 0
                if an:  # shmem named with PR_SET_VMA_ANON_NAME
                    n = self._kstr(an + o["avn_name"])
                    if n is not None:
                        return f"[anon_shmem:{n}]"
            return self._maps_path(file_ptr, file)
        special = lo.get("special_mapping_vmops", 0)
        legacy = lo.get("legacy_special_mapping_vmops", 0)
        if ops and ops in (special, legacy):
            # vm_ops->name is special_mapping_name for these ops (6.1's
            # legacy_special_mapping_vmops has no .name: maps shows nothing)
            has_name = ops == special
            if o["ops_name"] >= 0:
                try:
                    has_name = bool(self._u64(ops + o["ops_name"]))
                except Exception:
                    pass
            if has_name and o["sm_name"] >= 0:
                try:
                    sm = self._u64(vma_va + lo["vma_vm_private_data"])
                    n = self._kstr(self._u64(sm + o["sm_name"])) if sm else None
                except Exception:
                    n = None
                if n:
                    return n
        start_brk, brk, start_stack = self._mm_bounds(mm)
        if brk >= 0 and start_brk >= 0:
            if start <= brk and end >= start_brk:
                return "[heap]"
        if start_stack >= 0 and start <= start_stack <= end:
            return "[stack]"
        if o["anon_name"] >= 0 and o["avn_name"] >= 0:
            try:
                an = self._u64(vma_va + o["anon_name"])
            except Exception:
                an = 0
            if an:
                n = self._kstr(an + o["avn_name"])
                if n is not None:
                    return f"[anon:{n}]"
        return None

    def _u64(self, va: int) -> int:
        return int.from_bytes(self.target.read_kvirt(va, 8), "little")

    def close(self) -> None:
        _SESSIONS.pop(id(self.prog), None)
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()


# --- synthetic ELF core ----------------------------------------------------

def vmcoreinfo_elf(vmci_text: str) -> bytes:
    """An ELF64 x86-64 ET_CORE file whose only content is a VMCOREINFO note."""
    desc = vmci_text.encode()
    if not desc.endswith(b"\n"):
        desc += b"\n"
    name = b"VMCOREINFO\0"
    note = struct.pack("<III", len(name), len(desc), 0)
    note += name + b"\0" * (-len(name) % 4) + desc + b"\0" * (-len(desc) % 4)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(note), 0, 4)
    return ehdr + phdr + note


def _program_from_vmcoreinfo(vmci: VmcoreInfo) -> drgn.Program:
    prog = drgn.Program()
    fd = os.memfd_create("pfnscope-vmcoreinfo")
    try:
        os.write(fd, vmcoreinfo_elf(vmci.text))
        prog.set_core_dump(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return prog


def _kernel_half(levels: int) -> int:
    return 0xFF00000000000000 if levels == 5 else 0xFFFF800000000000


def _add_segments(prog: drgn.Program, sess: Session) -> None:
    """Physical memory through the session's reader, kernel virtual memory
    through the C core's page-table translation (Target.read_kvirt)."""
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
    start = _kernel_half(sess.layout_dict["pgtable_levels"])
    prog.add_memory_segment(start, (1 << 64) - start, read_kvirt, False)


# --- opening targets ---------------------------------------------------------

def _open_kdumpfile(path: str):
    c = core()
    if not os.path.exists(path):
        raise PfnscopeError(path, "no such file")
    try:
        return c.KdumpFile(path)
    except c.OpenError as e:
        msg = str(e)
        raise PfnscopeError(path, msg[len(path) + 2:] if msg.startswith(path + ": ") else msg)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))


def _load_vmlinux(prog: drgn.Program, vmlinux: str) -> None:
    try:
        prog.load_debug_info([vmlinux])
    except drgn.MissingDebugInfoError as e:
        raise PfnscopeError(vmlinux, f"cannot load debug info: {e}")
    except OSError as e:
        raise PfnscopeError(vmlinux, e.strerror or str(e))


def _check_file(path: str, refuse_truncated: bool) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or "cannot open")
    if st.st_size == 0:
        raise PfnscopeError(path, "empty file")
    if refuse_truncated:
        check_elf_truncation(path, st.st_size)


def check_elf_truncation(path: str, size: int) -> None:
    """An ELF vmcore whose PT_LOAD data extends past the end of the file
    (for the drgn reader, which has no notion of a partial dump; the
    kdumpfile reader opens such a file and reports what is missing)."""
    try:
        with open(path, "rb") as f:
            hdr = f.read(64)
            if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
                return
            phoff, = struct.unpack_from("<Q", hdr, 32)
            shoff, = struct.unpack_from("<Q", hdr, 40)
            phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
            if phnum == 0xFFFF:  # PN_XNUM: the count is section 0's sh_info
                f.seek(shoff + 44)
                sh_info = f.read(4)
                if len(sh_info) < 4:
                    raise PfnscopeError(path, "truncated dump (section header 0 past the end of the file)")
                phnum, = struct.unpack("<I", sh_info)
            f.seek(phoff)
            raw = f.read(phentsize * phnum)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))
    if len(raw) < phentsize * phnum:
        raise PfnscopeError(path, "truncated dump (program headers past the end of the file)")
    end = 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", raw, i * phentsize)
        if p_type in (1, 4):
            end = max(end, p_offset + p_filesz)
    if end > size:
        raise PfnscopeError(path, f"truncated dump: {size} bytes, its headers describe {end} "
                            "(the default --reader kdumpfile reads what is there)")


def _find_vmlinux(vmlinux: Optional[str], release: str, btf: bool):
    """(vmlinux path or None for BTF, why no vmlinux was found)."""
    if vmlinux is not None:
        return vmlinux, None
    if btf or source_mod.force_btf():
        return None, None
    try:
        return vmlinux_mod.find_vmlinux(release), None
    except PfnscopeError as e:
        return None, e


def _btf_or_explain(make, why: Optional[PfnscopeError]):
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


def open_dump(path: str, vmlinux: Optional[str] = None, reader: str = "kdumpfile",
              btf: bool = False) -> Session:
    """Open a crash dump; returns a Session (session.prog is a drgn Program).

    Types and symbols: the debug vmlinux (given, or found for the dump's
    release); without one (or with btf=True) the kernel's own BTF and
    kallsyms tables, found in the dump through VMCOREINFO.  A damaged dump
    (cut short, corrupt page descriptors or bitmap blocks) opens with
    session.damage set (see KdumpFile.damage): its missing pages read as
    unreadable, everything else answers."""
    _check_file(path, refuse_truncated=(reader != "kdumpfile"))
    if reader == "kdumpfile":
        kf = _open_kdumpfile(path)
        if not kf.vmcoreinfo:
            raise PfnscopeError(path, "no VMCOREINFO in the dump (QEMU needs -device vmcoreinfo)")
        vmci = VmcoreInfo(kf.vmcoreinfo)
        return _image_session(kf, vmci, path, "kdumpfile", vmlinux, btf)
    if reader == "drgn":
        prog = drgn.Program()
        try:
            prog.set_core_dump(path)
        except (drgn.FaultError, ValueError, OSError, Exception) as e:
            raise PfnscopeError(path, f"drgn cannot open this dump: {e} (try --reader kdumpfile)")
        release = _uts_release(prog)
        vml, why = _find_vmlinux(vmlinux, release, btf)
        if vml is None:
            vmci = _vmcoreinfo_no_debuginfo(prog, path)
            read_img = _drgn_image_reader(prog)
            lsrc = _btf_or_explain(lambda: source_mod.dump_btf_source(
                vmci, read_img, _guard_read(lambda a: prog.read_u64(a), path), path), why)
            return _session(prog, vmci, _drgn_reader(prog), path, "drgn", lsrc, None)
        vmlinux_mod.check_match(vml, VmcoreInfo(f"OSRELEASE={release}\n"))
        _load_vmlinux(prog, vml)
        try:
            vmci = from_program(prog)
        except PfnscopeError as e:
            raise PfnscopeError(path, "drgn cannot read kernel memory from this dump "
                                "(physical-only ELF?); use --reader kdumpfile") from e
        vmlinux_mod.check_match(vml, vmci)
        return _session(prog, vmci, _drgn_reader(prog), path, "drgn", None, vml)
    raise PfnscopeError("--reader", f"unknown reader {reader!r} (kdumpfile or drgn)")


def _session(prog, vmci, reader, path, reader_name, lsrc, vml, read_u64=None) -> Session:
    sess = Session(prog, vmci, reader, path, reader_name, read_u64, layout_source=lsrc)
    sess.vmlinux = vml
    return sess


def _image_session(phys, vmci: VmcoreInfo, path: str, reader_name: str,
                   vmlinux: Optional[str], btf: bool) -> Session:
    """A Session over a physical reader (KdumpFile, RawFile) and the dump's
    VMCOREINFO: kernel-image reads go through __pa_symbol()."""
    vml, why = _find_vmlinux(vmlinux, vmci.osrelease, btf)
    damage = getattr(phys, "damage", None)
    phys_base = (vmci.number("phys_base", 0) or 0) & U64_MAX
    read_u64 = _guard_read(layout_mod.image_read_u64(phys.read_phys, phys_base), path)
    prog = _program_from_vmcoreinfo(vmci)
    try:
        lsrc = _layout_cache_source(prog, vmci, vml, btf, read_u64)
        if lsrc is not None:
            pass
        elif vml is None:
            def read_img(va: int, n: int) -> bytes:
                return phys.read_phys((va - layout_mod.START_KERNEL_MAP + phys_base) & U64_MAX, n)
            lsrc = _btf_or_explain(lambda: source_mod.dump_btf_source(vmci, read_img, read_u64,
                                                                      path), why)
        else:
            vmlinux_mod.check_match(vml, vmci)
            _load_vmlinux(prog, vml)
            lsrc = None
        sess = _session(prog, vmci, phys, path, reader_name, lsrc, vml, read_u64)
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
    _add_segments(prog, sess)
    sess.damage = damage
    return sess


def _layout_cache_source(prog, vmci: VmcoreInfo, vml: Optional[str], btf: bool, read_u64):
    """The layout source from the layout cache of the kernel's build-id
    (pfnscope.layoutcache): its file's answers, or the debug vmlinux's,
    recorded (loaded only when needed); None: no cache for this target."""
    if btf or source_mod.force_btf():
        return None
    if vml is not None:
        vmlinux_mod.check_match(vml, vmci)

    def real():
        _load_vmlinux(prog, vml)
        return source_mod.drgn_source(prog, vmci, read_u64)
    return layoutcache.source_for(vmci, read_u64, real if vml is not None else None)


def _vmcoreinfo_no_debuginfo(prog: drgn.Program, path: str) -> VmcoreInfo:
    """VMCOREINFO of a dump drgn opened without debug info (drgn 0.0.22 does
    not expose the one it parsed): the dump's note, through libkdumpfile."""
    kf = _open_kdumpfile(path)
    try:
        if not kf.vmcoreinfo:
            raise PfnscopeError(path, "no VMCOREINFO in the dump (QEMU needs -device vmcoreinfo)")
        return VmcoreInfo(kf.vmcoreinfo)
    finally:
        kf.close()


def _drgn_image_reader(prog: drgn.Program) -> Callable[[int, int], bytes]:
    def read(va: int, n: int) -> bytes:
        return prog.read(va, n)
    return read


def damage_records(damage: Optional[Dict[str, object]]) -> List[Dict[str, object]]:
    """The JSON warning records of a damaged dump (none when whole)."""
    if not damage:
        return []
    out: List[Dict[str, object]] = []
    if damage.get("truncated") or damage.get("incomplete"):
        out.append({"type": "warning", "what": "truncated",
                    "missing_bytes": damage["missing_bytes"],
                    "missing_pages": damage["missing_pages"],
                    "incomplete": bool(damage.get("incomplete"))})
    if damage.get("bad_descriptors") or damage.get("bad_bitmap_blocks") or damage.get("bitmap_mismatch"):
        rec: Dict[str, object] = {"type": "warning", "what": "corrupt",
                                  "bad_descriptors": damage["bad_descriptors"],
                                  "bad_bitmap_blocks": damage["bad_bitmap_blocks"],
                                  "lost_pages": damage["lost_pages"]}
        if damage.get("bitmap_mismatch"):
            rec["unlocatable_from_pfn"] = damage["lost_from_pfn"]
        out.append(rec)
    return out


def open_live(vmlinux: Optional[str] = None, btf: bool = False) -> Session:
    """The running kernel through /proc/kcore (needs root).  Types and
    symbols: the debug vmlinux (given or found), else (or with btf=True)
    /sys/kernel/btf/vmlinux and /proc/kallsyms."""
    prog = drgn.Program()
    try:
        prog.set_kernel()
    except (PermissionError, OSError) as e:
        raise PfnscopeError("/proc/kcore", f"cannot open: {getattr(e, 'strerror', None) or e}")
    except Exception as e:
        raise PfnscopeError("/proc/kcore", f"cannot open: {e}")
    release = _uts_release(prog)
    vml, why = _find_vmlinux(vmlinux, release, btf)
    if vml is None:
        reader = _drgn_reader(prog)
        vmci = source_mod.sysfs_vmcoreinfo(reader)
        read_u64 = _guard_read(lambda a: prog.read_u64(a), "/proc/kcore")
        lsrc = _btf_or_explain(lambda: source_mod.live_btf_source(vmci, read_u64), why)
        return _session(prog, vmci, reader, "/proc/kcore", "kcore", lsrc, None)
    vmlinux_mod.check_match(vml, VmcoreInfo(f"OSRELEASE={release}\n"))
    _load_vmlinux(prog, vml)
    vmci = from_program(prog)
    sess = _session(prog, vmci, _drgn_reader(prog), "/proc/kcore", "kcore", None, vml)
    sess.confirm = True
    return sess


def session_for(prog: drgn.Program) -> Session:
    """The Session of a Program (made on first use for foreign Programs)."""
    sess = _SESSIONS.get(id(prog))
    if sess is not None and sess.prog is prog:
        return sess
    if not (prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL):
        raise PfnscopeError("program", "not a Linux kernel program")
    vmci = from_program(prog)
    live = bool(prog.flags & drgn.ProgramFlags.IS_LIVE)
    sess = Session(prog, vmci, _drgn_reader(prog), "/proc/kcore" if live else "drgn program", "drgn")
    sess.confirm = live   # `drgn -k`: the kernel keeps running under the walk
    return sess


def _drgn_reader(prog: drgn.Program) -> Callable[[int, int], bytes]:
    read = prog.read

    def read_phys(paddr: int, size: int) -> bytes:
        return read(paddr, size, True)
    return read_phys


def _uts_release(prog: drgn.Program) -> str:
    try:
        return prog["UTS_RELEASE"].string_().decode()
    except Exception as e:
        raise PfnscopeError("UTS_RELEASE", f"not available from the target: {e}")


def _guard_read(read_u64: Callable[[int], int], path: str) -> Callable[[int], int]:
    c = core()

    def read(va: int) -> int:
        try:
            return read_u64(va)
        except (c.Error, drgn.FaultError) as e:
            raise PfnscopeError(path, f"cannot read kernel image at {va:#x}: {e}")
    return read


# --- a running QEMU guest's RAM (memory-backend-file,share=on) ----------------

_VMCI_NAME = b"VMCOREINFO\0"


def scan_vmcoreinfo(path: str, limit: Optional[int] = None) -> Tuple[VmcoreInfo, int]:
    """Find the kernel's VMCOREINFO ELF note in raw guest RAM.

    The kernel fills ``vmcoreinfo_note`` (an ELF note "VMCOREINFO" whose
    descriptor is the KEY=VALUE text starting with OSRELEASE=) at boot, so
    a live guest has it in RAM.  Returns (info, file offset of the note).
    Several copies may exist (stale pages); the first complete one wins."""
    import mmap
    try:
        f = open(path, "rb")
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise PfnscopeError(path, "empty file")
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            end = min(size, limit) if limit else size
            pos = mm.find(_VMCI_NAME, 0, end)
            while pos >= 0:
                hdr = pos - 12
                if hdr >= 0:
                    namesz, descsz, ntype = struct.unpack_from("<III", mm, hdr)
                    desc = pos + 12
                    if (namesz == len(_VMCI_NAME) and ntype == 0 and 0 < descsz <= 65536
                            and mm[desc:desc + 10] == b"OSRELEASE=" and desc + descsz <= size):
                        info = VmcoreInfo(mm[desc:desc + descsz])
                        if "OSRELEASE" in info and "KERNELOFFSET" in info:
                            return info, hdr
                pos = mm.find(_VMCI_NAME, pos + 1, end)
        finally:
            mm.close()
    raise PfnscopeError(path, "no VMCOREINFO note found in guest RAM "
                        "(not a guest RAM file, or the guest has not booted yet)")


def open_qemu_ram(path: str, vmlinux: Optional[str] = None, low_size: int = 3 << 30,
                  high_start: int = 4 << 30, btf: bool = False) -> Session:
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
    sess = _image_session(raw, vmci, path, "qemu-ram", vmlinux, btf)
    sess.live = True
    sess.confirm = True
    return sess
