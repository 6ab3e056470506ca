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
import hashlib
import os
import shutil
import sys
import time

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
    h = hashlib.sha256()
    for p in (GUEST_SRC, benchlab.INIT):
        with open(p, "rb") as f:
            h.update(os.path.basename(p).encode() + b"\0" + f.read() + b"\0")
    h.update(("%s %s" % (GUEST_MEM, FIXTURE_VERSION)).encode())
    return h.hexdigest()


def guest_program():
    os.makedirs(BUILD, exist_ok=True)
    out = os.path.join(BUILD, "scaleguest")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(GUEST_SRC):
        lab._run("scale guest", ["gcc", "-O2", "-static", "-Wall", "-Wextra", "-Werror",
                                 "-o", out + ".tmp", GUEST_SRC])
        os.rename(out + ".tmp", out)
    return out


def fixture(kernel="6.1", cpu="max", nproc=2000, kib_per_proc=3072, rebuild=False):
    """The scale fixture (built when missing).  One QEMU guest at a time."""
    k = lab.kernel(kernel)
    args = "%d:%d" % (nproc, kib_per_proc)
    tag = "%s-%s-%s" % (k.release, cpu, args.replace(":", "_"))
    key = "%s-%s" % (tag, source_hash()[:12])
    d = os.path.join(CACHE, key)
    os.makedirs(CACHE, exist_ok=True)
    with lab._flock(os.path.join(CACHE, ".build.lock")):
        if rebuild or not os.path.exists(os.path.join(d, "complete")):
            for fn in os.listdir(CACHE):
                if fn.startswith(tag + "-") and fn != key:
                    shutil.rmtree(os.path.join(CACHE, fn), ignore_errors=True)
            shutil.rmtree(d, ignore_errors=True)
            t0 = time.time()
            benchlab._log("building scale fixture %s (8 GiB guest under TCG)" % key)
            benchlab._build(k, kernel, cpu, args, d, mem=GUEST_MEM, prog=guest_program())
            benchlab._log("scale fixture %s built in %.0fs" % (key, time.time() - t0))
    return benchlab.Fixture(d)


if __name__ == "__main__":
    a = sys.argv[1:]
    fx = fixture(*(a[:2] or ["6.1", "max"]), *(int(x) for x in a[2:4]))
    print(fx.dir)
