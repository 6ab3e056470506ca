"""A Session: one target kernel, as every front end sees it.

A Session holds the target's VMCOREINFO, its layout (built once from a
layout source: pfnscope.source), the C core's Target over a physical-memory
reader, and the names of files and VMAs (pfnscope.names).  It lists tasks
and VMAs, reading a live target's lists again when they change under the
read.

Each front end keeps one Session per session of its own, keyed by that
session's object (SESSIONS): the drgn Program (pfnscope.program), the GDB
inferior (plugins/gdb), crash's dump (pfnscope.crash).  Nothing here needs
drgn.
"""
from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple, TypeVar
    T = TypeVar("T")
    from .names import VmaTuple
    Task = Tuple[int, int, int, int, str]            # (task_va, pid, tgid, mm_va, comm)
    ReadBytes = Callable[[int, int], bytes]

from . import layout as layout_mod
from .errors import PfnscopeError
from .extension import core
from .names import Names
from .source import Source
from .vmcoreinfo import VmcoreInfo

__all__ = ["Session", "Registry", "SESSIONS"]


class Session:
    """One target: layout + C core Target + names.

    reader: the physical-memory reader the C core reads through (a KdumpFile,
    a RawFile, or a function (paddr, size) -> bytes); source: what is read,
    for messages ("/path/vmcore", "/proc/kcore"); reader_name: which reader
    ("kdumpfile", "drgn", "qemu-ram", "kcore", "gdb", "crash");
    layout_source: where types and symbols come from (pfnscope.source);
    key: the front end's own session object, under which SESSIONS finds
    this Session (None: not registered)."""

    # a target that keeps running (/proc/kcore, a running guest's RAM):
    # findings at medium or above are read again before they are reported
    confirm = False
    # a target whose entries may change under a walk (the CLI re-reads and
    # reports entries that changed)
    live = False
    # the debug vmlinux the types came from (None: BTF, or the front end's)
    vmlinux: Optional[str] = None
    # what makes the drgn Program on first use (pfnscope.opening: a dump's
    # CLI session needs none, and drgn is not even imported then)
    make_prog: Optional[Callable[[], object]] = None
    _prog = None

    @property
    def prog(self):
        """The drgn Program of a drgn-based target (pfnscope.program), else
        None; made now if the opening left it for later."""
        if self._prog is None and self.make_prog is not None:
            make, self.make_prog = self.make_prog, None
            self._prog = make()
        return self._prog

    @prog.setter
    def prog(self, prog) -> None:
        self._prog = prog

    def __init__(self, vmci: VmcoreInfo, reader, source: str, reader_name: str,
                 layout_source: Source, key: object = None) -> None:
        c = core()
        self.vmci = vmci
        # the architecture, chosen once (pfnscope.arch): everything asks it
        self.arch = vmci.arch
        self.source = source
        self.reader_name = reader_name
        self.reader = reader
        self.layout_source = layout_source
        self._T = layout_mod._Types(layout_source.types)
        # facts: where each semantics profile came from (kernel or version)
        self.facts: Dict[str, str] = {}
        self.layout_dict = layout_mod.build_layout(layout_source, vmci, facts=self.facts)
        try:
            self.layout = c.Layout(self.layout_dict)
        except ValueError as e:
            raise PfnscopeError("layout", str(e).replace("layout: ", ""))
        self.target = c.Target(self.layout, reader)
        self.names = Names(self._T, layout_source.symbols, self.layout_dict,
                           self.target.read_kvirt)
        # what a damaged dump lacks (KdumpFile.damage), None when whole
        self.damage: Optional[Dict[str, object]] = None
        self.key = key
        if key is not None:
            SESSIONS.add(key, self)

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

    def _live_read(self, read: Callable[[], T], what: str, why: str = "") -> T:
        """read() until it does not fail, VMA_TREE_READS times at most.  The
        mm's maple tree replaces nodes and frees the old ones after an RCU
        grace period (commit 3dd443254941 ("mm: enable maple tree RCU mode
        by default") (in v6.3), in 6.1.y too) and stores some updates into a
        node in place; a reader outside the kernel's RCU read side can meet a
        node half rewritten or already reused.  Each retry comes after a short
        pause, so that a preempted writer (which pfnscope may outrank) can
        finish its update."""
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

    # --- names (pfnscope.names) ------------------------------------------------
    def file_name(self, file_va: int) -> Optional[str]:
        """The path of the struct file at file_va (None for no file)."""
        return self.names.file_name(file_va)

    def vma_name(self, mm: int, t: VmaTuple, file: Optional[str]) -> Optional[str]:
        """The name /proc/PID/maps prints for the VMA (pfnscope.names)."""
        return self.names.vma_name(mm, t, file)

    # ---------------------------------------------------------------------
    def forget(self) -> None:
        """Drop every cached read: the target has run since (a GDB inferior
        continued between two commands)."""
        self.target.flush_cache()
        self.names.forget()

    def close(self) -> None:
        if self.key is not None:
            SESSIONS.drop(self.key, self)
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()


class Registry:
    """Values keyed by the identity of a front end's session object (a drgn
    Program is not hashable by value and takes no weak references): the
    object is held, so its id stays unique while it is registered."""

    def __init__(self) -> None:
        self._by_id: Dict[int, Tuple[object, Session]] = {}

    def get(self, key: object) -> Optional[Session]:
        entry = self._by_id.get(id(key))
        return entry[1] if entry is not None and entry[0] is key else None

    def add(self, key: object, value: Session) -> None:
        self._by_id[id(key)] = (key, value)

    def drop(self, key: object, value: Optional[Session] = None) -> None:
        """Forget key (only while it maps to value, when given)."""
        entry = self._by_id.get(id(key))
        if entry is not None and entry[0] is key and (value is None or entry[1] is value):
            del self._by_id[id(key)]


# every registered Session, by its front end's session object
SESSIONS = Registry()
