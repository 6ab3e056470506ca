"""pfnscope VM lab: boot Debian's kernels under QEMU, build every mapping kind,
record the kernel's own truth and dump the guest in every format.

    from tests.vm import lab
    fx = lab.fixture(kernel="6.1", cpu="max", scenario="healthy")
    fx.dumps["kdump-real"], fx.vmlinux, fx.manifest, fx.magic ...

    live = lab.live(kernel="6.1", cpu="max", scenario="healthy")
    live.ram_file, live.gdb, live.qmp ...; live.stop()

Command line (used by mk/lab.mk):
    /usr/bin/python3 -m tests.vm.lab build [KERNEL CPU SCENARIO]...   (default: the check set)
    /usr/bin/python3 -m tests.vm.lab list
    /usr/bin/python3 -m tests.vm.lab build vfio                      (the VFIO family)
Fixtures live in $PFNSCOPE_CACHE/lab/<release>-<cpu>-<scenario>-<hash12>; a fixture is
rebuilt only when that directory has no `complete` stamp.
"""
import concurrent.futures
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

VMDIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(VMDIR))
CACHE = os.environ.get("PFNSCOPE_CACHE") or os.path.expanduser("~/.cache/pfnscope")
LABDIR = os.path.join(CACHE, "lab")

GENERATIONS = ("5.10", "6.1", "6.12", "7")
CPUS = ("max", "qemu64")
SCENARIOS = ("healthy", "buggy", "busy", "vfio")
DUMP_FORMATS = ("elf-nopaging", "elf-paging", "kdump-zlib", "kdump-real", "kdump-real-d23")
DUMP_FILES = {
    "elf-nopaging": "elf-nopaging.vmcore",
    "elf-paging": "elf-paging.vmcore",
    "kdump-zlib": "kdump-zlib.vmcore",
    "kdump-real": "kdump-real.vmcore",          # makedumpfile -c -d 31 in the capture kernel
    "kdump-real-d23": "kdump-real-d23.vmcore",  # same /proc/vmcore, user pages kept
}
# Formats whose user pages are filtered out (the magic page reads as excluded).
USER_FILTERED = ("kdump-real",)
# The set `make check-lab` builds: (kernel, cpu, scenario).
DEFAULT_SET = (
    ("6.1", "max", "healthy"),
    ("6.1", "qemu64", "healthy"),
    ("6.12", "max", "healthy"),
    ("7", "max", "healthy"),
    ("5.10", "max", "healthy"),
    ("6.1", "max", "buggy"),
    ("6.12", "max", "buggy"),
    ("7", "max", "buggy"),
)
# The busy scenario (tests/vm/busy): stress-ng, Python, a C compile and the
# large-folio states, frozen and recorded page by page.  Its sources are
# hashed apart (FAMILY_DIRS) so that editing them never rebuilds the others.
BUSY_SET = (
    ("6.1", "max", "busy"),
    ("6.1", "qemu64", "busy"),
    ("6.12", "max", "busy"),
    ("7", "max", "busy"),
    ("5.10", "max", "busy"),
)
BUSY_DIR = os.path.join(VMDIR, "busy")
# The VFIO family (tests/vm/vfio/): q35 + emulated VT-d, ivshmem-plain devices bound to
# vfio-pci, their BAR 2 mmapped through the VFIO device fd.  Built by `make check-lab-vfio`
# (not part of DEFAULT_SET); its sources hash apart so the base fixtures stay valid.
VFIO_SET = (
    ("6.1", "max", "vfio"),
    ("6.12", "max", "vfio"),
    ("7", "max", "vfio"),
)
# Subdirectories of tests/vm with their own fixture family: left out of the base
# fixtures' source hash, added to their family's.
FAMILY_DIRS = {"busy": "busy", "vfio": "vfio"}
# ivshmem-plain BAR 2 sizes (memory-backend-ram, allocated by the host only where the
# guest writes): 64 MiB (2 MiB PMD leaves where the kernel makes them) and 1 GiB
# (1 GiB PUD leaves), both naturally aligned by the firmware.
VFIO_BARS = ("64M", "1G")
# modules only the VFIO family loads (kernels.sh MODULES carries them for every kernel)
VFIO_MODULES = ("vfio.ko", "vfio_iommu_type1.ko", "vfio_virqfd.ko", "vfio-pci-core.ko",
                "vfio-pci.ko", "irqbypass.ko")
