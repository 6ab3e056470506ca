"""The Python API (docs/guide.md), for drgn sessions and scripts.

    prog = pfnscope.open("vmcore")            # or the prog of `drgn -c vmcore`
    for e in pfnscope.walk(prog, pid=147, addr=0x7f...):
        print(e.addr, e.kind, e.pfn, e.special, e.normal_page, e.diagnoses)
    for f in pfnscope.check(prog):
        print(f)

Arguments may be drgn Objects (``struct mm_struct *``, ``struct
vm_area_struct *``, ``struct task_struct *``) or the light objects below.
"""
from __future__ import annotations

import collections
import json
import sys

from .errors import PfnscopeError
from .extension import core
from .opening import open_dump
from .program import session_for, vma_from_object
from .session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Tuple
    import drgn
    from .names import VmaTuple
else:
    class _NamedTupleMeta(type):
        """typing.NamedTuple's class syntax (fields from the annotations, defaults
        from their values, the methods kept) made by collections.namedtuple:
        typing's own, its import and a compile() of each annotation, costs
        22 M instructions, a seventh of a CLI `tasks` run with it."""

        def __new__(mcls, typename, bases, ns):
            fields = ns.get("__annotations__", {})
            cls = collections.namedtuple(typename, fields, module=ns["__module__"],
                                         defaults=[ns[f] for f in fields if f in ns])
            for k, v in ns.items():
                if k not in fields and k not in ("__module__", "__qualname__"):
                    setattr(cls, k, v)
            return cls

    NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})


def _drgn_object(x) -> bool:
    """Whether x is a drgn Object: never when drgn was not imported (the
    CLI runs without it), so only the callers that hold Objects import it."""
    drgn = sys.modules.get("drgn")
    return drgn is not None and isinstance(x, drgn.Object)

SEVERITIES = ("low", "medium", "high", "critical")


def severity_rank(sev: str) -> int:
    return SEVERITIES.index(sev)


class Diagnosis(NamedTuple):
    code: str
    severity: str


class Task(NamedTuple):
    task: int       # VA of task_struct
    pid: int
    tgid: int
    mm: int         # VA of mm_struct, 0 for kernel threads
    comm: str

    def to_dict(self) -> dict:
        return {"type": "task", "pid": self.pid, "tgid": self.tgid, "comm": self.comm,
                "mm": f"{self.mm:#x}", "task": f"{self.task:#x}"}


class Vma:
    """A VMA with the fields of the "vma" JSON record as attributes."""

    __slots__ = ("session", "pid", "mm", "address", "start", "end", "flags", "pgoff",
                 "file_ptr", "ops", "_tuple", "_file", "_name", "_name_done")
    type = "vma"

    def __init__(self, session: Session, mm: int, t: VmaTuple, pid: Optional[int] = None) -> None:
        self.session = session
        self.pid = pid
        self.mm = mm
        self._tuple = t
        self.address, self.start, self.end, self.flags, self.pgoff, self.file_ptr, self.ops = t
        self._file: Optional[str] = None
        self._name: Optional[str] = None
        self._name_done = False

    @property
    def flag_names(self) -> List[str]:
        return list(core().vma_flag_names(self.flags))

    @property
    def cow(self) -> bool:
        return bool(core().is_cow_mapping(self.flags))

    @property
    def file(self) -> Optional[str]:
        if self._file is None and self.file_ptr:
            self._file = self.session.file_name(self.file_ptr)
        return self._file

    @property
    def name(self) -> Optional[str]:
        """What /proc/PID/maps prints in its path column: the file's path,
        [vdso]/[vvar]/[vvar_vclock] (special mappings), [heap], [stack],
        [anon:NAME]; None for a plain anonymous VMA.  Resolved once."""
        if not self._name_done:
            self._name = self.session.vma_name(self.mm, self._tuple, self.file)
            self._name_done = True
        return self._name

    @property
    def object(self) -> drgn.Object:
        """The drgn ``struct vm_area_struct *``."""
        import drgn
        return drgn.Object(self.session.prog, "struct vm_area_struct *", value=self.address)

    def to_json(self) -> str:
        # the core's line (unchanged bytes) plus "name" as the last member
        line = core().vma_json(self._tuple, self.pid if self.pid is not None else -1, self.file)
        return line[:-1] + ',"name":' + json.dumps(self.name) + "}"

    def to_dict(self) -> dict:
        return json.loads(self.to_json())

    def __repr__(self) -> str:
        return (f"Vma({self.start:#x}-{self.end:#x} flags={self.flags:#x} "
                f"[{' '.join(self.flag_names)}] file={self.file!r} name={self.name!r})")


