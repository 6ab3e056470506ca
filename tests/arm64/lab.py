"""pfnscope arm64 VM lab: Debian's arm64 kernels under qemu-system-aarch64 (TCG,
-M virt), the x86 lab's guest programs cross-compiled, the same truth files and
QEMU's dumps.  A family apart from tests/vm: its own sources hash (this
directory plus the tests/vm files it reuses) and its own cache directory
($PFNSCOPE_CACHE/arm64), so building it never touches the x86 fixtures.

    from tests.arm64 import lab as alab
    fx = alab.fixture("6.1", "max", "healthy")   # a tests.vm.lab.Fixture

Command line (mk/arm64.mk):
    /usr/bin/python3 -m tests.arm64.lab build [KERNEL CPU SCENARIO]...  (default: ARM64_SET)
    /usr/bin/python3 -m tests.arm64.lab list
The real kdump (6.1): the guest's 9p "host" share is not the host's root (whose
x86-64 kexec and makedumpfile it cannot run) but an arm64 root made of
trixie's arm64 kexec-tools and makedumpfile (tests/arm64/kernels.sh
kdumproot); tests/vm/init then does what it does on x86-64: kexec -p, a sysrq
crash, makedumpfile -d 31 and -d 23 in the capture kernel.  6.12 has no real
kdump here: makedumpfile 1.7.6 refuses its configuration ("PAGE SIZE 0x1000
and VA Bits 52 not supported"; VMCOREINFO says VA_BITS=52 even on a 48-bit CPU).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tests.vm import lab as xlab

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(xlab.CACHE, "arm64")
LABDIR = os.path.join(CACHE, "lab")
GUEST_SRC = os.path.join(xlab.VMDIR, "guest")
EXTRA_SRC = os.path.join(HERE, "guest", "a64extra.c")
# /bin/truth in the arm64 initramfs: tests/vm/init runs it after the scenarios and
# (buggy) after the module is loaded; a64extra adds the arm64-only mappings
# (contiguous ptes, uffd-wp) to the manifest first, so the real truth program
# records their pages like every other mapping's.
TRUTH_WRAPPER = """#!/bin/busybox sh
/bin/a64extra "$1" || exit 1
exec /bin/truth.vm "$1"
"""
INIT = os.path.join(xlab.VMDIR, "init")

GENERATIONS = ("6.1", "6.12")
# QEMU 7.2 aarch64 CPUs: "max" has FEAT_LPA2 (6.12's 52-bit VA kernel runs with
# 52-bit VAs, 5 levels); "cortex-a57" has no LPA2 (the same kernel falls back to
# 48-bit VAs, 4 levels, with vabits_actual = 48).
CPUS = ("max", "cortex-a57")
# buggy: the lab's pfnscope_buggy module cross-built (tests/arm64/build-module.sh: 6.1 on
# the host, 6.12 in the trixie chroot)
SCENARIOS = ("healthy", "buggy")
DUMP_FORMATS = ("elf-nopaging", "elf-paging", "kdump-zlib", "kdump-zlib-flat")
DUMP_FILES = {
    "elf-nopaging": "elf-nopaging.vmcore",
    "elf-paging": "elf-paging.vmcore",
    "kdump-zlib": "kdump-zlib.vmcore",             # rebuilt by makedumpfile -R
    "kdump-zlib-flat": "kdump-zlib.flat",          # as QEMU writes it (flattened)
}
# kernels whose fixtures also get the real kdump (makedumpfile 1.7.6 reads them)
KDUMP_GENS = ("6.1",)
KDUMP_FILES = {
    "kdump-real": "kdump-real.vmcore",          # makedumpfile -c -d 31 in the capture kernel
    "kdump-real-d23": "kdump-real-d23.vmcore",  # same /proc/vmcore, user pages kept
}
TIMEOUT_KDUMP = 600
ARM64_SET = (
    ("6.1", "max", "healthy"),
    ("6.12", "max", "healthy"),
    ("6.12", "cortex-a57", "healthy"),
    ("6.1", "max", "buggy"),
    ("6.12", "max", "buggy"),
)
GUEST_MEM = "1G"
TIMEOUT_READY = int(os.environ.get("PFNSCOPE_LAB_READY_TIMEOUT", "600"))
TIMEOUT_DUMP = 600
# tests/vm files the arm64 fixtures are built from (by path; they are frozen there)
REUSED = ("init", "guest/Makefile", "guest/common.h", "guest/scenarios.c", "guest/truth.c",
          "guest/buggy.c", "module/Kbuild", "module/Makefile", "module/pfnscope_buggy.c")

LabError = xlab.LabError
_log = xlab._log


def formats(gen):
    """The dump formats of GEN's fixtures."""
    return DUMP_FORMATS + (tuple(KDUMP_FILES) if gen in KDUMP_GENS else ())


