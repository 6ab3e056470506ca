"""The ``pfnscope`` command line (docs/guide.md, pfnscope(1)).

Exit status: 0 clean, 1 findings at or above --fail-on (check), 2 usage or
input error (one line on stderr, never a traceback).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Sequence, Tuple

EPILOG = """\
targets:
  -c VMCORE     a crash dump: makedumpfile kdump-compressed (real kdump, -d 31
                filtered pages show as "unreadable"), QEMU dump-guest-memory ELF
                (paging=false or true), QEMU kdump-zlib (flattened is rebuilt)
  -k            the running kernel through /proc/kcore (root)
  --qemu-ram FILE  a running QEMU guest's RAM (-object memory-backend-file,
                mem-path=FILE,share=on); VMCOREINFO is found in guest RAM.  The guest
                keeps running: walk re-reads every VMA and reports entries that
                changed meanwhile ({"type":"changed",...} / "# changed" lines)
  -s VMLINUX    debug vmlinux; default: the one matching the dump's release in
                /usr/lib/debug/boot/vmlinux-REL, /usr/lib/debug/lib/modules/REL/vmlinux,
                $PFNSCOPE_CACHE/kernels/REL/vmlinux.  A vmlinux from another build
                is refused (build-id / release compared with VMCOREINFO).
  --btf         no vmlinux: types from the kernel's own BTF, symbols from kallsyms
                (-k: /sys/kernel/btf/vmlinux and /proc/kallsyms; a dump: the .BTF
                section and the kallsyms tables found through VMCOREINFO, Linux
                6.0+).  Used by itself when no debug vmlinux is found;
                PFNSCOPE_BTF=1 does the same as --btf.  With --json the first
                record says which was used: {"type":"target",...,"layout_source":
                "debuginfo"|"btf"|"cache"} ("cache": the layout a run with the
                debug vmlinux wrote for this kernel build; PFNSCOPE_LAYOUT_CACHE=0
                turns it off).

examples:
  pfnscope -c vmcore tasks                      tasks that have an mm
  pfnscope -c vmcore vmas -p 147                VMAs with decoded flags and name
  pfnscope -c vmcore walk -p 147 -a 0x7f00000   entries of the VMA holding the address
  pfnscope -c vmcore walk -p 147 --all --summary  runs of equal entries, every VMA
  pfnscope -c vmcore walk -p 147 -a 0x7f00000 --json | jq .   one JSON object per line
  pfnscope -c vmcore check                      diagnoses of every task; exit 1 if any
                                                is high or critical
  pfnscope -c vmcore check -p 147 --fail-on medium --json
  pfnscope -k check                             the running kernel
  pfnscope -c vmcore rmap 0x1a2b3               who maps this pfn: every task's
                                                leaf entries over it, special ones too

columns of the entry table: address, level (pte/pmd/pud), raw entry, kind
(present, none, protnone, swap, migration, device, marker, hwpoison, unreadable),
pfn, special bit, vm_normal_page() verdict and reason, refcount/mapcount of the
struct page, page flags, diagnoses.  Severities: low < medium < high < critical.

