"""The benchmark guest: a 2 GiB lab VM holding one populated 1 GiB anon VMA, one
large pfnmap and ~200 small processes, dumped as QEMU ELF (paging=true) and as a
real kdump (makedumpfile -c -d 31 in the kdump capture kernel).

Reuses the VM lab (tests/vm/lab.py: kernels, QEMU Guest, QMP) with the bench's own
init (tests/bench/init) and guest program (tests/bench/guest/benchguest.c), so the
lab's fixtures and source hash are untouched.  Cached under
$PFNSCOPE_CACHE/bench/<release>-<cpu>-<args>-<hash12>; rebuilt only without its
`complete` stamp (or when the bench guest sources change).

    from tests.bench import benchlab
    fx = benchlab.fixture("6.1", "max")        # ~2-4 min the first time
    fx.dumps["elf-paging"], fx.dumps["kdump-real"], fx.vmlinux, fx.info["anon"] ...
"""
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BENCHDIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(BENCHDIR))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.vm import lab  # noqa: E402

CACHE = os.path.join(lab.CACHE, "bench")
BUILD = os.path.join(ROOT, "build", "bench")
GUEST_SRC = os.path.join(BENCHDIR, "guest", "benchguest.c")
INIT = os.path.join(BENCHDIR, "init")
GUEST_MEM = "2G"
DUMPS = {"elf-paging": "elf-paging.vmcore", "kdump-real": "kdump-real.vmcore"}
# bump when _build changes what a fixture holds
FIXTURE_VERSION = 1
TIMEOUT_READY = 1200
TIMEOUT_DUMP = 900
TIMEOUT_KDUMP = 900


def _log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def source_hash(sources=(GUEST_SRC, INIT), mem=GUEST_MEM, version=FIXTURE_VERSION):
    """The fixture key of a guest family: its guest program and init, the
    guest's memory and the family's FIXTURE_VERSION."""
    h = hashlib.sha256()
    for p in sources:
        with open(p, "rb") as f:
            h.update(os.path.basename(p).encode() + b"\0" + f.read() + b"\0")
    h.update(("%s %s" % (mem, version)).encode())
    return h.hexdigest()


def guest_program(src=GUEST_SRC, build=BUILD, what="bench guest"):
    """The static guest program built from src into build/ (once per change)."""
    os.makedirs(build, exist_ok=True)
    out = os.path.join(build, os.path.splitext(os.path.basename(src))[0])
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        lab._run(what, ["gcc", "-O2", "-static", "-Wall", "-Wextra", "-Werror",
                        "-o", out + ".tmp", src])
        os.rename(out + ".tmp", out)
    return out