class Entry:
    """One page-table entry: the "entry" JSON record's fields as attributes
    (addr, level, raw, kind, pfn, special, devmap, writable, normal_page,
    vnp_reason, page, consumers, diagnoses, ...) plus pid and vma_start."""

    __slots__ = ("_e", "pid", "vma_start")
    type = "entry"

    def __init__(self, e, pid: int, vma_start: int) -> None:
        self._e = e
        self.pid = pid
        self.vma_start = vma_start

    def __getattr__(self, name: str):
        return getattr(self._e, name)

    @property
    def diagnoses(self) -> List[Diagnosis]:
        return [Diagnosis(c, s) for c, s in self._e.diagnoses]

    def to_json(self) -> str:
        return self._e.to_json(self.pid, self.vma_start)

    def to_dict(self) -> dict:
        return json.loads(self.to_json())

    def __repr__(self) -> str:
        pfn = "-" if self._e.pfn is None else f"{self._e.pfn:#x}"
        d = ",".join(c for c, _ in self._e.diagnoses)
        return (f"Entry({self._e.addr:#x} {self._e.level} {self._e.kind} pfn={pfn} "
                f"special={int(self._e.special)} normal_page={int(self._e.normal_page)} "
                f"{self._e.vnp_reason}{' ' + d if d else ''})")


class Finding(NamedTuple):
    """One diagnosis found by check(): an address run in one VMA of one task
    (scope "entry") or a whole VMA (scope "vma")."""
    pid: int
    comm: str
    vma_start: int
    vma_end: int
    start: int
    end: int
    count: int
    code: str
    severity: str
    scope: str
    level: Optional[str] = None
    kind: Optional[str] = None
    pfn: Optional[int] = None
    raw: Optional[int] = None
    vnp_reason: Optional[str] = None
    file: Optional[str] = None

    def to_dict(self) -> dict:
        return {"type": "finding", "pid": self.pid, "comm": self.comm,
                "vma_start": f"{self.vma_start:#x}", "vma_end": f"{self.vma_end:#x}",
                "start": f"{self.start:#x}", "end": f"{self.end:#x}", "count": self.count,
                "code": self.code, "severity": self.severity, "scope": self.scope,
                "level": self.level, "kind": self.kind, "pfn": self.pfn,
                "raw": None if self.raw is None else f"{self.raw:#x}",
                "vnp_reason": self.vnp_reason, "file": self.file}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def __str__(self) -> str:
        where = (f"{self.start:#x}-{self.end:#x}" + (f" ({self.count} entries)" if self.count > 1 else ""))
        extra = ""
        if self.scope == "entry":
            pfn = "-" if self.pfn is None else f"{self.pfn:#x}"
            extra = f" {self.level} {self.kind} pfn={pfn} vnp={self.vnp_reason}"
        return (f"{self.severity.upper():8} {self.code:24} pid {self.pid} ({self.comm}) "
                f"vma {self.vma_start:#x}-{self.vma_end:#x}"
                f"{' ' + self.file if self.file else ''} {where}{extra}")


# --- resolving arguments -----------------------------------------------------