check, walk --all and rmap draw a progress line on stderr when it is a terminal (not
with --json; PFNSCOPE_NO_PROGRESS=1 turns it off).  More: man pfnscope.
"""

SEVERITIES = ("low", "medium", "high", "critical")


def _int(s: str) -> int:
    try:
        return int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}")


def _pid(s: str) -> int:
    v = _int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"not a pid: {s!r}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line (+ usage)
        self.print_usage(sys.stderr)
        sys.stderr.write(f"pfnscope: {message}\n")
        sys.exit(2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The help formatter, its width found as shutil.get_terminal_size()
    finds it ($COLUMNS, then the terminal of stdout, else 80): argparse
    makes a formatter for every argument added and each would import
    shutil (with bz2, lzma and fnmatch: ~15 ms of every run's start-up)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS", ""))
            except ValueError:
                width = 0
            if width <= 0:
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns
                except (AttributeError, ValueError, OSError):
                    width = 0
            width = (width or 80) - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _jobs(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: a number of threads, 1 or more")
    return n


def build_parser() -> argparse.ArgumentParser:
    tgt = argparse.ArgumentParser(add_help=False)
    g = tgt.add_argument_group("target")
    m = g.add_mutually_exclusive_group()
    m.add_argument("-c", "--core", metavar="VMCORE", default=argparse.SUPPRESS,
                   help="crash dump to read")
    m.add_argument("-k", "--kernel", action="store_true", default=argparse.SUPPRESS,
                   help="the running kernel (/proc/kcore)")
    m.add_argument("--qemu-ram", metavar="FILE", default=argparse.SUPPRESS,
                   help="a running QEMU guest's RAM file (memory-backend-file,share=on), "
                        "read without pausing the guest")
    g.add_argument("-s", "--symbols", metavar="FILE", action="append", default=argparse.SUPPRESS,
                   help="debug vmlinux (default: matching the target's release); repeatable "
                        "for modules' debug files (-s vmlinux -s kvm.ko -s kvm-amd.ko)")
    g.add_argument("--btf", action="store_true", default=argparse.SUPPRESS,
                   help="types from the kernel's BTF and symbols from kallsyms, no vmlinux "
                        "(default when no debug vmlinux is found)")
    g.add_argument("--reader", choices=("kdumpfile", "drgn"), default=argparse.SUPPRESS,
                   help="how dump memory is read: libkdumpfile in C (default; opens every "
                        "format) or drgn's prog.read")
    g.add_argument("-j", "--jobs", type=_jobs, metavar="N", default=argparse.SUPPRESS,
                   help="worker threads (default $PFNSCOPE_JOBS, else: check, the online "
                        "CPUs; walk, 1); the output is the same for every N")
    out = argparse.ArgumentParser(add_help=False)
    o = out.add_argument_group("output")
    o.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="one JSON object per line (schema: docs/pfnscope.schema.json)")

    p = _Parser(prog="pfnscope", parents=[tgt, out],
                formatter_class=_Formatter,
                description="Walk the page tables of a VMA in a crash dump or live kernel and "
                            "report, per entry, what the kernel thinks it maps: special bit, "
                            "vm_normal_page() verdict, struct page refcount/mapcount, consumer "
                            "verdicts (GUP, follow_pte, KVM, VFIO) and diagnoses of "
                            "mislabeled pfnmap pages.",
                epilog=EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    kw = dict(parents=[tgt, out], formatter_class=_Formatter)
    sub.add_parser("tasks", help="list tasks with an mm", **kw)
    sp = sub.add_parser("vmas", help="VMAs of a task with decoded flags", **kw)
    sp.add_argument("-p", "--pid", type=_pid, action="append", dest="pids", required=True,
                    help="the task (repeatable: the VMAs of each, in order)")
    sp = sub.add_parser("walk", help="page-table entries of a VMA (or of all VMAs)", **kw,
                        epilog="example: pfnscope -c vmcore walk -p 147 -a 0x7f0000000000 --summary")
    sp.add_argument("-p", "--pid", type=_pid, action="append", dest="pids", required=True,
                    help="the task (repeatable: the same walk in each)")
    w = sp.add_mutually_exclusive_group(required=True)
    w.add_argument("-a", "--addr", type=_int, help="an address inside the VMA to walk")
    w.add_argument("--all", action="store_true", help="walk every VMA of the task")
    sp.add_argument("--summary", action="store_true", help="runs of equal entries")
    sp.add_argument("--include-none", action="store_true", help="also report empty (none) entries")
    sp = sub.add_parser("check", help="every task, every VMA: diagnoses only", **kw,
                        epilog="exit status 1 when a finding is at or above --fail-on")
    sp.add_argument("-p", "--pid", type=_pid, action="append", dest="pids",
                    help="only this task (repeatable)")
    sp.add_argument("--fail-on", choices=SEVERITIES, default="high",
                    help="lowest severity that makes the exit status 1 (default: high)")
    sp.add_argument("--summary", action="store_true", help="also print counts per code")
    sp = sub.add_parser("rmap", help="every page-table entry of every task that maps a pfn", **kw,
                        epilog="The page tables are searched, not the kernel's rmap, so special "
                               "entries (pfnmaps, a page freed while still mapped) are found too.\n"
                               "example: pfnscope -c vmcore rmap 0x1a2b3-0x1a2ff --json")
    sp.add_argument("pfns", type=_pfn_range, metavar="PFN[-PFN]",
                    help="a pfn or an inclusive range (decimal or 0x hex)")
    sp.add_argument("-p", "--pid", type=_pid, action="append", dest="pids",
                    help="only this task (repeatable)")
    sp = sub.add_parser("kvm", help="KVM's VMs, memslots and stage-2 (TDP MMU) SPTEs", **kw,
                        epilog="Without -p: one record per VM (vm_list). With -p: every leaf SPTE "
                               "of that VMM's VMs, with the host pte at its hva now and the "
                               "KVM_* diagnoses. Needs kvm.ko's debug file (-s kvm.ko -s kvm-amd.ko).\n"
                               "example: pfnscope -c vmcore -s vmlinux -s kvm.ko -s kvm-amd.ko kvm -p 99 --json")
    sp.add_argument("-p", "--pid", type=_pid, action="append", dest="pids",
                    help="the VMM's pid: list its VMs' SPTEs (repeatable)")
    sp.add_argument("--gfn", type=_int, help="only the SPTE mapping this guest frame number")
    sp.add_argument("--fail-on", choices=SEVERITIES, default="high",
                    help="lowest severity that makes the exit status 1 (default: high)")
    return p


def _pfn_range(s: str) -> Tuple[int, int]:
    lo, sep, hi = s.partition("-")
    try:
        a = int(lo, 0)
        b = int(hi, 0) if sep else a
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a pfn or a pfn range LO-HI")
    if a < 0 or b < a or b >= 1 << 52:
        raise argparse.ArgumentTypeError(f"{s!r}: want 0 <= LO <= HI < 2**52")
    return a, b


# --- commands ---------------------------------------------------------------

def _split_symbols(args) -> Tuple[Optional[str], List[str]]:
    """-s FILE...: the vmlinux and the modules' debug files (named NAME.ko*)."""
    files = getattr(args, "symbols", None) or []
    if isinstance(files, str):
        files = [files]
    mods = [f for f in files if ".ko" in os.path.basename(f)]
    vmls = [f for f in files if f not in mods]
    if len(vmls) > 1:
        from .errors import PfnscopeError
        raise PfnscopeError("-s", f"more than one vmlinux given: {', '.join(vmls)}")
    return (vmls[0] if vmls else None), mods


