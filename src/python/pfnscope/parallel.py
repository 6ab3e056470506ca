"""Walks on worker threads, output in the order of one thread.

The C core keeps no globals: everything a walk touches hangs off its
Target (reader caches, error) and the read-only layout.  Each worker
thread gets its own Target over its own reader context -- a KdumpFile
clone (a libkdumpfile context of its own on the same file, its own page
cache, no lock between threads) or the same RawFile (pread is
thread-safe) -- and
the extension releases the GIL during the C work, so walks run on every
core.  Each piece of work writes into its own memfd; the main thread
copies the pieces to the output in the order a single thread would have
written them, so the output is byte for byte that of ``-j 1``.

Not parallel (``-j 1``, said once on stderr when -j was asked for): a
Python reader (``--reader drgn``, /proc/kcore: each read calls into drgn
with the GIL held), a target that keeps running (its walks re-read and
confirm, with retries that flush the shared caches) and a damaged dump
(where a walk stops at the first page that is gone, mid-output).
"""
from __future__ import annotations

import collections
import os
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Iterator, List, Optional, Tuple

PMD_SIZE = 2 << 20
# a VMA is split into pieces of at least this many bytes of address space
# (8192 ptes): smaller pieces cost more in set-up than they win
MIN_PIECE = 32 << 20


def min_piece() -> int:
    """MIN_PIECE, or $PFNSCOPE_PIECE_BYTES (a multiple of 2 MiB; the tests
    cut the lab's small VMAs with it)."""
    try:
        v = int(os.environ.get("PFNSCOPE_PIECE_BYTES", ""))
    except ValueError:
        return MIN_PIECE
    return max(PMD_SIZE, v & ~(PMD_SIZE - 1))


def online_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_jobs(fallback: Optional[int] = None) -> int:
    """$PFNSCOPE_JOBS, else fallback, else the number of CPUs this process
    may run on."""
    env = os.environ.get("PFNSCOPE_JOBS", "")
    if env.strip():
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return fallback if fallback is not None else online_cpus()


def why_serial(sess) -> Optional[str]:
    """Why this session's walks stay on one thread (None: they need not)."""
    reader = getattr(sess, "reader", None)
    from .target import core
    c = core()
    if not isinstance(reader, (c.KdumpFile, c.RawFile)):
        return f"the {getattr(sess, 'reader_name', 'drgn')} reader reads through Python"
    if getattr(sess, "confirm", False) or getattr(sess, "live", False):
        return "a running target is read again to confirm findings"
    if getattr(sess, "damage", None):
        return "the dump is damaged"
    return None


def jobs_for(sess, asked: Optional[int], fallback: Optional[int] = None) -> int:
    """The number of worker threads for sess: asked (-j), else
    default_jobs(fallback); 1 when the session cannot run walks in parallel
    (said on stderr when more were asked for explicitly)."""
    n = default_jobs(fallback) if asked is None else max(1, asked)
    if n > 1:
        why = why_serial(sess)
        if why is not None:
            if asked is not None:
                sys.stderr.write(f"pfnscope: -j {asked}: one thread ({why})\n")
            return 1
    return n