def open(path: str, vmlinux: Optional[str] = None, reader: str = "kdumpfile",
         btf: bool = False) -> drgn.Program:
    """Open a dump (any libkdumpfile format) and return a drgn Program on which
    both pfnscope and drgn's own helpers work.  Without a debug vmlinux (none
    given or found, or btf=True) pfnscope uses the kernel's BTF and kallsyms
    from the dump; the Program then has memory but no types."""
    return open_dump(path, vmlinux, reader, btf=btf).prog


def session(prog: drgn.Program) -> Session:
    return session_for(prog)


def _session_of(obj, prog: Optional[drgn.Program]) -> Session:
    if _drgn_object(obj):
        return session_for(obj.prog_)
    if isinstance(obj, Vma):
        return obj.session
    if prog is None:
        raise PfnscopeError("argument", "pass prog= with an integer address")
    return session_for(prog)


def _mm_address(mm) -> int:
    if isinstance(mm, Task):
        return mm.mm
    if _drgn_object(mm):
        import drgn
        tname = mm.type_.type_name()
        if "task_struct" in tname:
            mm = mm.mm
        return int(mm.value_()) if mm.type_.kind == drgn.TypeKind.POINTER else int(mm.address_)
    return int(mm)


def tasks(prog: drgn.Program) -> List[Task]:
    """Thread-group leaders, from init_task (kernel threads have mm == 0)."""
    return [Task(*t) for t in session_for(prog).tasks()]


def find_task(prog: drgn.Program, pid: int) -> Task:
    return Task(*session_for(prog).find_task(pid))


def for_each_vma(mm, prog: Optional[drgn.Program] = None, pid: Optional[int] = None) -> Iterator[Vma]:
    """VMAs of mm (drgn ``struct mm_struct *``/``task_struct *``, a Task, or an
    address with prog=) in address order.  Works on drgn 0.0.22, which has no
    maple-tree helpers: the walk is the C core's."""
    sess = _session_of(mm, prog)
    mm_va = _mm_address(mm)
    if pid is None and isinstance(mm, Task):
        pid = mm.pid
    for t in sess.vmas(mm_va):
        yield Vma(sess, mm_va, t, pid)


def find_vma(mm, addr: int, prog: Optional[drgn.Program] = None, pid: Optional[int] = None) -> Optional[Vma]:
    """The VMA containing addr, or None."""
    sess = _session_of(mm, prog)
    mm_va = _mm_address(mm)
    t = sess.find_vma(mm_va, int(addr))
    return None if t is None else Vma(sess, mm_va, t, pid if pid is not None else getattr(mm, "pid", None))


def _walk_flags(include_none: bool, no_page: bool = False) -> int:
    c = core()
    return (c.WALK_NONE if include_none else 0) | (c.WALK_NO_PAGE if no_page else 0)


def walk_vma(vma, start: Optional[int] = None, end: Optional[int] = None,
             include_none: bool = False, prog: Optional[drgn.Program] = None,
             pid: Optional[int] = None) -> List[Entry]:
    """Entries of one VMA (a Vma or a drgn ``struct vm_area_struct *``)."""
    if isinstance(vma, Vma):
        sess, mm_va, t = vma.session, vma.mm, vma._tuple
        pid = vma.pid if pid is None else pid
    elif _drgn_object(vma):
        sess = session_for(vma.prog_)
        mm_va, t = vma_from_object(sess, vma)
    else:
        raise PfnscopeError("vma", "expected a pfnscope Vma or a drgn struct vm_area_struct *")
    ents = sess.target.walk(mm_va, t, start, end, _walk_flags(include_none))
    p = -1 if pid is None else pid
    return [Entry(e, p, t[1]) for e in ents]