def _open(args):
    from . import opening
    vml, args.module_debug = _split_symbols(args)
    if vml is not None and not os.path.isfile(vml):
        from .errors import PfnscopeError
        raise PfnscopeError(vml, "no such file")
    btf = getattr(args, "btf", False)
    if btf and vml is not None:
        from .errors import PfnscopeError
        raise PfnscopeError("--btf", "and -s VMLINUX exclude each other")
    if getattr(args, "kernel", False):
        return opening.open_live(vml, btf=btf)
    if getattr(args, "qemu_ram", None) is not None:
        return opening.open_qemu_ram(args.qemu_ram, vml, btf=btf, layout_cache=True)
    core = getattr(args, "core", None)
    if core is None:
        from .errors import PfnscopeError
        raise PfnscopeError("target", "give -c VMCORE, -k or --qemu-ram FILE")
    return opening.open_dump(core, vml, getattr(args, "reader", "kdumpfile"), btf=btf,
                             layout_cache=True)


def target_record(sess) -> str:
    """The first --json record: what was read and where types came from."""
    vmci = sess.vmci
    return json.dumps({"type": "target", "arch": sess.arch.name, "release": vmci.osrelease,
                       "build_id": vmci.build_id, "layout_source": sess.layout_source.kind,
                       "facts": dict(sorted(sess.facts.items()))},
                      separators=(",", ":"))


def run_command(sess, args) -> int:
    """One command on an open session (the CLI's and the GDB front end's)."""
    if args.json:
        _write(target_record(sess) + "\n")
    _warn_damage(sess, args)
    return COMMANDS[args.command](sess, args)


def _write(s: str) -> None:
    sys.stdout.write(s)