class Workers:
    """A pool of threads, each with its own Target over its own reader."""

    def __init__(self, sess, jobs: int) -> None:
        from .target import core
        self.c = core()
        self.sess = sess
        self.jobs = jobs
        self._local = threading.local()
        self._made: List[tuple] = []
        # every thread's Target and reader context made here, before any
        # walk runs: a clone is made while no other context reads
        self._free: "queue.SimpleQueue" = queue.SimpleQueue()
        for _ in range(jobs):
            reader = sess.reader
            clone = getattr(reader, "clone", None)
            if clone is not None:
                reader = clone()
            t = self.c.Target(sess.layout, reader)
            self._made.append((t, reader))
            self._free.put(t)
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pfnscope")

    def target(self):
        """This worker thread's Target (one of those made for the pool)."""
        t = getattr(self._local, "target", None)
        if t is None:
            t = self._local.target = self._free.get_nowait()
        return t

    def ordered(self, fn: Callable, items: Iterable) -> Iterator:
        """fn(item) for each item on the pool, results in the items' order;
        at most 4 pieces of work per thread ahead of the consumer (bounded
        memory: each result may hold a memfd of output)."""
        window = collections.deque()
        it = iter(items)
        ahead = 4 * self.jobs
        for item in it:
            window.append(self.pool.submit(fn, item))
            if len(window) >= ahead:
                break
        while window:
            fut = window.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                window.append(self.pool.submit(fn, nxt))
            yield fut.result()

    def close(self) -> None:
        """Wait for the threads; their Targets and clones go with the last
        reference (a clone closes its libkdumpfile context then)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        while not self._free.empty():
            self._free.get_nowait()
        self._made.clear()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_END = object()


# --- output through memfds ----------------------------------------------------

def memfd() -> int:
    return os.memfd_create("pfnscope-piece", getattr(os, "MFD_CLOEXEC", 1))


def copy_out(fd_in: int, fd_out: int) -> None:
    """The whole of memfd fd_in to fd_out (closes fd_in)."""
    try:
        size = os.fstat(fd_in).st_size
        off = 0
        while off < size:
            try:
                n = os.sendfile(fd_out, fd_in, off, size - off)
            except OSError:
                n = 0
            if n <= 0:   # a descriptor sendfile cannot write to
                os.lseek(fd_in, off, os.SEEK_SET)
                while True:
                    b = os.read(fd_in, 1 << 20)
                    if not b:
                        return
                    view = memoryview(b)
                    while view:
                        w = os.write(fd_out, view)
                        view = view[w:]
            off += n
    finally:
        os.close(fd_in)


def read_all(fd: int) -> bytes:
    """The whole of memfd fd (closes it)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --- splitting one VMA ---------------------------------------------------------

def pieces(workers: Workers, mm: int, vt: tuple, jobs: int, flags: int) -> List[Tuple[int, int]]:
    """[start, end) pieces of the VMA vt whose walks, written one after the
    other, are the walk of the whole VMA.  A walk reports a huge leaf, an
    empty upper-level entry or an unreadable table at the start of the range
    it covers (walk_table in src/core/walk.c), so a piece may only begin
    where no such entry straddles: at a 2 MiB boundary whose pmd table is
    present and readable (every level above it a table).  That is checked
    by walking the boundary's first page."""
    start, end = vt[1], vt[2]
    least = min_piece()
    if jobs <= 1 or end - start < 2 * least:
        return [(start, end)]
    n = min(4 * jobs, (end - start) // least)
    step = (end - start) // n
    c = workers.c
    t = workers.sess.target     # this (the main) thread's
    cuts = [start]
    for i in range(1, n):
        b = (start + i * step) & ~(PMD_SIZE - 1)
        if b <= cuts[-1] or b >= end:
            continue
        try:
            es = t.walk(mm, vt, b, b + 4096, c.WALK_NONE | c.WALK_NO_PAGE)
        except c.Error:
            continue
        if not es or es[0].addr != b:
            continue
        e = es[0]
        if e.level == "pte" or (e.level == "pmd" and e.kind != "unreadable"):
            cuts.append(b)
    cuts.append(end)
    return list(zip(cuts[:-1], cuts[1:]))


def walk_pieces(workers: Workers, todo: List[tuple], mode: str, flags: int) -> Iterator[tuple]:
    """The walks of todo's (task, vma tuple) pairs (cmd_walk's), on the
    workers, as (index into todo, memfd holding the output, entries walked,
    exception or None) in output order; a VMA in one piece per thread's
    share when the mode writes one line per entry (a summary's runs may span
    the cuts: one piece)."""
    split = not mode.startswith("summary")
    work = []
    for i, (t, vt) in enumerate(todo):
        ranges = pieces(workers, t.mm, vt, workers.jobs, flags) if split else [(vt[1], vt[2])]
        for s, e in ranges:
            work.append((i, t, vt, s, e))
    c = workers.c

    def run(item):
        i, t, vt, s, e = item
        target = workers.target()
        fd = memfd()
        try:
            n = target.walk_write(fd, t.mm, vt, t.pid, mode=mode, flags=flags, start=s, end=e)[0]
            return i, fd, n, None
        except c.Error as exc:
            return i, fd, 0, exc
        except BaseException:
            os.close(fd)
            raise
    return workers.ordered(run, work)


def walk_vmas(workers: Workers, todo: List[tuple], mode: str, flags: int) -> Iterator[tuple]:
    """walk_pieces grouped per VMA: (index into todo, [(memfd, entries,
    exception or None) of each piece in order]), one per VMA, in order."""
    import itertools
    for i, group in itertools.groupby(walk_pieces(workers, todo, mode, flags), key=lambda r: r[0]):
        yield i, [(fd, n, exc) for _, fd, n, exc in group]