GUEST_MEM = "1G"
# makedumpfile -d for the real kdump: 31 as Debian's kdump-tools (drops zero, cache,
# user and free pages; page tables and the memmap stay).  The capture kernel also
# writes a -d 23 dump (user pages kept) so the magic anon page proves that the real
# kdump path holds the guest's memory.
KDUMP_LEVEL = int(os.environ.get("PFNSCOPE_LAB_KDUMP_LEVEL", "31"))
TIMEOUT_READY = int(os.environ.get("PFNSCOPE_LAB_READY_TIMEOUT", "420"))
TIMEOUT_DUMP = 600
TIMEOUT_KDUMP = 300


class LabError(RuntimeError):
    """A lab step failed; the message names the step (and the serial log)."""


def _log(msg):
    print("lab: " + msg, file=sys.stderr, flush=True)


def _narrow(full, busy):
    sel = os.environ.get("PFNSCOPE_LAB_KERNELS", "").replace(",", " ").split()
    if not sel:
        return list(full)
    out = []
    for s in sel:
        parts = s.split(":")
        if len(parts) == 1:
            out += [t for t in full if t[0] == parts[0]]
        elif len(parts) == 3:
            if (parts[2] == "busy") == busy:
                out.append(tuple(parts))
        else:
            raise LabError("PFNSCOPE_LAB_KERNELS: bad entry %r (GEN or GEN:CPU:SCENARIO)" % s)
    return out


def default_set():
    """DEFAULT_SET narrowed by $PFNSCOPE_LAB_KERNELS (e.g. "6.1" or "6.1,7" or
    "6.1:max:healthy,7:max:healthy")."""
    return _narrow(DEFAULT_SET, False)


def busy_set():
    """BUSY_SET narrowed by $PFNSCOPE_LAB_KERNELS ("6.1" or "6.1:qemu64:busy")."""
    return _narrow(BUSY_SET, True)


# ---------------------------------------------------------------- kernels

class Kernel:
    def __init__(self, gen, kdir):
        self.gen = gen
        self.dir = kdir
        with open(os.path.join(kdir, "release")) as f:
            self.release = f.read().strip()
        self.vmlinuz = os.path.join(kdir, "vmlinuz")
        self.vmlinux = os.path.join(kdir, "vmlinux")
        self.modules = os.path.join(kdir, "modules")
        b = os.path.join(kdir, "build")
        # resolved: kbuild and the module Makefile compute paths relative to it
        self.build = os.path.realpath(b) if os.path.isdir(b) else None


_kernels = {}