def walk(prog: drgn.Program, pid: Optional[int] = None, addr: Optional[int] = None,
         include_none: bool = False, mm=None) -> List[Entry]:
    """Entries of the VMA of task pid containing addr (all VMAs without addr)."""
    sess = session_for(prog)
    if mm is None:
        if pid is None:
            raise PfnscopeError("walk", "give pid= (and addr=) or mm=")
        t = Task(*sess.find_task(pid))
        if not t.mm:
            raise PfnscopeError(f"pid {pid}", f"{t.comm} is a kernel thread (no mm)")
        mm_va = t.mm
    else:
        mm_va = _mm_address(mm)
    if addr is not None:
        v = sess.find_vma(mm_va, int(addr))
        if v is None:
            raise PfnscopeError(f"{int(addr):#x}", f"not mapped in pid {pid}")
        vmas = [v]
    else:
        vmas = sess.vmas(mm_va)
    out: List[Entry] = []
    for v in vmas:
        out.extend(walk_vma(Vma(sess, mm_va, v, pid), include_none=include_none))
    return out


def rmap(prog: drgn.Program, pfn: int, last: Optional[int] = None,
         pids: Optional[Iterable[int]] = None,
         errors: Optional[List["CheckError"]] = None) -> List[Entry]:
    """Every leaf entry of every task (or of pids) that maps a pfn in
    [pfn, last]: ptes, PMD and PUD leaves, special entries included (the
    kernel's own rmap cannot find those), and PFN swap entries (migration,
    device).  A task that cannot be read is recorded in errors (when given)
    instead of aborting."""
    sess = session_for(prog)
    c = core()
    hi = pfn if last is None else last
    if hi < pfn:
        raise PfnscopeError(f"{pfn}-{hi}", "empty pfn range")
    todo = [Task(*sess.find_task(p)) for p in pids] if pids else [Task(*t) for t in sess.tasks()]
    out: List[Entry] = []
    for t in todo:
        if not t.mm:
            continue
        try:
            for v in sess.vmas(t.mm):
                out.extend(Entry(e, t.pid, v[1])
                           for e in sess.target.walk(t.mm, v, pfns=(pfn, hi)))
        except c.Error as e:
            if errors is None:
                raise PfnscopeError(f"pid {t.pid}", str(e))
            errors.append(CheckError(t.pid, t.comm, str(e)))
    return out


def _kvm(prog: drgn.Program, files: Iterable[str] = ()):
    from . import kvm_mmu as kvm_mod
    sess = session_for(prog)
    k = getattr(sess, "_kvm", None)
    if k is None:
        k = kvm_mod.Kvm(sess, list(files))
        sess._kvm = k
    return k


def kvm_vms(prog: drgn.Program, debug_files: Iterable[str] = ()) -> list:
    """The VMs of vm_list (pfnscope.kvm.Vm: pid, memslots, TDP MMU roots).
    debug_files: kvm.ko and kvm-amd.ko/kvm-intel.ko debug files (default:
    beside the vmlinux, or /usr/lib/debug/lib/modules/RELEASE/)."""
    return _kvm(prog, debug_files).vms()


def kvm_sptes(prog: drgn.Program, vm, gfn: Optional[int] = None,
              pfns: Optional[Tuple[int, int]] = None, host: bool = True) -> List[dict]:
    """The leaf SPTEs of vm's TDP MMU roots as "spte" records (docs/kvm.md):
    gfn, level, raw and decoded bits, pfn, memslot and hva, the host leaf at
    the hva now, the struct page, KVM's reference verdict and diagnoses."""
    return _kvm(prog).sptes(vm, gfn=gfn, pfns=pfns, host=host)


def kvm(prog: drgn.Program, pid: Optional[int] = None, gfn: Optional[int] = None,
        debug_files: Iterable[str] = ()) -> List[dict]:
    """``pfnscope kvm`` as records: "vm" records, or with pid the "spte"
    records of that VMM's VMs."""
    vms = kvm_vms(prog, debug_files)
    if pid is None:
        return [vm.to_dict() for vm in vms]
    mine = [vm for vm in vms if vm.pid == pid]
    if not mine:
        raise PfnscopeError(f"pid {pid}", "owns no VM in vm_list")
    return [r for vm in mine for r in kvm_sptes(prog, vm, gfn=gfn)]