def build_initrd(k, dest, prog=None):
    """busybox-static + the kernel's lab modules (9p, virtio) + benchguest (or
    another guest program with its arguments: prog) + init."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    prog = prog or guest_program()
    with tempfile.TemporaryDirectory(prefix="pfnbench-initrd-") as st:
        for d in ("bin", "sbin", "lib/modules", "proc", "sys", "dev", "tmp", "host", "out", "etc"):
            os.makedirs(os.path.join(st, d), exist_ok=True)
        shutil.copy(busybox, os.path.join(st, "bin/busybox"))
        shutil.copy(INIT, os.path.join(st, "init"))
        os.chmod(os.path.join(st, "init"), 0o755)
        shutil.copy(prog, os.path.join(st, "bin/benchguest"))
        for m in os.listdir(k.modules):
            if m.endswith(".ko") and m not in lab.VFIO_MODULES:   # only the VFIO fixtures load vfio
                shutil.copy(os.path.join(k.modules, m), os.path.join(st, "lib/modules", m))
        with open(dest + ".tmp", "wb") as out:
            find = subprocess.Popen(["find", "."], cwd=st, stdout=subprocess.PIPE)
            cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet"], cwd=st,
                                    stdin=find.stdout, stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=out)
            find.stdout.close()
            cpio.stdout.close()
            if gz.wait() or cpio.wait() or find.wait():
                raise lab.LabError("step 'bench initramfs': cpio/gzip failed")
        os.rename(dest + ".tmp", dest)


class Fixture:
    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "fixture.json")) as f:
            self.meta = json.load(f)
        with open(os.path.join(d, "bench.json")) as f:
            self.info = json.load(f)
        self.release = self.meta["release"]
        self.vmlinux = self.meta["vmlinux"]
        self.kernel_dir = self.meta["kernel_dir"]
        self.levels = self.meta["levels"]
        self.dumps = dict(self.meta["dumps"])

    def __repr__(self):
        return "<benchlab.Fixture %s>" % self.dir


@contextlib.contextmanager
def _guest_mem(size):
    """lab.Guest reads lab.GUEST_MEM when it starts QEMU: 2 GiB for the bench."""
    old = lab.GUEST_MEM
    lab.GUEST_MEM = size
    try:
        yield
    finally:
        lab.GUEST_MEM = old


def fixture(kernel="6.1", cpu="max", nsmall=200, anon_mib=1024, pfnmap_mib=256, rebuild=False):
    """The bench fixture (built when missing).  One QEMU guest at a time."""
    args = "%d:%d:%d" % (nsmall, anon_mib, pfnmap_mib)
    return cached_fixture(CACHE, kernel, cpu, args, source_hash(), rebuild,
                          "bench fixture", "2 GiB guest under TCG: a few minutes")


def cached_fixture(cache, kernel, cpu, args, src_hash, rebuild, what, how_long,
                   mem=GUEST_MEM, prog=None):
    """The fixture of a guest family under cache/<release>-<cpu>-<args>-<hash12>,
    built (_build) when it has no `complete` stamp; older builds of the same
    release, cpu and args are removed."""
    k = lab.kernel(kernel)
    tag = "%s-%s-%s" % (k.release, cpu, args.replace(":", "_"))
    key = "%s-%s" % (tag, src_hash[:12])
    d = os.path.join(cache, key)
    os.makedirs(cache, exist_ok=True)
    with lab._flock(os.path.join(cache, ".build.lock")):
        if rebuild or not os.path.exists(os.path.join(d, "complete")):
            for fn in os.listdir(cache):
                if fn.startswith(tag + "-") and fn != key:
                    _log("removing stale %s %s" % (what, fn))
                    shutil.rmtree(os.path.join(cache, fn), ignore_errors=True)
            shutil.rmtree(d, ignore_errors=True)
            t0 = time.time()
            _log("building %s %s (%s)" % (what, key, how_long))
            _build(k, kernel, cpu, args, d, mem=mem, prog=prog)
            _log("%s %s built in %.0fs" % (what, key, time.time() - t0))
    return Fixture(d)


def _build(k, gen, cpu, args, d, mem=GUEST_MEM, prog=None):
    os.makedirs(d)
    p = lambda n: os.path.join(d, n)
    initrd = p("initrd.cpio.gz")
    build_initrd(k, initrd, prog)
    append = ("console=ttyS0 crashkernel=256M panic=1 transparent_hugepage=madvise "
              "pfnbench.kernel=%s pfnbench.initrd=%s pfnbench.args=%s pfnbench.dumplevel=31"
              % (k.vmlinuz, initrd, args))
    with _guest_mem(mem):
        guest = lab.Guest(k, cpu, initrd, p("serial.log"), d, append)
    try:
        t0 = time.time()
        guest.wait_marker("bench boot + benchguest (READY)", "PFNLAB-READY", TIMEOUT_READY)
        _log("READY after %.0fs" % (time.time() - t0))
        if not os.path.exists(p("bench.json")):
            guest._fail("bench.json", "the guest wrote no bench.json")
        qmp = guest.connect_qmp()
        t1 = time.time()
        out = p("elf-paging.vmcore")
        try:
            qmp.cmd("dump-guest-memory", timeout=TIMEOUT_DUMP, paging=True,
                    protocol="file:" + out + ".tmp", format="elf")
        except (lab.LabError, OSError) as e:
            guest._fail("dump elf-paging", str(e))
        subprocess.run(["fallocate", "--dig-holes", out + ".tmp"], stderr=subprocess.DEVNULL)
        os.chmod(out + ".tmp", 0o644)
        os.rename(out + ".tmp", out)
        _log("dump elf-paging in %.0fs" % (time.time() - t1))
        t1 = time.time()
        open(p("go"), "w").close()
        guest.wait_marker("real kdump", "PFNLAB-KDUMP-DONE", TIMEOUT_KDUMP)
        guest.wait_exit("real kdump (poweroff)", 120)
        _log("real kdump in %.0fs" % (time.time() - t1))
    finally:
        guest.stop()
    os.unlink(p("go"))
    for name, fn in DUMPS.items():
        if not os.path.exists(p(fn)) or not os.path.getsize(p(fn)):
            raise lab.LabError("step 'bench dump %s': %s missing or empty" % (name, p(fn)))
    levels = int(lab._json(p("guest-info.json")).get("levels", 4))
    meta = {"kernel": gen, "release": k.release, "cpu": cpu, "args": args, "mem": mem,
            "vmlinux": k.vmlinux, "kernel_dir": k.dir, "levels": levels,
            "dumps": {n: p(fn) for n, fn in DUMPS.items()}, "source_hash": source_hash(),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(p("fixture.json"), "w") as f:
        json.dump(meta, f, indent=1)
    with open(p("complete"), "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    a = sys.argv[1:]
    fx = fixture(*(a[:2] or ["6.1", "max"]), *(int(x) for x in a[2:5]))
    print(fx.dir)