def arm64_set():
    """ARM64_SET narrowed by $PFNSCOPE_ARM64_KERNELS ("6.1" or "6.12:cortex-a57:healthy")."""
    sel = os.environ.get("PFNSCOPE_ARM64_KERNELS", "").replace(",", " ").split()
    if not sel:
        return list(ARM64_SET)
    out = []
    for s in sel:
        p = s.split(":")
        if len(p) == 1:
            out += [t for t in ARM64_SET if t[0] == p[0]]
        elif len(p) == 3:
            out.append(tuple(p))
        else:
            raise LabError("PFNSCOPE_ARM64_KERNELS: bad entry %r" % s)
    return out


def source_hash():
    """sha256 over tests/arm64 (not its test_*.py) and the tests/vm files it reuses."""
    h = hashlib.sha256()
    files = []
    for dirpath, dirnames, filenames in os.walk(HERE):
        dirnames[:] = sorted(d for d in dirnames if d not in ("build", "__pycache__")
                             and not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith((".", "test_")) or fn.endswith((".pyc", ".md")) or fn == "conftest.py":
                continue
            files.append(os.path.join(dirpath, fn))
    files += [os.path.join(xlab.VMDIR, f) for f in REUSED]
    for p in files:
        h.update(os.path.relpath(p, ROOT).encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


_kernels = {}


def kernel(gen):
    """The cached arm64 kernel of GEN (tests/arm64/kernels.sh), as a tests.vm.lab.Kernel."""
    if gen not in GENERATIONS:
        raise LabError("unknown arm64 kernel generation %r (one of %s)" % (gen, ", ".join(GENERATIONS)))
    if gen not in _kernels:
        with xlab._flock(os.path.join(CACHE, "kernels-%s.lock" % gen)):
            out = _script("kernel %s" % gen, gen)
        _kernels[gen] = xlab.Kernel(gen, out)
    return _kernels[gen]


def _script(step, what):
    r = subprocess.run(["bash", os.path.join(HERE, "kernels.sh"), what],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise LabError("step '%s': tests/arm64/kernels.sh failed (rc %d):\n%s"
                       % (step, r.returncode, r.stderr[-3000:]))
    for line in r.stdout.splitlines():
        p = line.split()
        if len(p) == 2 and p[0] == what:
            return p[1]
    raise LabError("step '%s': kernels.sh printed no '%s PATH' line" % (step, what))


def busybox():
    with xlab._flock(os.path.join(CACHE, "busybox.lock")):
        return _script("busybox arm64", "busybox")


def guest_programs():
    """The x86 lab's guest programs cross-compiled static for aarch64, built out of tree."""
    d = os.path.join(CACHE, "guest")
    with xlab._flock(os.path.join(CACHE, "guest-build.lock")):
        xlab._run("arm64 guest programs", ["make", "-s", "-C", GUEST_SRC, "BUILD=" + d,
                                           "CC=aarch64-linux-gnu-gcc"])
        # tests/arm64/guest/a64extra.c: the same flags as tests/vm/guest/Makefile
        xlab._run("arm64 a64extra", ["aarch64-linux-gnu-gcc", "-O2", "-static", "-Wall", "-Wextra",
                                     "-Werror", "-D_GNU_SOURCE", "-o", os.path.join(d, "a64extra"),
                                     EXTRA_SRC])
    for p in ("scenarios", "buggy", "truth", "a64extra"):
        if not os.access(os.path.join(d, p), os.X_OK):
            raise LabError("step 'arm64 guest programs': %s/%s missing" % (d, p))
    return d


def buggy_module(k, dest):
    """tests/arm64/build-module.sh for kernel K; copy the .ko to DEST."""
    with tempfile.TemporaryDirectory(prefix="pfnlab-a64mod-") as out:
        with xlab._flock(os.path.join(CACHE, "module-build.lock")):
            r = subprocess.run(["bash", os.path.join(HERE, "build-module.sh"), k.gen, out],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ko = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if r.returncode != 0 or not os.path.exists(ko):
            raise LabError("step 'module': tests/arm64/build-module.sh %s failed (rc %d): %s"
                           % (k.gen, r.returncode, r.stderr.strip()[-2000:]))
        shutil.copy(ko, dest)


def build_initrd(k, dest, scenario="healthy"):
    with tempfile.TemporaryDirectory(prefix="pfnlab-a64-initrd-") as st:
        for d in ("bin", "sbin", "lib/modules", "proc", "sys", "dev", "tmp", "host", "out", "etc"):
            os.makedirs(os.path.join(st, d), exist_ok=True)
        shutil.copy(busybox(), os.path.join(st, "bin/busybox"))
        shutil.copy(INIT, os.path.join(st, "init"))
        os.chmod(os.path.join(st, "init"), 0o755)
        for m in os.listdir(k.modules):
            if m.endswith(".ko"):
                shutil.copy(os.path.join(k.modules, m), os.path.join(st, "lib/modules", m))
        g = guest_programs()
        for p in ("scenarios", "buggy", "a64extra"):
            shutil.copy(os.path.join(g, p), os.path.join(st, "bin", p))
        shutil.copy(os.path.join(g, "truth"), os.path.join(st, "bin", "truth.vm"))
        with open(os.path.join(st, "bin", "truth"), "w") as f:
            f.write(TRUTH_WRAPPER)
        os.chmod(os.path.join(st, "bin", "truth"), 0o755)
        if scenario == "buggy":
            buggy_module(k, os.path.join(st, "lib/modules/pfnscope_buggy.ko"))
        tmp = dest + ".tmp"
        with open(tmp, "wb") as out:
            find = subprocess.Popen(["find", "."], cwd=st, stdout=subprocess.PIPE)
            cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet"], cwd=st,
                                    stdin=find.stdout, stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=out)
            find.stdout.close()
            cpio.stdout.close()
            if gz.wait() or cpio.wait() or find.wait():
                raise LabError("step 'initramfs': cpio/gzip failed")
        os.rename(tmp, dest)


class Guest(xlab.Guest):
    """One qemu-system-aarch64 process (-M virt, TCG single-threaded, under nice)."""

    def __init__(self, k, cpu, initrd, serial, share, append, host_root="/"):
        self.k = k
        self.serial = serial
        self.sockdir = tempfile.mkdtemp(prefix="pfnlab-a64-")
        self.qmp_path = os.path.join(self.sockdir, "qmp.sock")
        # bochs-display: PCI 1234:1111 with a memory BAR (the scenario's sysfs
        # resource0 kind); -device vmcoreinfo: VMCOREINFO in QEMU's dumps
        cmd = ["nice", "-n", "5", "qemu-system-aarch64", "-M", "virt,gic-version=3",
               "-accel", "tcg,thread=single", "-cpu", cpu, "-m", GUEST_MEM, "-smp", "1",
               "-no-reboot", "-display", "none", "-monitor", "none",
               "-device", "bochs-display",
               "-kernel", k.vmlinuz, "-initrd", initrd, "-append", append,
               "-serial", "file:" + serial,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-device", "vmcoreinfo",
               "-virtfs", "local,path=%s,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
               % host_root,
               "-virtfs", "local,path=%s,mount_tag=out,security_model=none,multidevs=remap" % share]
        self.cmd = cmd
        open(serial, "w").close()
        self.qemu_log = serial + ".qemu"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.qemu_log, "w"), stderr=subprocess.STDOUT)
        self.qmp = None


def _append(scenario, kernel="", initrd=""):
    return ("console=ttyAMA0 panic=1 transparent_hugepage=madvise "
            + ("crashkernel=256M pfnlab.kernel=%s pfnlab.initrd=%s " % (kernel, initrd)
               if kernel else "") +
            "pfnlab.mode=dump pfnlab.scenario=%s" % scenario)


def kdumproot():
    with xlab._flock(os.path.join(CACHE, "kdumproot.lock")):
        return _script("arm64 kdump root", "kdumproot")


def fixture_key(k, cpu, scenario):
    return "%s-%s-%s-%s" % (k.release, cpu, scenario, source_hash()[:12])


def fixture(kernel="6.1", cpu="max", scenario="healthy", rebuild=False):
    """The arm64 fixture (a tests.vm.lab.Fixture), built when missing."""
    if cpu not in CPUS:
        raise LabError("unknown arm64 cpu %r (one of %s)" % (cpu, ", ".join(CPUS)))
    if scenario not in SCENARIOS:
        raise LabError("unknown arm64 scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))
    k = globals()["kernel"](kernel)
    key = fixture_key(k, cpu, scenario)
    d = os.path.join(LABDIR, key)
    with xlab._flock(os.path.join(LABDIR, ".%s-%s-%s.lock" % (k.release, cpu, scenario))):
        if rebuild or not os.path.exists(os.path.join(d, "complete")):
            _remove_stale(k, cpu, scenario, keep=None)
            t0 = time.time()
            _log("building arm64 fixture %s" % key)
            _build(k, kernel, cpu, scenario, d)
            _log("arm64 fixture %s built in %.0fs" % (key, time.time() - t0))
        else:
            _remove_stale(k, cpu, scenario, keep=key)
    return xlab.Fixture(d)


def _remove_stale(k, cpu, scenario, keep):
    if not os.path.isdir(LABDIR):
        return
    prefix = "%s-%s-%s-" % (k.release, cpu, scenario)
    for fn in os.listdir(LABDIR):
        if fn.startswith(prefix) and fn != keep and len(fn) == len(prefix) + 12:
            _log("removing stale arm64 fixture %s" % fn)
            shutil.rmtree(os.path.join(LABDIR, fn), ignore_errors=True)


def _build(k, gen, cpu, scenario, d):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    p = lambda n: os.path.join(d, n)
    initrd = p("initrd.cpio.gz")
    build_initrd(k, initrd, scenario)
    serial = p("serial.log")
    kdump = gen in KDUMP_GENS
    if kdump:
        # the capture kernel and initramfs as the guest's kexec sees them:
        # under the kdump root, which is its /host
        root = kdumproot()
        sub = os.path.join("lab", os.path.basename(d))
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        shutil.copy(k.vmlinuz, os.path.join(root, sub, "vmlinuz"))
        shutil.copy(initrd, os.path.join(root, sub, "initrd.cpio.gz"))
        guest = Guest(k, cpu, initrd, serial, d,
                      _append(scenario, "/%s/vmlinuz" % sub, "/%s/initrd.cpio.gz" % sub),
                      host_root=root)
    else:
        guest = Guest(k, cpu, initrd, serial, d, _append(scenario))
    try:
        t0 = time.time()
        guest.wait_marker("boot+scenarios (READY)", "PFNLAB-READY", TIMEOUT_READY)
        _log("%s: READY after %.0fs" % (os.path.basename(d), time.time() - t0))
        for f in ("manifest.jsonl", "magic.json"):
            if not os.path.exists(p(f)):
                guest._fail("truth", "the guest wrote no %s" % f)
        qmp = guest.connect_qmp()
        for name, paging, fmt, out in (("elf-nopaging", False, "elf", p("elf-nopaging.vmcore")),
                                       ("elf-paging", True, "elf", p("elf-paging.vmcore")),
                                       ("kdump-zlib", False, "kdump-zlib", p("kdump-zlib.flat"))):
            t1 = time.time()
            try:
                qmp.cmd("dump-guest-memory", timeout=TIMEOUT_DUMP, paging=paging,
                        protocol="file:" + out + ".tmp", format=fmt)
            except (LabError, OSError) as e:
                guest._fail("dump %s" % name, str(e))
            subprocess.run(["fallocate", "--dig-holes", out + ".tmp"], stderr=subprocess.DEVNULL)
            os.chmod(out + ".tmp", 0o644)
            os.rename(out + ".tmp", out)
            _log("%s: dump %s in %.0fs" % (os.path.basename(d), name, time.time() - t1))
        if kdump:
            # go: kexec -p, sysrq crash, makedumpfile in the capture kernel (whose
            # console is the init's console=ttyS0: silent here, so wait for QEMU
            # to power off and for the files)
            t1 = time.time()
            open(p("go"), "w").close()
            guest.wait_marker("real kdump", "PFNLAB-KDUMP-DONE", TIMEOUT_KDUMP, exit_ok=True)
            guest.wait_exit("real kdump (poweroff)", 60)
            for fn in KDUMP_FILES.values():
                if not os.path.exists(p(fn)):
                    log = ""
                    if os.path.exists(p("makedumpfile.log")):
                        with open(p("makedumpfile.log"), errors="replace") as f:
                            log = f.read()[-1500:]
                    guest._fail("real kdump", "no %s after the capture kernel ran%s"
                                % (fn, "; makedumpfile.log:\n" + log if log else ""))
            os.unlink(p("go"))
            _log("%s: real kdump in %.0fs" % (os.path.basename(d), time.time() - t1))
    finally:
        guest.stop()
        if kdump:
            shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    with open(p("kdump-zlib.flat"), "rb") as fi:
        r = subprocess.run(["makedumpfile", "-R", p("kdump-zlib.vmcore.tmp")], stdin=fi,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise LabError("step 'makedumpfile -R': rc %d: %s" % (r.returncode, r.stdout[-2000:]))
    os.rename(p("kdump-zlib.vmcore.tmp"), p("kdump-zlib.vmcore"))
    files = dict(DUMP_FILES, **(KDUMP_FILES if kdump else {}))
    for name, fn in files.items():
        if not os.path.getsize(p(fn)) > 0:
            raise LabError("step 'dump %s': %s is empty (serial log %s)" % (name, p(fn), serial))
    fx = {
        "kernel": gen, "release": k.release, "cpu": cpu, "scenario": scenario, "arch": "arm64",
        # the guest init's la57 probe does not apply: the levels come from the
        # dump (VMCOREINFO TCR_EL1_T1SZ) in the tests
        "levels": None,
        "vmlinux": k.vmlinux, "vmlinuz": k.vmlinuz, "kernel_dir": k.dir,
        "dumps": {n: p(fn) for n, fn in files.items()},
        "source_hash": source_hash(),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(p("fixture.json"), "w") as f:
        json.dump(fx, f, indent=1)
    with open(p("complete"), "w") as f:
        f.write("ok\n")


def build_many(items):
    errors = []
    for i in items:  # one guest at a time
        try:
            fx = fixture(*i)
            _log("ok %s %s %s -> %s" % (i + (fx.dir,)))
        except Exception as e:
            errors.append((i, e))
            _log("FAILED %s %s %s: %s" % (i + (e,)))
    return errors


def main(argv):
    if not argv or argv[0] not in ("build", "list", "hash"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "hash":
        print(source_hash())
        return 0
    args = argv[1:]
    if args:
        if len(args) % 3:
            print("arm64 lab: build takes KERNEL CPU SCENARIO triples", file=sys.stderr)
            return 2
        items = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)]
    else:
        items = arm64_set()
    if argv[0] == "list":
        for i in items:
            print(" ".join(i), os.path.join(LABDIR, fixture_key(kernel(i[0]), i[1], i[2])))
        return 0
    errors = build_many(items)
    for i, e in errors:
        print("arm64 lab: fixture %s %s %s failed: %s" % (i + (e,)), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