def _confirm_vma(sess: Session, task: Task, vma: Vma, found: List[Finding],
                 changed: List[dict]) -> List[Finding]:
    """A live target: VMA-level findings at medium or above stand only if the
    mm's tree, read again past the caches, still holds the same VMA with the
    same fields; else they become one {"type":"changed","what":"vma"} record
    (raw_before/raw_after: vm_flags)."""
    weighty = [f for f in found if severity_rank(f.severity) >= 1]
    if not weighty:
        return found
    sess.target.flush_cache()
    try:
        now = sess.target.find_vma(task.mm, vma.start)
    except core().Error:
        now = None
    if now is not None and tuple(now) == tuple(vma._tuple):
        return found
    changed.append(json.loads(core().changed_json(
        task.pid, vma.start, vma.start, vma.flags, now[3] if now is not None else 0,
        what="vma", codes=[f.code for f in weighty])))
    return [f for f in found if f not in weighty]


def vma_findings(sess: Session, task: Task, vma: Vma,
                 changed: Optional[List[dict]] = None) -> List[Finding]:
    """Diagnoses of one VMA: VMA-level rules plus runs of entries.  On a
    live target (sess.confirm) a finding at medium or above is read again
    before it is reported; one that changed meanwhile is not a finding but a
    {"type":"changed"} record, appended to ``changed`` when given."""
    confirm = getattr(sess, "confirm", False)
    walked = sess.target.check_mm(task.mm, task.pid, _confirm_flags(confirm), False, [vma._tuple])
    return _task_findings(sess, task, walked, confirm, [] if changed is None else changed)


def _confirm_flags(confirm: bool) -> int:
    return core().WALK_CONFIRM if confirm else 0


def _hit_findings(sess: Session, task: Task, vma: Vma, diags: List[Tuple[str, str]],
                  runs: bytes, confirm: bool, changed: List[dict]) -> List[Finding]:
    """The findings of a VMA from its VMA-level diagnoses and its only_diag
    summary runs (a hit of Target.check_mm)."""
    out = [Finding(task.pid, task.comm, vma.start, vma.end, vma.start, vma.end,
                   1, code, sev, "vma", file=vma.file) for code, sev in diags]
    if confirm and out:
        out = _confirm_vma(sess, task, vma, out, changed)
    return out + _run_findings(task, vma, runs, changed)


def _task_findings(sess: Session, task: Task, walked, confirm: bool,
                   changed: List[dict]) -> List[Finding]:
    """The findings of a task from Target.check_mm()'s result."""
    out: List[Finding] = []
    for vt, diags, runs, _ in walked[1]:
        out.extend(_hit_findings(sess, task, Vma(sess, task.mm, vt, task.pid), diags, runs,
                                 confirm, changed))
    return out


def _vmas_done(sess: Session, task: Task, walked, vma_done) -> None:
    if vma_done:
        for vt, entries in walked[2]:
            vma_done(task, Vma(sess, task.mm, vt, task.pid), entries)


def _run_findings(task: Task, vma: Vma, runs: bytes, changed: List[dict]) -> List[Finding]:
    out: List[Finding] = []
    for line in runs.splitlines():
        run = json.loads(line)
        if run.get("type") == "changed":
            changed.append(run)
            continue
        for d in run.get("diagnoses") or []:
            start = int(run["addr"], 16)
            end = int(run["end"], 16) if run.get("end") else start + 4096
            out.append(Finding(task.pid, task.comm, vma.start, vma.end, start, end,
                               int(run.get("count", 1)), d["code"], d["severity"], "entry",
                               run.get("level"), run.get("kind"), run.get("pfn"),
                               int(run["raw"], 16) if run.get("raw") else None,
                               run.get("vnp_reason"), vma.file))
    return out


