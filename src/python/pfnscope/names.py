"""The names /proc/PID/maps prints: a file's path and a VMA's name.

Written once for every layout source (drgn's debug info, BTF + kallsyms,
GDB's and crash's types): member offsets come from the source's types, the
identity of a dentry's d_dname function from its symbols, memory from the C
core's kernel-virtual reads.  Each function follows the kernel's own:

* d_path() as drgn's helper drgn.helpers.linux.fs.d_path has it: "[fs type]"
  for a dentry with d_op->d_dname, else the names up to the root, across
  mounts; an anon_inode_getfile() file is named "anon_inode:NAME" as
  /proc/PID/maps does through anon_inodefs_dname() (fs/anon_inodes.c);
* the path column of maps as fs/d_path.c d_path() prints it: the dentry's
  d_dname when it has one (socket:[INO], pipe:[INO], anon_inode:NAME,
  simple_dname()'s "/NAME (deleted)" of memfd and hugetlb files), else the
  path plus " (deleted)" for an unlinked dentry (d_unlinked());
* the VMA name of fs/proc/task_mmu.c get_vma_name() (show_map_vma() in
  6.1): the file's path, a special mapping's name, [heap], [stack],
  [anon:NAME] and [anon_shmem:NAME].
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple
    ReadBytes = Callable[[int, int], bytes]
    VmaTuple = Tuple[int, int, int, int, int, int, int]  # (vma_va, start, end, flags, pgoff, file, ops)

from .errors import PfnscopeError
from .layout import ABSENT, _Types


# the d_dname functions whose output maps shows (fs/libfs.c simple_dname,
# net/socket.c sockfs_dname, fs/pipe.c pipefs_dname, fs/anon_inodes.c
# anon_inodefs_dname)
_DNAME_FUNCTIONS = ("simple_dname", "sockfs_dname", "pipefs_dname", "anon_inodefs_dname")

# the members d_path() and the maps path read, as "struct x:member.path"
_D_PATH = ("struct file:f_path", "struct path:mnt", "struct path:dentry",
           "struct dentry:d_parent", "struct dentry:d_name", "struct qstr:name",
           "struct dentry:d_op", "struct dentry_operations:d_dname",
           "struct dentry:d_inode", "struct inode:i_sb",
           "struct super_block:s_type", "struct file_system_type:name",
           "struct vfsmount:mnt_root", "struct mount:mnt",
           "struct mount:mnt_parent", "struct mount:mnt_mountpoint")
_MAPS_PATH = ("struct file:f_path", "struct path:mnt", "struct path:dentry",
              "struct dentry:d_parent", "struct dentry:d_name", "struct qstr:name",
              "struct dentry:d_op", "struct dentry_operations:d_dname",
              "struct dentry:d_inode", "struct inode:i_ino", "struct dentry:d_hash",
              "struct hlist_bl_node:pprev", "struct vfsmount:mnt_root")


class Names:
    """File and VMA names of one target, cached per file and per mm.

    types: the layout source's types (as layout._Types), symbols: its
    symbols, layout: the session's pfs_layout dict, read_kvirt: the C
    core's kernel-virtual reader."""

    def __init__(self, types: _Types, symbols, layout: Dict[str, object],
                 read_kvirt: ReadBytes) -> None:
        self._T = types
        self._symbols = symbols
        self._layout = layout
        self._read_kvirt = read_kvirt
        self._off_cache: Dict[str, int] = {}
        self._name_offs: Optional[Dict[str, int]] = None
        self._files: Dict[int, Optional[str]] = {}
        self._mm_bounds: Dict[int, Tuple[int, int, int]] = {}

    def forget(self) -> None:
        """Drop what was read (the target has run since)."""
        self._files.clear()
        self._mm_bounds.clear()

    # --- reads ------------------------------------------------------------
    def _u64(self, va: int) -> int:
        return int.from_bytes(self._read_kvirt(va, 8), "little")

    def kstr(self, va: int, n: int = 256) -> Optional[str]:
        """The C string at va (at most n bytes), read a page at a time so that
        a string ending before an unreadable page still reads."""
        if not va:
            return None
        out = b""
        try:
            while len(out) < n:
                chunk = self._read_kvirt(va + len(out),
                                         min(n - len(out), 4096 - (va + len(out)) % 4096))
                out += chunk
                if b"\0" in chunk:
                    break
        except Exception:
            if b"\0" not in out:
                return None
        return out.split(b"\0", 1)[0].decode("utf-8", "replace")

    def offsets(self, *keys: str) -> Dict[str, int]:
        """{"struct x:member.path": offset} of each key through the layout
        source (-1: absent), cached."""
        cache = self._off_cache
        for k in keys:
            if k not in cache:
                tname, member = k.split(":", 1)
                cache[k] = self._T.off(tname, member, required=False)
        return {k: cache[k] for k in keys}

    # --- files --------------------------------------------------------------
    def file_name(self, file_va: int) -> Optional[str]:
        """The path of the struct file at file_va (None for no file)."""
        if not file_va:
            return None
        if file_va not in self._files:
            self._files[file_va] = self._resolve_file(file_va)
        return self._files[file_va]

    def _resolve_file(self, file_va: int) -> Optional[str]:
        dname = self._dentry_name(file_va)
        try:
            path = self.d_path(file_va)
        except Exception:
            return dname
        # anon_inode_getfile() files live on a pseudo fs whose d_path is the
        # fs root; /proc/PID/maps prints them via d_dname as anon_inode:NAME
        if path.endswith("[anon_inodefs]") and dname and dname != path:
            return "anon_inode:" + dname
        return path

    def d_path(self, file_va: int) -> str:
        """d_path(&file->f_path) as drgn.helpers.linux.fs.d_path gives it."""
        o = self.offsets(*_D_PATH)
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
            return "[" + (self.kstr(u64(fstype + o["struct file_system_type:name"])) or "") + "]"
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
            names.append(self.kstr(u64(dentry + o["struct dentry:d_name"] + o["struct qstr:name"]))
                         or "")
            dentry = parent
        return "/" + "/".join(reversed(names))

    def _dentry_name(self, file_va: int) -> Optional[str]:
        lo = self._layout
        try:
            dentry = self._u64(file_va + lo["file_f_path"] + lo["path_dentry"])
            name = self._u64(dentry + lo["dentry_d_name"] + lo["qstr_name"])
            raw = self._read_kvirt(name, 256).split(b"\0", 1)[0]
            return raw.decode("utf-8", "replace")
        except Exception:
            return None

    def maps_path(self, file_va: int, file: Optional[str]) -> Optional[str]:
        """The path column of maps for a file VMA whose file_name() is file;
        file itself when the dentry cannot be read.  The d_dname function is
        told by its address among the symbols of _DNAME_FUNCTIONS."""
        if file is None:
            return None
        try:
            o = self.offsets(*_MAPS_PATH)
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
                fns = {self._symbols.address(n): n for n in _DNAME_FUNCTIONS}
                fn = fns.get(dname_fn)
                name = self.kstr(u64(dentry + o["struct dentry:d_name"] + o["struct qstr:name"]))
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
            # d_unlinked(): d_unhashed() && !IS_ROOT()
            pprev = u64(dentry + o["struct dentry:d_hash"] + o["struct hlist_bl_node:pprev"])
            if not pprev and not is_root:
                return file + " (deleted)"
            return file
        except Exception:
            return file

    # --- VMAs ------------------------------------------------------------------
    def name_offsets(self) -> Dict[str, int]:
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

    def _bounds(self, mm: int) -> Tuple[int, int, int]:
        """(start_brk, brk, start_stack) of mm, read once per mm."""
        if mm not in self._mm_bounds:
            o = self.name_offsets()
            vals = []
            for k in ("start_brk", "brk", "start_stack"):
                try:
                    vals.append(self._u64(mm + o[k]) if o[k] >= 0 and mm else -1)
                except Exception:
                    vals.append(-1)
            self._mm_bounds[mm] = (vals[0], vals[1], vals[2])
        return self._mm_bounds[mm]

    def vma_name(self, mm: int, t: VmaTuple, file: Optional[str]) -> Optional[str]:
        """The name /proc/PID/maps prints for the VMA t of mm whose file is
        file (file_name() of its vm_file): the file's path, the special
        mapping's name ([vdso], [vvar], [vvar_vclock], ...), [heap], [stack],
        [anon:NAME]; None when maps prints nothing."""
        vma_va, start, end, _flags, _pgoff, file_ptr, ops = t
        o = self.name_offsets()
        lo = self._layout
        if file_ptr:
            if o["anon_name"] >= 0 and not o["anon_name_union"] and o["avn_name"] >= 0:
                n = self._anon_name(vma_va, o)
                if n is not None:  # shmem named with PR_SET_VMA_ANON_NAME
                    return f"[anon_shmem:{n}]"
            return self.maps_path(file_ptr, file)
        special = lo.get("special_mapping_vmops", ABSENT)
        legacy = lo.get("legacy_special_mapping_vmops", ABSENT)
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
                    n = self.kstr(self._u64(sm + o["sm_name"])) if sm else None
                except Exception:
                    n = None
                if n:
                    return n
        start_brk, brk, start_stack = self._bounds(mm)
        if brk >= 0 and start_brk >= 0:
            if start <= brk and end >= start_brk:
                return "[heap]"
        if start_stack >= 0 and start <= start_stack <= end:
            return "[stack]"
        if o["anon_name"] >= 0 and o["avn_name"] >= 0:
            n = self._anon_name(vma_va, o)
            if n is not None:
                return f"[anon:{n}]"
        return None

    def _anon_name(self, vma_va: int, o: Dict[str, int]) -> Optional[str]:
        """vma->anon_name->name, the name PR_SET_VMA_ANON_NAME gave the VMA
        (None: no name, or not readable)."""
        try:
            an = self._u64(vma_va + o["anon_name"])
        except Exception:
            return None
        return self.kstr(an + o["avn_name"]) if an else None
