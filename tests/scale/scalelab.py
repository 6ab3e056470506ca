"""The scale guest (bench only, not in make check): an 8 GiB lab VM with
NPROC processes (default 2,000) holding KIB_PER_PROC KiB (default 3 MiB:
6 GiB in all) of populated memory each in a mix of VMA kinds (private anon,
shmem, memfd, zero-page reads, THPs; tests/scale/guest/scaleguest.c),
dumped as QEMU ELF (paging=true) and as a real kdump (makedumpfile -c -d 31).

Built by the bench's machinery (tests/bench/benchlab.py: its init and QEMU
guest, with scaleguest in place of benchguest), in its own family: cached
under $PFNSCOPE_CACHE/scale/<release>-<cpu>-<args>-<hash12>, its own hash
(scaleguest.c, the bench init, the guest's memory).

    from tests.scale import scalelab
    fx = scalelab.fixture("6.1", "max")   # ~10+ min under TCG the first time
"""
import os
import sys

SCALEDIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SCALEDIR))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.bench import benchlab  # noqa: E402
from tests.vm import lab  # noqa: E402

CACHE = os.path.join(lab.CACHE, "scale")
BUILD = os.path.join(ROOT, "build", "scale")
GUEST_SRC = os.path.join(SCALEDIR, "guest", "scaleguest.c")
GUEST_MEM = "8G"
FIXTURE_VERSION = 1


def source_hash():
    return benchlab.source_hash((GUEST_SRC, benchlab.INIT), GUEST_MEM, FIXTURE_VERSION)


def guest_program():
    return benchlab.guest_program(GUEST_SRC, BUILD, "scale guest")


def fixture(kernel="6.1", cpu="max", nproc=2000, kib_per_proc=3072, rebuild=False):
    """The scale fixture (built when missing).  One QEMU guest at a time."""
    return benchlab.cached_fixture(CACHE, kernel, cpu, "%d:%d" % (nproc, kib_per_proc),
                                   source_hash(), rebuild, "scale fixture",
                                   "8 GiB guest under TCG", mem=GUEST_MEM, prog=guest_program())


if __name__ == "__main__":
    a = sys.argv[1:]
    fx = fixture(*(a[:2] or ["6.1", "max"]), *(int(x) for x in a[2:4]))
    print(fx.dir)