class CheckError(NamedTuple):
    pid: int
    comm: str
    message: str

    def to_json(self) -> str:
        return json.dumps({"type": "error", "pid": self.pid, "comm": self.comm,
                           "message": self.message}, separators=(",", ":"))


def check(prog: drgn.Program, pids: Optional[Iterable[int]] = None,
          progress: Optional[Callable[[int, int, Task], None]] = None,
          errors: Optional[List[CheckError]] = None,
          vma_done: Optional[Callable[[Task, Vma, int], None]] = None,
          changed: Optional[List[dict]] = None, jobs: Optional[int] = 1) -> List[Finding]:
    """Every task (or the given pids), every VMA: diagnoses only.

    ``jobs``: worker threads for the walks (None: the online CPUs, see
    pfnscope.parallel); the findings are the same whatever the number.

    ``progress(i, n, task)`` is called before task i of n, ``vma_done(task,
    vma, entries)`` after each VMA with the number of entries walked in it.
    A task whose VMA tree or page tables cannot be read is skipped and
    recorded in ``errors`` (when given) instead of aborting the check.  On a
    live target, findings at medium or above that a re-read did not confirm
    are left out and recorded in ``changed`` (when given) as
    {"type":"changed"} records."""
    sess = session_for(prog)
    c = core()
    if pids:
        todo = [Task(*sess.find_task(p)) for p in pids]
    else:
        todo = [Task(*t) for t in sess.tasks()]
    todo = [t for t in todo if t.mm]
    out: List[Finding] = []
    # a live task whose walk failed is read once more from its VMA tree
    tries = 2 if getattr(sess, "confirm", False) else 1
    from . import parallel
    jobs = parallel.jobs_for(sess, jobs) if jobs != 1 else 1
    if jobs > 1:
        with parallel.Workers(sess, jobs) as workers:
            return _check_parallel(sess, todo, workers, progress, errors, vma_done)
    confirm = getattr(sess, "confirm", False)
    for i, t in enumerate(todo):
        if progress:
            progress(i, len(todo), t)
        for attempt in range(tries):
            moved: List[dict] = []
            try:
                # a live mm's VMAs: read as Session.vmas() reads a tree that may change
                walked = sess.target.check_mm(t.mm, t.pid, _confirm_flags(confirm), bool(vma_done),
                                              sess.vmas(t.mm) if confirm else None)
                found = _task_findings(sess, t, walked, confirm, moved)
            except c.Error as e:
                err = e
                sess.target.flush_cache()
                continue
            out.extend(found)
            if changed is not None:
                changed.extend(moved)
            _vmas_done(sess, t, walked, vma_done)
            break
        else:
            if errors is None:
                raise PfnscopeError(f"pid {t.pid}", str(err))
            errors.append(CheckError(t.pid, t.comm, str(err)))
    out.sort(key=lambda f: (-severity_rank(f.severity), f.pid, f.start))
    return out


def _check_parallel(sess: Session, todo: List[Task], workers, progress, errors,
                    vma_done) -> List[Finding]:
    """check() with the walks of each task on a worker thread's Target; file
    names, findings and callbacks in this thread, in the tasks' order (a
    target that keeps running is never checked here: see parallel.why_serial)."""
    c = core()

    def walk_task(t: Task):
        target = workers.target()
        try:
            return target.check_mm(t.mm, t.pid, 0, bool(vma_done))
        except c.Error as e:
            target.flush_cache()
            return e

    out: List[Finding] = []
    for i, (t, res) in enumerate(zip(todo, workers.ordered(walk_task, todo))):
        if progress:
            progress(i, len(todo), t)
        if isinstance(res, Exception):
            if errors is None:
                raise PfnscopeError(f"pid {t.pid}", str(res))
            errors.append(CheckError(t.pid, t.comm, str(res)))
            continue
        out.extend(_task_findings(sess, t, res, False, []))
        _vmas_done(sess, t, res, vma_done)
    out.sort(key=lambda f: (-severity_rank(f.severity), f.pid, f.start))
    return out