def _count(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    """The progress line of long commands (check, walk --all, rmap): tasks and VMAs
    done, entries walked and the rate, on stderr, redrawn in place (at most
    ten times a second) and cleared at the end.  Drawn only when stderr is a
    terminal and the output is not JSON; PFNSCOPE_NO_PROGRESS=1 turns it off."""

    INTERVAL = 0.1

    def __init__(self, what: str, ntasks: int, counted: str = "entries", rate: bool = True) -> None:
        import time
        self._now = time.monotonic
        self.what = what
        self.counted = counted  # what the count of entries is called
        self.show_rate = rate
        self.ntasks = ntasks
        self.tasks = 0          # tasks done
        self.vmas = 0           # VMAs done
        self.entries = 0        # entries walked
        self.task = None
        self.t0 = self._now()
        self.last = 0.0
        self.shown = False

    @staticmethod
    def wanted(args) -> bool:
        if getattr(args, "json", False) or os.environ.get("PFNSCOPE_NO_PROGRESS"):
            return False
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def start_task(self, i: int, task) -> None:
        self.tasks = i
        self.task = task
        self.draw()

    def vma_done(self, entries: int) -> None:
        self.vmas += 1
        self.entries += entries
        self.draw()

    def line(self) -> str:
        dt = self._now() - self.t0
        rate = f", {_count(self.entries / dt)} {self.counted}/s" if dt > 0 and self.show_rate else ""
        cur = f" (pid {self.task.pid} {self.task.comm})" if self.task is not None else ""
        return (f"{self.what}: {self.tasks}/{self.ntasks} tasks{cur}, {self.vmas} VMAs, "
                f"{_count(self.entries)} {self.counted}{rate}")

    def draw(self, force: bool = False) -> None:
        now = self._now()
        if not force and self.shown and now - self.last < self.INTERVAL:
            return
        self.last = now
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError, AttributeError):
            width = 0
        text = self.line()
        if width > 1:  # a line that wraps cannot be redrawn with \r
            text = text[:width - 1]
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line (before other output, and at the end)."""
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def cmd_tasks(sess, args) -> int:
    from .api import Task
    ts = [Task(*t) for t in sess.tasks()]
    # one write: stdout may be unbuffered (PYTHONUNBUFFERED), a write(2) a line
    if args.json:
        _write("".join(json.dumps(t.to_dict(), separators=(",", ":")) + "\n" for t in ts))
        return 0
    _write(f"{'PID':>7} {'TGID':>7} {'MM':18} COMM\n" +
           "".join(f"{t.pid:>7} {t.tgid:>7} {t.mm:#018x} {t.comm}\n" for t in ts if t.mm))
    return 0


def _task_with_mm(sess, pid: int):
    from .api import Task
    from .errors import PfnscopeError
    t = Task(*sess.find_task(pid))
    if not t.mm:
        raise PfnscopeError(f"pid {pid}", f"{t.comm} is a kernel thread (no mm)")
    return t


def _vma_line(v) -> str:
    names = ",".join(v.flag_names)
    return (f"{v.start:#018x}-{v.end:#018x} {v.flags:#010x} {names:40} "
            f"pgoff={v.pgoff:#x} {v.file or v.name or ''}".rstrip())


def cmd_vmas(sess, args) -> int:
    from .api import Vma
    ts = [_task_with_mm(sess, pid) for pid in args.pids]  # errors before output
    for t in ts:
        if not args.json and len(ts) > 1:
            _write(f"# pid {t.pid} ({t.comm})\n")
        for vt in sess.vmas(t.mm):
            v = Vma(sess, t.mm, vt, t.pid)
            _write((v.to_json() if args.json else _vma_line(v)) + "\n")
    return 0


def cmd_walk(sess, args) -> int:
    from .api import Vma
    from .errors import PfnscopeError
    from .extension import core
    c = core()
    flags = c.WALK_NONE if args.include_none else 0
    mode = ("summary-" if args.summary else "") + ("json" if args.json else "table")
    fd = sys.stdout.fileno()
    todo = []
    unread = []  # (task, vma_start or None, message): not read, exit 2
    # a damaged dump (truncated, corrupt): a task or VMA whose structures are
    # gone is reported as not read and the others are walked
    partial = bool(getattr(sess, "damage", None)) and len(args.pids) > 1
    for pid in args.pids:  # resolve everything first: errors before output
        try:
            t = _task_with_mm(sess, pid)
        except (PfnscopeError, c.Error) as e:
            if not partial:
                raise
            from .api import Task
            unread.append((Task(0, pid, -1, 0, ""), None, str(e)))
            continue
        try:
            if args.addr is not None:
                vt = sess.find_vma(t.mm, args.addr)
                if vt is None:
                    raise PfnscopeError(f"{args.addr:#x}", f"not mapped in pid {t.pid} ({t.comm})")
                todo += [(t, vt)]
            else:
                todo += [(t, vt) for vt in sess.vmas(t.mm)]
        except c.Error as e:
            if not partial:
                raise
            unread.append((t, None, str(e)))
    prog = Progress("walk", len(args.pids)) if args.all and Progress.wanted(args) else None
    # output to the same terminal: erase the line before each VMA's output
    # and redraw it after; otherwise it stays and is redrawn at most 10x/s
    share_tty = prog is not None and sys.stdout.isatty()
    task = None
    from . import parallel
    # one thread unless asked: each worker's output is staged in a memfd and
    # copied out in order, which costs about what a second thread saves
    # when the output is an entry per line (measured on a 1 GiB VMA)
    jobs = 1 if getattr(sess, "live", False) else parallel.jobs_for(
        sess, getattr(args, "jobs", None), fallback=1)
    workers = parallel.Workers(sess, jobs) if jobs > 1 and todo else None
    done = parallel.walk_vmas(workers, todo, mode, flags) if workers else None
    try:
        for i, (t, vt) in enumerate(todo):
            if prog and t is not task:
                if task is not None:
                    prog.tasks += 1
                task = t
                prog.start_task(prog.tasks, t)
            v = Vma(sess, t.mm, vt, t.pid)
            if share_tty:
                prog.clear()
            if args.json:
                _write(v.to_json() + "\n")
            else:
                _write(f"# pid {t.pid} ({t.comm}) vma " + _vma_line(v) + "\n")
                _write(c.table_header(args.summary) + "\n")
            sys.stdout.flush()
            n = 0
            if done is not None:
                n = _copy_pieces(done, i, fd)
            elif getattr(sess, "live", False):
                n = _walk_live(sess, t, vt, fd, mode, flags, args.json)
            else:
                if getattr(sess, "confirm", False):
                    flags |= c.WALK_CONFIRM
                try:
                    n = sess.target.walk_write(fd, t.mm, vt, t.pid, mode=mode, flags=flags)[0]
                except c.Error as e:  # a damaged dump: a table page gone, the next VMA is walked
                    if not getattr(sess, "damage", None):
                        raise
                    unread.append((t, vt[1], str(e)))
            if prog:
                prog.vma_done(n)
        if prog:
            prog.tasks = len(args.pids)
            prog.draw(force=True)
    finally:
        if prog:
            prog.clear()
        if workers:
            workers.close()
    for t, start, msg in unread:
        where = f"pid {t.pid} ({t.comm})" + (f" vma {start:#x}" if start is not None else "")
        if args.json:
            rec = {"type": "error", "pid": t.pid, "comm": t.comm, "message": msg}
            if start is not None:
                rec["vma_start"] = f"{start:#x}"
            _write(json.dumps(rec, separators=(",", ":")) + "\n")
        sys.stderr.write(f"pfnscope: {where}: not read: {msg}\n")
    return 2 if unread else 0


def _copy_pieces(done, i: int, fd: int) -> int:
    """The output of VMA i of a parallel walk (parallel.walk_vmas), its
    pieces in order, to fd; entries walked.  A walk that failed fails here,
    after its output so far, as walk_write does on one thread."""
    from . import parallel
    j, results = next(done)
    assert j == i
    n = 0
    for piece, walked, exc in results:
        parallel.copy_out(piece, fd)
        n += walked
        if exc is not None:
            raise exc
    return n


def _walk_live(sess, t, vt, fd, mode, flags, as_json) -> int:
    """A walk of a target that keeps running (--qemu-ram): raw entries are
    read before and after the reported walk (caches dropped each time); an
    entry that differs is reported after the VMA's output, never an error.
    A VMA whose tables vanish meanwhile is reported the same way.  Inside
    the reported walk, an entry's diagnoses at medium or above are read
    again (WALK_CONFIRM) and withdrawn, with a changed record, when they
    do not hold.  Returns the number of entries of the reported walk."""
    from .extension import core
    c = core()

    def raws():
        sess.target.flush_cache()
        try:
            return {e.addr: e.raw for e in
                    sess.target.walk(t.mm, vt, None, None, flags | c.WALK_NO_PAGE)}, None
        except c.Error as e:
            return {}, str(e)
    before, err1 = raws()
    sess.target.flush_cache()
    err2 = None
    walked = 0
    try:
        walked = sess.target.walk_write(fd, t.mm, vt, t.pid, mode=mode, flags=flags | c.WALK_CONFIRM)[0]
    except c.Error as e:
        err2 = str(e)
    after, err3 = raws()
    out = []
    for addr in sorted(set(before) | set(after)):
        b, a = before.get(addr, 0), after.get(addr, 0)
        if b != a:
            if as_json:
                out.append(c.changed_json(t.pid, vt[1], addr, b, a))
            else:
                out.append(f"# changed during the walk: {addr:#018x} raw {b:#018x} -> {a:#018x}")
    for err in dict.fromkeys(e for e in (err1, err2, err3) if e):
        if as_json:
            out.append(json.dumps({"type": "error", "pid": t.pid, "comm": t.comm,
                                   "vma_start": f"{vt[1]:#x}", "message": err},
                                  separators=(",", ":")))
        sys.stderr.write(f"pfnscope: pid {t.pid} vma {vt[1]:#x}: changed under the walk: {err}\n")
    if out:
        _write("\n".join(out) + "\n")
        sys.stdout.flush()
    return walked


def cmd_check(sess, args) -> int:
    from . import api
    prog = None
    progress = vma_done = None
    if Progress.wanted(args):
        prog = Progress("check", 0)

        def progress(i: int, n: int, t) -> None:
            prog.ntasks = n
            prog.start_task(i, t)

        def vma_done(t, v, entries: int) -> None:
            prog.vma_done(entries)
    errors: List[api.CheckError] = []
    changed: List[dict] = []
    try:
        findings = api.check(sess, args.pids, progress, errors, vma_done, changed,
                             jobs=getattr(args, "jobs", None))
        if prog:
            prog.tasks = prog.ntasks
            prog.draw(force=True)
    finally:
        if prog:
            prog.clear()
    for f in findings:
        _write((f.to_json() if args.json else str(f)) + "\n")
    for ch in changed:  # live targets: findings a re-read did not confirm
        if args.json:
            _write(json.dumps(ch, separators=(",", ":")) + "\n")
        else:
            _write(f"# changed during the check: pid {ch['pid']} {ch['addr']} {ch.get('level') or ''} "
                   f"{ch.get('what', 'entry')} {ch['raw_before']} -> {ch['raw_after']}; not confirmed: "
                   f"{','.join(ch.get('codes') or [])}\n")
    for e in errors:
        if args.json:
            _write(e.to_json() + "\n")
        sys.stderr.write(f"pfnscope: pid {e.pid} ({e.comm}): {e.message}\n")
    counts: dict = {}
    for f in findings:
        counts[(f.severity, f.code)] = counts.get((f.severity, f.code), 0) + 1
    if args.json:
        if args.summary:
            summ = {"type": "summary", "counts": {c: n for (_, c), n in counts.items()},
                    "errors": len(errors)}
            if getattr(sess, "confirm", False):
                summ["changed"] = len(changed)
            _write(json.dumps(summ, separators=(",", ":")) + "\n")
    else:
        if args.summary or not findings:
            for (sev, code), n in sorted(counts.items(), key=lambda k: -SEVERITIES.index(k[0][0])):
                _write(f"# {n:6} {sev:8} {code}\n")
        if not findings:
            _write("# no findings\n" if not errors else
                   f"# no findings in the tasks read; {len(errors)} task(s) unreadable\n")
    fail = SEVERITIES.index(args.fail_on)
    if any(SEVERITIES.index(f.severity) >= fail for f in findings):
        return 1
    # a task that could not be read was not checked: not a clean bill of health
    return 2 if errors else 0


def cmd_rmap(sess, args) -> int:
    """Walk every VMA of every task (or of -p), keeping the entries that map
    a pfn in the range; a VMA's header or record precedes its entries, and
    VMAs with none are not printed."""
    from . import api
    from .api import Task, Vma
    from .extension import core
    c = core()
    lo, hi = args.pfns
    mode = "json" if args.json else "table"
    todo = [Task(*sess.find_task(p)) for p in args.pids] if args.pids else \
        [Task(*t) for t in sess.tasks()]
    found, errors = 0, []
    todo = [t for t in todo if t.mm]
    prog = Progress("rmap", len(todo), counted="found", rate=False) if Progress.wanted(args) else None
    share_tty = prog is not None and sys.stdout.isatty()
    fd = os.memfd_create("pfnscope-rmap")
    try:
        for i, t in enumerate(todo):
            if prog:
                prog.start_task(i, t)
            try:
                for vt in sess.vmas(t.mm):
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    n = sess.target.walk_write(fd, t.mm, vt, t.pid, mode=mode, pfns=(lo, hi))[0]
                    if prog:
                        prog.vma_done(n)
                    if not n:
                        continue
                    found += n
                    if share_tty:
                        prog.clear()
                    v = Vma(sess, t.mm, vt, t.pid)
                    if args.json:
                        _write(v.to_json() + "\n")
                    else:
                        _write(f"# pid {t.pid} ({t.comm}) vma " + _vma_line(v) + "\n")
                        _write(c.table_header(False) + "\n")
                    sys.stdout.flush()
                    # as walk_write does: straight to stdout's descriptor,
                    # after what was written through sys.stdout
                    os.lseek(fd, 0, os.SEEK_SET)
                    while True:
                        b = os.read(fd, 1 << 20)
                        if not b:
                            break
                        while b:
                            b = b[os.write(sys.stdout.fileno(), b):]
            except c.Error as e:
                errors.append(api.CheckError(t.pid, t.comm, str(e)))
        if prog:
            prog.tasks = len(todo)
            prog.draw(force=True)
    finally:
        os.close(fd)
        if prog:
            prog.clear()
    found += _rmap_sptes(sess, args, lo, hi)
    for e in errors:
        if args.json:
            _write(e.to_json() + "\n")
        sys.stderr.write(f"pfnscope: pid {e.pid} ({e.comm}): {e.message}\n")
    if not found and not args.json:
        _write(f"# no entry maps pfn {lo:#x}" + (f"-{hi:#x}" if hi != lo else "") +
               (" in the tasks read\n" if errors else "\n"))
    # a task that could not be read was not searched
    return 2 if errors else 0


def _rmap_sptes(sess, args, lo: int, hi: int) -> int:
    """rmap's second half: the leaf SPTEs of every VM (KVM's stage-2 tables)
    that map a pfn in [lo, hi].  Silent when KVM is not loaded; a note on
    stderr when it is but its tables cannot be read (no debug file)."""
    from . import api
    from .errors import PfnscopeError
    from .kvm_mmu import drgn_types, kvm_module_loaded
    # the module list first: a kernel without KVM loads no debug info here
    if kvm_module_loaded(sess) is False or not drgn_types(sess):
        return 0
    import drgn
    try:
        vms = api.kvm_vms(sess, getattr(args, "module_debug", []))
        recs = [r for vm in vms for r in api.kvm_sptes(sess, vm, pfns=(lo, hi))]
    except PfnscopeError as e:
        if "not loaded" not in str(e):
            sys.stderr.write(f"pfnscope: kvm: {e} (SPTEs not searched)\n")
        return 0
    except Exception as e:
        # KVM's memory (or the module list) is not in this dump: a filtered
        # kdump from a makedumpfile that does not know the kernel.  drgn
        # 0.0.22 hands a fault raised in a memory-read callback back as a
        # plain Exception named after it.
        if not (isinstance(e, drgn.FaultError) or str(e).startswith("_drgn.FaultError")):
            raise
        sys.stderr.write(f"pfnscope: kvm: {str(e).replace('_drgn.FaultError: ', '')} "
                         "(SPTEs not searched)\n")
        return 0
    if recs and not args.json:
        _write(f"# KVM SPTEs\n{SPTE_HEADER}\n")
    for r in recs:
        _write((json.dumps(r, separators=(",", ":")) if args.json else _spte_line(r)) + "\n")
    return len(recs)


def _spte_line(r: dict) -> str:
    if r.get("raw") is None:
        return f"{r['gfn']:#10x} {r['level']:<4} unreadable table"
    bits = "".join(c if r.get(k) else "-" for c, k in (("P", "present"), ("W", "writable"),
                                                       ("X", "executable"), ("A", "accessed"),
                                                       ("D", "dirty"), ("H", "host_writable")))
    h = r.get("host")
    host = "-" if h is None else (f"{h['pfn']:#x}" if h.get("pfn") is not None else h.get("kind", "?")) + \
        ("s" if h and h.get("special") else "")
    diag = ",".join(d["code"] for d in r.get("diagnoses", []))
    return (f"{r['gfn']:#10x} {r['level']:<4} {r['raw']:>18} {r['pfn']:#10x} {bits} "
            f"{'-' if r['slot'] is None else r['slot']:>4} {r['hva'] or '-':>14} {host:>10} "
            f"{'-' if r.get('kvm_ref') is None else int(r['kvm_ref']):>3} {diag}")


SPTE_HEADER = (f"{'gfn':>10} {'lvl':<4} {'raw':>18} {'pfn':>10} PWXADH {'slot':>4} {'hva':>14} "
               f"{'host_pfn':>10} ref diagnoses")


def cmd_kvm(sess, args) -> int:
    """VMs (vm_list) or, with -p, the leaf SPTEs of a VMM's VMs."""
    from . import api
    from .errors import PfnscopeError
    vms = api.kvm_vms(sess, getattr(args, "module_debug", []))
    worst = -1
    if not args.pids:
        for vm in vms:
            d = vm.to_dict()
            if args.json:
                _write(json.dumps(d, separators=(",", ":")) + "\n")
            else:
                _write(f"# vm {d['kvm']} pid {d['pid']} roots "
                       + " ".join(f"L{r['level']}@{r['hpa']}{'(smm)' if r['smm'] else ''}" for r in d["roots"])
                       + "\n")
                for m in d["memslots"]:
                    _write(f"  slot {m['id']:>3} as {m['as_id']} gfn {m['base_gfn']:#x}-"
                           f"{m['base_gfn'] + m['npages'] - 1:#x} hva {m['hva']} {' '.join(m['flags'])}\n")
        if not vms and not args.json:
            _write("# no VM in vm_list\n")
        return 0
    for pid in args.pids:
        mine = [vm for vm in vms if vm.pid == pid]
        if not mine:
            raise PfnscopeError(f"pid {pid}", "owns no VM in vm_list")
        for vm in mine:
            recs = api.kvm_sptes(sess, vm, gfn=args.gfn)
            if not args.json:
                herr = next((r["host_error"] for r in recs if r.get("host_error")), None)
                _write(f"# vm {vm.address:#x} pid {pid}: {len(recs)} leaf SPTEs\n"
                       + (f"# host page tables not readable ({herr}): no host-based diagnosis\n"
                          if herr else "") + f"{SPTE_HEADER}\n")
            for r in recs:
                _write((json.dumps(r, separators=(",", ":")) if args.json else _spte_line(r)) + "\n")
                for dg in r.get("diagnoses", []):
                    worst = max(worst, SEVERITIES.index(dg["severity"]))
    return 1 if worst >= SEVERITIES.index(args.fail_on) else 0