def kernel(gen):
    """Fetch (or reuse) the cached kernel of generation GEN (5.10, 6.1, 6.12, 7)."""
    if gen not in GENERATIONS:
        raise LabError("unknown kernel generation %r (one of %s)" % (gen, ", ".join(GENERATIONS)))
    if gen in _kernels:
        return _kernels[gen]
    with _flock(os.path.join(CACHE, "kernels-%s.lock" % gen)):
        r = subprocess.run(["bash", os.path.join(VMDIR, "kernels.sh"), gen],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise LabError("step 'kernel %s': kernels.sh failed (rc %d):\n%s"
                       % (gen, r.returncode, r.stderr[-3000:]))
    for line in r.stdout.splitlines():
        p = line.split()
        if len(p) == 2 and p[0] == gen:
            _kernels[gen] = Kernel(gen, p[1])
            return _kernels[gen]
    raise LabError("step 'kernel %s': kernels.sh printed no '%s DIR' line:\n%s" % (gen, gen, r.stdout))


# ---------------------------------------------------------------- sources

_HASH_SKIP_DIRS = {"build", "__pycache__", ".pytest_cache"}
_HASH_SKIP_EXT = (".o", ".ko", ".mod", ".mod.c", ".cmd", ".pyc", ".a", ".so", ".symvers",
                  ".order", ".swp")


def source_hash(family=None):
    """sha256 over the lab sources (tests/vm/**), not the tests' own .py test files
    nor build products.  The directories of FAMILY_DIRS count only for their own
    family (source_hash("vfio") = base sources + tests/vm/vfio)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(VMDIR):
        dirnames[:] = sorted(d for d in dirnames if d not in _HASH_SKIP_DIRS and not d.startswith(".")
                             and not (dirpath == VMDIR and d in FAMILY_DIRS.values()
                                      and d != FAMILY_DIRS.get(family)))
        for fn in sorted(filenames):
            if fn.startswith(".") or fn.endswith(_HASH_SKIP_EXT):
                continue
            if fn.startswith("test_") and fn.endswith(".py") or fn in ("conftest.py", "dumpread.py"):
                continue
            if fn in ("Module.symvers", "modules.order") or fn.endswith(".md"):
                continue
            p = os.path.join(dirpath, fn)
            h.update(os.path.relpath(p, VMDIR).encode() + b"\0")
            with open(p, "rb") as f:
                h.update(f.read())
            h.update(b"\0")
    return h.hexdigest()


def busy_hash():
    """The busy fixtures' hash: the base lab sources plus tests/vm/busy."""
    return source_hash("busy")


def scenario_hash(scenario):
    return source_hash(_family(scenario))


def busy_programs():
    """Directory with the static busy programs states, record."""
    with _flock(os.path.join(CACHE, "busy-build.lock")):
        _run("busy programs", ["make", "-s", "-C", BUSY_DIR])
    d = os.path.join(BUSY_DIR, "build")
    for p in ("states", "record"):
        if not os.access(os.path.join(d, p), os.X_OK):
            raise LabError("step 'busy programs': %s/%s missing" % (d, p))
    return d


class _flock:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _run(step, cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise LabError("step '%s': %s failed (rc %d):\n%s"
                       % (step, " ".join(cmd), r.returncode, r.stdout[-4000:]))
    return r.stdout


def guest_programs():
    """Directory with the static guest programs scenarios, buggy, truth."""
    d = os.environ.get("PFNSCOPE_LAB_GUESTDIR")
    if not d:
        gdir = os.path.join(VMDIR, "guest")
        if not os.path.exists(os.path.join(gdir, "Makefile")):
            raise LabError("step 'guest programs': no %s/Makefile" % gdir)
        with _flock(os.path.join(CACHE, "guest-build.lock")):
            _run("guest programs", ["make", "-s", "-C", gdir])
        d = os.path.join(gdir, "build")
    for p in ("scenarios", "buggy", "truth"):
        if not os.access(os.path.join(d, p), os.X_OK):
            raise LabError("step 'guest programs': %s/%s missing" % (d, p))
    return d


def vfio_programs():
    """Directory with the VFIO family's static guest program vfioguest."""
    vdir = os.path.join(VMDIR, "vfio")
    with _flock(os.path.join(CACHE, "guest-build.lock")):
        _run("vfio guest program", ["make", "-s", "-C", vdir])
    d = os.path.join(vdir, "build")
    if not os.access(os.path.join(d, "vfioguest"), os.X_OK):
        raise LabError("step 'vfio guest program': %s/vfioguest missing" % d)
    return d


def buggy_module(k, dest):
    """Build tests/vm/module for kernel K (tests/vm/build-module.sh: host gcc for 6.1,
    a release chroot for 6.12/7.x); copy the .ko to DEST."""
    script = os.path.join(VMDIR, "build-module.sh")
    if os.path.exists(script):
        with tempfile.TemporaryDirectory(prefix="pfnlab-mod-") as out:
            r = subprocess.run(["bash", script, k.gen, out], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            ko = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
            if r.returncode != 0 or not os.path.exists(ko):
                raise LabError("step 'module': build-module.sh %s failed (rc %d): %s"
                               % (k.gen, r.returncode, r.stderr.strip()[-2000:]))
            shutil.copy(ko, dest)
        return
    mdir = os.path.join(VMDIR, "module")
    if not k.build:
        raise LabError("step 'module': kernel %s has no headers build dir" % k.release)
    with _flock(os.path.join(CACHE, "module-build.lock")):
        _run("module", ["make", "-s", "-C", mdir, "clean", "KDIR=" + k.build])
        _run("module", ["make", "-s", "-C", mdir, "KDIR=" + k.build])
        ko = os.path.join(mdir, "pfnscope_buggy.ko")
        if not os.path.exists(ko):
            raise LabError("step 'module': %s not built" % ko)
        shutil.copy(ko, dest)


def module_available(gen):
    """True when the buggy module builds for GEN (cheap once cached)."""
    try:
        with tempfile.TemporaryDirectory(prefix="pfnlab-mod-") as out:
            buggy_module(kernel(gen), os.path.join(out, "m.ko"))
        return True
    except LabError:
        return False


def build_initrd(k, scenario, dest):
    """initramfs: busybox-static + modules + guest programs + init."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory(prefix="pfnlab-initrd-") as st:
        for d in ("bin", "sbin", "lib/modules", "proc", "sys", "dev", "tmp", "host", "out", "etc"):
            os.makedirs(os.path.join(st, d), exist_ok=True)
        shutil.copy(busybox, os.path.join(st, "bin/busybox"))
        shutil.copy(os.path.join(VMDIR, "init"), os.path.join(st, "init"))
        os.chmod(os.path.join(st, "init"), 0o755)
        for m in os.listdir(k.modules):
            if m.endswith(".ko") and (scenario == "vfio" or m not in VFIO_MODULES):
                shutil.copy(os.path.join(k.modules, m), os.path.join(st, "lib/modules", m))
        if scenario == "busy":
            b = busy_programs()
            os.makedirs(os.path.join(st, "lib/busy"))
            for p in ("states", "record"):
                shutil.copy(os.path.join(b, p), os.path.join(st, "lib/busy", p))
            for p in ("busy.sh", "states.c"):
                shutil.copy(os.path.join(BUSY_DIR, p), os.path.join(st, "lib/busy", p))
        elif scenario == "vfio":
            missing = [m for m in ("vfio.ko", "vfio-pci.ko", "vfio_iommu_type1.ko")
                       if not os.path.exists(os.path.join(k.modules, m))]
            if missing:
                raise LabError("step 'initramfs': kernel %s lacks %s (kernels.sh MODULES)"
                               % (k.release, ", ".join(missing)))
            shutil.copy(os.path.join(vfio_programs(), "vfioguest"), os.path.join(st, "bin/vfioguest"))
            shutil.copy(os.path.join(VMDIR, "vfio", "setup.sh"), os.path.join(st, "bin/vfio-setup"))
        if scenario != "none" and scenario != "busy":
            g = guest_programs()
            for p in ("scenarios", "buggy", "truth"):
                shutil.copy(os.path.join(g, p), os.path.join(st, "bin", p))
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


# ---------------------------------------------------------------- QEMU

class QMP:
    def __init__(self, path, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise LabError("step 'qmp connect': no QMP socket at %s" % path)
                time.sleep(0.1)
        self.f = self.s.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise LabError("step 'qmp': QEMU closed the QMP socket")
        return json.loads(line)

    def cmd(self, name, timeout=60, **args):
        self.s.settimeout(timeout)
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            r = self._read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise LabError("step 'qmp %s': %s" % (name, r["error"].get("desc", r["error"])))

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


class Guest:
    """One QEMU process."""

    def __init__(self, k, cpu, initrd, serial, share, append, ram_file=None, gdb=None,
                 scenario=None):
        self.k = k
        self.serial = serial
        self.sockdir = tempfile.mkdtemp(prefix="pfnlab-")
        self.qmp_path = os.path.join(self.sockdir, "qmp.sock")
        cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-cpu", cpu,
               "-m", GUEST_MEM, "-smp", "1"] + _machine_args(scenario) + [
               "-no-reboot", "-display", "none",
               "-monitor", "none", "-vga", "std",
               "-kernel", k.vmlinuz, "-initrd", initrd, "-append", append,
               "-serial", "file:" + serial,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-device", "vmcoreinfo",
               "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
               "-virtfs", "local,path=%s,mount_tag=out,security_model=none,multidevs=remap" % share]
        if ram_file:
            cmd += ["-object", "memory-backend-file,id=ram,size=%s,mem-path=%s,share=on"
                    % (GUEST_MEM, ram_file), "-machine", "memory-backend=ram"]
        if gdb:
            cmd += ["-gdb", gdb]
        self.cmd = cmd
        open(serial, "w").close()
        self.qemu_log = serial + ".qemu"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.qemu_log, "w"), stderr=subprocess.STDOUT)
        self.qmp = None

    def serial_text(self):
        try:
            with open(self.serial, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _fail(self, step, why):
        tail = "\n".join(self.serial_text().splitlines()[-40:])
        try:
            with open(self.qemu_log) as f:
                q = f.read()[-2000:]
        except OSError:
            q = ""
        raise LabError("step '%s': %s (serial log %s)\n--- serial tail ---\n%s%s"
                       % (step, why, self.serial, tail,
                          ("\n--- qemu ---\n" + q) if q.strip() else ""))

    def wait_marker(self, step, marker, timeout, exit_ok=False):
        deadline = time.time() + timeout
        while True:
            t = self.serial_text()
            if marker in t:
                return
            for line in t.splitlines():
                if "PFNLAB-FAIL" in line:
                    self._fail(step, "guest reported " + line.strip())
            if self.proc.poll() is not None:
                if exit_ok:
                    return
                self._fail(step, "QEMU exited (rc %s) before %s" % (self.proc.returncode, marker))
            if time.time() > deadline:
                self._fail(step, "timeout after %ds waiting for %s" % (timeout, marker))
            time.sleep(0.25)

    def connect_qmp(self):
        if self.qmp is None:
            try:
                self.qmp = QMP(self.qmp_path)
            except LabError as e:
                self._fail("qmp connect", str(e))
        return self.qmp

    def wait_exit(self, step, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._fail(step, "timeout after %ds waiting for QEMU to exit" % timeout)

    def stop(self):
        if self.qmp:
            try:
                self.qmp.cmd("quit", timeout=5)
            except Exception:
                pass
            self.qmp.close()
            self.qmp = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.sockdir, ignore_errors=True)


def _machine_args(scenario):
    """QEMU machine and devices of a scenario: the VFIO family runs on q35 with an
    emulated VT-d (Debian builds without VFIO_NOIOMMU: vfio-pci needs an IOMMU group)
    placed before the other devices, and one ivshmem-plain per VFIO_BARS entry."""
    if scenario != "vfio":
        return []
    a = ["-machine", "q35", "-device", "intel-iommu,intremap=on"]
    for i, size in enumerate(VFIO_BARS):
        a += ["-object", "memory-backend-ram,id=ivshmem%d,size=%s,share=on" % (i, size),
              "-device", "ivshmem-plain,memdev=ivshmem%d" % i]
    return a


def makedumpfile_root(k):
    """Host path of the root whose makedumpfile the capture kernel runs: the host's
    for 5.10 and 6.1 (1.7.2 supports kernels up to 6.1); Debian 12's makedumpfile
    1.7.2 says "The kernel version is not supported" for 6.12+ and, not knowing
    PG_slab became a page type, drops slab pages (task_struct, mm_struct) at -d 31,
    so newer kernels use the sid chroot's makedumpfile (tests/vm/chroot.sh)."""
    if k.gen in ("5.10", "6.1"):
        return "/"
    _run("makedumpfile chroot", ["bash", os.path.join(VMDIR, "chroot.sh"), "sid"])
    # resolved: the guest sees the host root under /host, where a symlinked cache
    # directory would point outside it
    return os.path.realpath(os.path.join(CACHE, "chroots", "sid"))


def _append(k, scenario, mode, initrd):
    return ("console=ttyS0 crashkernel=256M panic=1 transparent_hugepage=madvise "
            # no_timer_check: under TCG on a loaded host the IO-APIC timer test through
            # the emulated interrupt remapping fails at random (check_timer() panics)
            + ("intel_iommu=on no_timer_check " if scenario == "vfio" else "") +
            "pfnlab.mode=%s pfnlab.scenario=%s pfnlab.kernel=%s pfnlab.initrd=%s pfnlab.dumplevel=%d "
            "pfnlab.mkdroot=%s"
            % (mode, scenario, k.vmlinuz, initrd, KDUMP_LEVEL,
               makedumpfile_root(k) if mode == "dump" else "/"))


# ---------------------------------------------------------------- fixtures

class Fixture:
    """A complete fixture directory (truth + dumps)."""

    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "fixture.json")) as f:
            self.info = json.load(f)
        self.release = self.info["release"]
        self.kernel = self.info["kernel"]
        self.cpu = self.info["cpu"]
        self.scenario = self.info["scenario"]
        self.vmlinux = self.info["vmlinux"]
        self.kernel_dir = self.info["kernel_dir"]
        self.levels = self.info["levels"]
        self.dumps = dict(self.info["dumps"])
        self.serial_log = os.path.join(d, "serial.log")
        self.manifest = _jsonl(os.path.join(d, "manifest.jsonl"))
        self.pagemap = _jsonl(os.path.join(d, "pagemap.jsonl"))
        self.magic = _json(os.path.join(d, "magic.json"))
        self.maps = {}
        self.smaps = {}
        mdir = os.path.join(d, "maps")
        if os.path.isdir(mdir):
            for fn in os.listdir(mdir):
                pid, _, ext = fn.partition(".")
                if not pid.isdigit():
                    continue
                with open(os.path.join(mdir, fn), errors="replace") as f:
                    (self.maps if ext == "maps" else self.smaps)[int(pid)] = f.read()

    def __repr__(self):
        return "<lab.Fixture %s>" % self.dir


def _jsonl(p):
    out = []
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def _json(p):
    if not os.path.exists(p):
        return {}
    with open(p) as f:
        return json.load(f)


def fixture_key(k, cpu, scenario):
    return "%s-%s-%s-%s" % (k.release, cpu, scenario, scenario_hash(scenario)[:12])


def _family(scenario):
    return scenario if scenario in FAMILY_DIRS else None


def fixture_dir(kernel_gen="6.1", cpu="max", scenario="healthy"):
    return os.path.join(LABDIR, fixture_key(kernel(kernel_gen), cpu, scenario))


def fixture(kernel="6.1", cpu="max", scenario="healthy", rebuild=False):
    """The fixture for (kernel generation, cpu, scenario), built when missing."""
    gen = kernel
    if cpu not in CPUS:
        raise LabError("unknown cpu %r (one of %s)" % (cpu, ", ".join(CPUS)))
    if scenario not in SCENARIOS:
        raise LabError("unknown scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))
    k = globals()["kernel"](gen)
    key = fixture_key(k, cpu, scenario)
    d = os.path.join(LABDIR, key)
    with _flock(os.path.join(LABDIR, ".%s-%s-%s.lock" % (k.release, cpu, scenario))):
        if rebuild or not os.path.exists(os.path.join(d, "complete")):
            _remove_stale(k, cpu, scenario, keep=None)
            t0 = time.time()
            _log("building fixture %s" % key)
            _build(k, gen, cpu, scenario, d)
            _log("fixture %s built in %.0fs" % (key, time.time() - t0))
        else:
            _remove_stale(k, cpu, scenario, keep=key)
    return Fixture(d)


def _remove_stale(k, cpu, scenario, keep):
    if not os.path.isdir(LABDIR):
        return
    prefix = "%s-%s-%s-" % (k.release, cpu, scenario)
    for fn in os.listdir(LABDIR):
        if fn.startswith(prefix) and fn != keep and len(fn) == len(prefix) + 12:
            _log("removing stale fixture %s" % fn)
            shutil.rmtree(os.path.join(LABDIR, fn), ignore_errors=True)


def _build(k, gen, cpu, scenario, d):
    os.makedirs(d)
    initrd = os.path.join(d, "initrd.cpio.gz")
    build_initrd(k, scenario, initrd)
    serial = os.path.join(d, "serial.log")
    guest = Guest(k, cpu, initrd, serial, d, _append(k, scenario, "dump", initrd),
                  scenario=scenario)
    try:
        t0 = time.time()
        guest.wait_marker("boot+scenarios (READY)", "PFNLAB-READY", TIMEOUT_READY)
        _log("%s: READY after %.0fs" % (os.path.basename(d), time.time() - t0))
        for f in (("manifest.jsonl", "pagemap.jsonl") if scenario == "busy"
                  else ("manifest.jsonl", "magic.json")):
            if not os.path.exists(os.path.join(d, f)):
                guest._fail("truth", "the guest wrote no %s" % f)
        qmp = guest.connect_qmp()
        p = lambda n: os.path.join(d, n)
        for name, paging, fmt, out in (("elf-nopaging", False, "elf", p("elf-nopaging.vmcore")),
                                       ("elf-paging", True, "elf", p("elf-paging.vmcore")),
                                       ("kdump-zlib", False, "kdump-zlib", p("kdump-zlib.flat"))):
            t1 = time.time()
            try:
                qmp.cmd("dump-guest-memory", timeout=TIMEOUT_DUMP, paging=paging,
                        protocol="file:" + out + ".tmp", format=fmt)
            except (LabError, OSError) as e:
                guest._fail("dump %s" % name, str(e))
            # guest RAM is mostly zero: punch holes so an ELF dump takes ~its data on disk
            subprocess.run(["fallocate", "--dig-holes", out + ".tmp"], stderr=subprocess.DEVNULL)
            os.chmod(out + ".tmp", 0o644)
            os.rename(out + ".tmp", out)
            _log("%s: dump %s in %.0fs" % (os.path.basename(d), name, time.time() - t1))
        if os.path.exists(p("kdump-zlib.vmcore.tmp")):
            os.unlink(p("kdump-zlib.vmcore.tmp"))
        with open(p("kdump-zlib.flat"), "rb") as fi:
            r = subprocess.run(["makedumpfile", "-R", p("kdump-zlib.vmcore.tmp")], stdin=fi,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise LabError("step 'makedumpfile -R': rc %d: %s (serial log %s)"
                           % (r.returncode, r.stdout[-2000:], serial))
        os.rename(p("kdump-zlib.vmcore.tmp"), p("kdump-zlib.vmcore"))
        # go: the guest kexec-loads the capture kernel and crashes itself
        t1 = time.time()
        open(p("go"), "w").close()
        guest.wait_marker("real kdump", "PFNLAB-KDUMP-DONE", TIMEOUT_KDUMP)
        guest.wait_exit("real kdump (poweroff)", 60)
        _log("%s: real kdump in %.0fs" % (os.path.basename(d), time.time() - t1))
    finally:
        guest.stop()
    for name, fn in DUMP_FILES.items():
        if not os.path.getsize(p(fn)) > 0:
            raise LabError("step 'dump %s': %s is empty (serial log %s)" % (name, p(fn), serial))
    levels = 4
    info = _json(p("guest-info.json"))
    if info.get("levels"):
        levels = int(info["levels"])
    os.unlink(p("go"))
    fx = {
        "kernel": gen, "release": k.release, "cpu": cpu, "scenario": scenario,
        "vmlinux": k.vmlinux, "vmlinuz": k.vmlinuz, "kernel_dir": k.dir, "levels": levels,
        "dumps": {n: p(fn) for n, fn in DUMP_FILES.items()},
        "kdump_zlib_flat": p("kdump-zlib.flat"), "kdump_level": KDUMP_LEVEL,
        "source_hash": scenario_hash(scenario), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(p("fixture.json"), "w") as f:
        json.dump(fx, f, indent=1)
    with open(p("complete"), "w") as f:
        f.write("ok\n")


# ---------------------------------------------------------------- live guests

class Live:
    """A guest left running after READY: its RAM in a shared file, a gdbstub."""

    def __init__(self, guest, d, ram_file, gdb, k, cpu, scenario):
        self.guest = guest
        self.dir = d
        self.ram_file = ram_file
        self.gdb = gdb  # "unix:/path" or "tcp:127.0.0.1:PORT" (as gdb's target remote wants: path / host:port)
        self.gdb_socket = gdb.split(":", 1)[1] if gdb.startswith("unix:") else None
        self.qmp_path = guest.qmp_path
        self.serial_log = guest.serial
        self.release = k.release
        self.vmlinux = k.vmlinux
        self.cpu = cpu
        self.scenario = scenario
        self.manifest = _jsonl(os.path.join(d, "manifest.jsonl"))
        self.magic = _json(os.path.join(d, "magic.json"))
        self.levels = int(_json(os.path.join(d, "guest-info.json")).get("levels", 4))

    @property
    def qmp(self):
        return self.guest.connect_qmp()

    def run(self, script, timeout=300):
        """Run the shell SCRIPT inside the guest, chrooted into the host's root
        (read-only 9p; the guest's /proc, /sys, /dev, a tmpfs /tmp): e.g.
        "pfnscope -k check -s VMLINUX".  Returns (rc, stdout, stderr).  Commands
        run one at a time, in order (the guest init's live loop)."""
        n = getattr(self, "_exec_n", 0)
        self._exec_n = n + 1
        base = os.path.join(self.dir, "exec-%d" % n)
        with open(base + ".sh.tmp", "w") as f:
            f.write(script if script.endswith("\n") else script + "\n")
        os.rename(base + ".sh.tmp", base + ".sh")
        deadline = time.time() + timeout
        while not os.path.exists(base + ".rc"):
            if self.guest.proc.poll() is not None:
                self.guest._fail("exec %d" % n, "QEMU exited (rc %s)" % self.guest.proc.returncode)
            if time.time() > deadline:
                self.guest._fail("exec %d" % n, "timeout after %ds running %r" % (timeout, script))
            time.sleep(0.1)
        out = []
        for ext in (".rc", ".out", ".err"):
            with open(base + ext, errors="replace") as f:
                out.append(f.read())
        return int(out[0].strip() or "255"), out[1], out[2]

    def stop(self):
        self.guest.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def live(kernel="6.1", cpu="max", scenario="healthy"):
    """Start a guest whose RAM is the file live.ram_file (1 GiB, share=on) with a
    gdbstub on a unix socket; returns after READY. Call stop() when done."""
    k = globals()["kernel"](kernel)
    os.makedirs(LABDIR, exist_ok=True)
    d = tempfile.mkdtemp(prefix="live-%s-%s-%s-" % (k.release, cpu, scenario), dir=LABDIR)
    initrd = os.path.join(d, "initrd.cpio.gz")
    build_initrd(k, scenario, initrd)
    ram = os.path.join(d, "guest.ram")
    gdb_sock = os.path.join(d, "gdb.sock")
    if len(gdb_sock) > 100:
        gdb_sock = os.path.join(tempfile.mkdtemp(prefix="pfnlab-gdb-"), "gdb.sock")
    gdb = "unix:%s,server=on,wait=off" % gdb_sock
    guest = Guest(k, cpu, initrd, os.path.join(d, "serial.log"), d,
                  _append(k, scenario, "live", initrd), ram_file=ram, gdb=gdb,
                  scenario=scenario)
    try:
        guest.wait_marker("live boot (READY)", "PFNLAB-READY", TIMEOUT_READY)
    except BaseException:
        guest.stop()
        raise
    return Live(guest, d, ram, "unix:" + gdb_sock, k, cpu, scenario)


# ---------------------------------------------------------------- CLI

def gc():
    """Delete fixture directories built from other lab sources (any key)."""
    if not os.path.isdir(LABDIR):
        return
    keep = {source_hash(f)[:12] for f in (None,) + tuple(FAMILY_DIRS)}
    for fn in os.listdir(LABDIR):
        p = fn.rsplit("-", 1)
        if fn.startswith(("live-", ".")) or len(p) != 2 or len(p[1]) != 12 or p[1] in keep:
            continue
        if not all(c in "0123456789abcdef" for c in p[1]):
            continue
        _log("removing fixture of other lab sources %s" % fn)
        shutil.rmtree(os.path.join(LABDIR, fn), ignore_errors=True)


def build_many(items, jobs=2):
    """Build fixtures for (gen, cpu, scenario) ITEMS, JOBS at a time; kernels first."""
    gc()
    for gen in dict.fromkeys(i[0] for i in items):
        k = kernel(gen)
        _log("kernel %s: %s" % (gen, k.dir))
    errors = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = {ex.submit(fixture, *i): i for i in items}
        for fut in concurrent.futures.as_completed(futs):
            i = futs[fut]
            try:
                fx = fut.result()
                _log("ok %s %s %s -> %s" % (i + (fx.dir,)))
            except Exception as e:  # report all, fail at the end
                errors.append((i, e))
                _log("FAILED %s %s %s: %s" % (i + (e,)))
    return errors


def main(argv):
    if not argv or argv[0] not in ("build", "list", "hash", "live"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "hash":
        print(source_hash(argv[1] if len(argv) > 1 else None))
        return 0
    args = argv[1:]
    if args == ["vfio"]:
        # the VFIO family; PFNSCOPE_LAB_KERNELS="6.1 7" narrows it by generation
        sel = os.environ.get("PFNSCOPE_LAB_KERNELS", "").replace(",", " ").split()
        items = [i for i in VFIO_SET if not sel or i[0] in sel]
    elif args:
        if len(args) % 3:
            print("lab: build takes KERNEL CPU SCENARIO triples", file=sys.stderr)
            return 2
        items = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)]
    else:
        items = default_set() + busy_set()
    if argv[0] == "list":
        for i in items:
            print(" ".join(i), fixture_dir(*i))
        return 0
    if argv[0] == "live":
        lv = live(*items[0])
        print("ram %s gdb %s qmp %s serial %s" % (lv.ram_file, lv.gdb, lv.qmp_path, lv.serial_log))
        try:
            input("press enter to stop\n")
        finally:
            lv.stop()
        return 0
    jobs = int(os.environ.get("PFNSCOPE_LAB_JOBS", "2"))
    errors = build_many(items, jobs)
    for i, e in errors:
        print("lab: fixture %s %s %s failed: %s" % (i + (e,)), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