COMMANDS = {"tasks": cmd_tasks, "vmas": cmd_vmas, "walk": cmd_walk, "check": cmd_check,
            "rmap": cmd_rmap, "kvm": cmd_kvm}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("json",):
        if not hasattr(args, name):
            setattr(args, name, False)
    try:
        return _run(args)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("pfnscope: interrupted\n")
        return 130


def _argparse_catalog_once() -> None:
    """argparse translates each of its messages through gettext.gettext(),
    which looks for the message catalog anew on every call (gettext.find():
    the locale variables expanded and normalized, the .mo files looked
    for): a parser tree as pfnscope's makes some 25 calls, more instructions
    than the rest of building it.  The CLI's own process looks the catalog
    up once, as gettext.dgettext() would, and hands argparse that one;
    each message comes out the same.  Not done for the GDB and crash front
    ends, whose process and gettext domain are their hosts'."""
    import gettext
    domain = gettext.textdomain()
    t = gettext.translation(domain, gettext.bindtextdomain(domain), fallback=True)
    argparse._ = t.gettext  # type: ignore[attr-defined]
    argparse.ngettext = t.ngettext  # type: ignore[attr-defined]


def script() -> None:
    """main(), then the process ends without tearing the interpreter down:
    the output is written, and the teardown (freeing drgn's DWARF index, the
    dump's libkdumpfile context) is time spent for nothing.  The entry of
    `python3 -m pfnscope`, bin/pfnscope and the console script."""
    _argparse_catalog_once()
    rc = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass
    os._exit(rc if isinstance(rc, int) else 1)


class MemOut:
    """sys.stdout for a front end whose own output is no file descriptor
    (GDB, crash): one memfd, written unbuffered so that the core's direct
    writes to fileno() and write() stay in order; drain(sink) then hands the
    bytes to the front end."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("pfnscope-out")

    def fileno(self) -> int:
        return self.fd

    def write(self, s: str) -> int:
        b = s.encode()
        while b:
            b = b[os.write(self.fd, b):]
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def drain(self, sink: Callable[[bytes], object]) -> None:
        try:
            os.lseek(self.fd, 0, os.SEEK_SET)
            while True:
                b = os.read(self.fd, 1 << 20)
                if not b:
                    break
                sink(b)
        finally:
            os.close(self.fd)


def run_on_program(prog, argv: Sequence[str]) -> int:
    """Run a pfnscope command on an existing drgn Program (a drgn session or
    script): ``run_on_program(prog, ["walk", "-p", "1", "-a", "0x400000"])``.
    Target options (-c/-k/-s) are ignored: the target is prog."""
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as e:
        return int(e.code or 0)
    if not hasattr(args, "json"):
        args.json = False
    try:
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return _run_to_stream(args, prog)
    return _run(args, prog)


def _run_to_stream(args, prog) -> int:
    """sys.stdout is a Python-level stream without a file descriptor
    (contextlib.redirect_stdout, IPython, a drgn command's output capture),
    but the core writes entries straight to a file descriptor: the command
    writes to a temporary file, copied to the stream when it is done, so the
    order of VMA and entry lines is kept."""
    import tempfile
    stream = sys.stdout
    with tempfile.TemporaryFile() as f:
        tmp = io.TextIOWrapper(f, encoding="utf-8", errors="replace")
        sys.stdout = tmp
        try:
            rc = _run(args, prog)
        finally:
            sys.stdout = stream
            tmp.flush()
        tmp.seek(0)
        while True:
            chunk = tmp.read(1 << 20)
            if not chunk:
                break
            stream.write(chunk)
    return rc


def _run(args, prog=None) -> int:
    from .errors import PfnscopeError
    try:
        from .extension import core
        from .program import session_for
        core()
        sess = _open(args) if prog is None else session_for(prog)
        rc = run_command(sess, args)
        sys.stdout.flush()
        return rc
    except PfnscopeError as e:
        return _fail(e.line())
    except BrokenPipeError:
        raise  # the reader of our output went away (| head): main() ends quietly
    except Exception as e:
        if os.environ.get("PFNSCOPE_DEBUG"):
            raise
        return _fail(_describe(e))


def _warn_damage(sess, args) -> None:
    """A damaged dump: one warning line on stderr, and with --json its
    warning records first (after any header record)."""
    damage = getattr(sess, "damage", None)
    if not damage:
        return
    from .dumpfile import damage_records
    sys.stderr.write(f"pfnscope: warning: {sess.source}: {damage['message']}\n")
    if args.json:
        for rec in damage_records(damage):
            _write(json.dumps(rec, separators=(",", ":")) + "\n")


def _describe(e: Exception) -> str:
    """The one line for an error: pfnscope's own from its fields (file,
    address and what was being read there), drgn's fault at its address."""
    from .errors import PfnscopeError
    if isinstance(e, PfnscopeError):
        return e.line()
    name = type(e).__name__
    msg = str(e).splitlines()[0] if str(e) else name
    if name == "FaultError":  # drgn.FaultError
        addr = getattr(e, "address", None)
        return f"{addr:#x}: {msg}" if addr is not None else msg
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror}"
    return f"internal error: {name}: {msg} (PFNSCOPE_DEBUG=1 for a traceback)"


def _fail(msg: str) -> int:
    try:
        sys.stdout.flush()
    except Exception:
        pass
    sys.stderr.write(f"pfnscope: {msg}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
