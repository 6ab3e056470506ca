"""pfnscope nested-KVM lab: an outer guest under QEMU TCG with emulated AMD SVM +
nested paging runs KVM itself; a small VMM (tests/kvm/vmm.c) creates one VM with
three memslots (anonymous RAM, /dev/mem over the VGA window, /dev/mem over reserved
low RAM; the buggy scenario adds two from the lab's buggy module: special ptes over
refcounted RAM, and special ptes over pages freed to the buddy allocator; then
tests/kvm/module changes two host ptes without MMU notifiers) and a real-mode nested
guest touches them and halts.  The truth is
recorded inside the outer guest (kvm.json: memslots, the anon slot's pagemap, the
/dev/mem offsets, what the nested guest read), then the outer guest is dumped.

    from tests.kvm import kvmlab
    fx = kvmlab.fixture("6.1", "epyc", "healthy")
    fx.dumps["elf-paging"], fx.vmlinux, fx.kvm_debug (kvm.ko, kvm-amd.ko), fx.truth

Command line (mk/kvm.mk):
    /usr/bin/python3 -m tests.kvm.kvmlab build [KERNEL CPU SCENARIO]...   (default: KVM_SET)
    /usr/bin/python3 -m tests.kvm.kvmlab list | hash
Fixtures live in $PFNSCOPE_CACHE/kvm/lab/<release>-<cpu>-<scenario>-<hash12>; the hash
covers tests/kvm's sources and the VM lab's (whose init, initramfs and boot it reuses).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tests.vm import lab

KVMDIR = os.path.dirname(os.path.abspath(__file__))
KVMCACHE = os.path.join(lab.CACHE, "kvm")
LABDIR = os.path.join(KVMCACHE, "lab")
# QEMU -cpu strings: QEMU's TCG emulates SVM with nested paging (NPT)
CPUS = {
    "epyc": "EPYC,+svm,+npt",               # 4-level host paging
    "max": "max,vendor=AuthenticAMD",       # LA57: 5-level host paging
}
SCENARIOS = ("healthy", "buggy")
KVM_SET = (
    ("6.1", "epyc", "healthy"),
    ("6.1", "max", "healthy"),
    ("6.12", "epyc", "healthy"),
    ("6.12", "max", "healthy"),
    ("6.1", "max", "buggy"),
    ("6.12", "max", "buggy"),
    ("7", "max", "healthy"),
    ("7", "max", "buggy"),
)
DUMP_FILES = {
    "elf-nopaging": "elf-nopaging.vmcore",
    "elf-paging": "elf-paging.vmcore",
    "kdump-zlib": "kdump-zlib.vmcore",
    "kdump-real": "kdump-real.vmcore",
    "kdump-real-d23": "kdump-real-d23.vmcore",
}
TIMEOUT_TRUTH = 120


def dump_formats(cpu):
    """The dumps of a fixture, the same for every host paging mode: QEMU's ELF
    without and with paging, kdump-zlib, and the real kdump (the capture kernel's
    makedumpfile -d 31 and -d 23 over one /proc/vmcore)."""
    return tuple(DUMP_FILES)


def _log(msg):
    print("kvmlab: " + msg, file=sys.stderr, flush=True)


def source_hash():
    """sha256 over tests/kvm's sources (not its tests nor build products) and the
    VM lab's base sources (lab.source_hash), whose init and boot this family reuses."""
    h = hashlib.sha256(lab.source_hash().encode())
    for dirpath, dirnames, filenames in os.walk(KVMDIR):
        dirnames[:] = sorted(d for d in dirnames if d not in ("build", "__pycache__", ".pytest_cache"))
        for fn in sorted(filenames):
            if fn.startswith((".", "test_")) or fn.endswith((".pyc", ".md")) or fn in ("conftest.py", "__init__.py"):
                continue
            p = os.path.join(dirpath, fn)
            h.update(os.path.relpath(p, KVMDIR).encode() + b"\0")
            with open(p, "rb") as f:
                h.update(f.read())
            h.update(b"\0")
    return h.hexdigest()


def kvm_modules(gen):
    """Directory with modules/{irqbypass,kvm,ccp,kvm-amd}.ko and debug/{kvm,kvm-amd}.ko."""
    with lab._flock(os.path.join(KVMCACHE, "modules-%s.lock" % gen)):
        out = lab._run("kvm modules %s" % gen, ["bash", os.path.join(KVMDIR, "kvm-modules.sh"), gen])
    return out.strip().splitlines()[-1]


def vmm_program():
    with lab._flock(os.path.join(KVMCACHE, "vmm-build.lock")):
        lab._run("vmm", ["make", "-s", "-C", KVMDIR])
    p = os.path.join(KVMDIR, "build", "vmm")
    if not os.access(p, os.X_OK):
        raise lab.LabError("step 'vmm': %s missing" % p)
    return p


def kvmbug_module(k, destdir):
    """tests/kvm/module (pfnscope_kvmbug: a pte changed without MMU notifiers) for K."""
    with tempfile.TemporaryDirectory(prefix="pfnkvm-mod-") as out:
        r = subprocess.run(["bash", os.path.join(KVMDIR, "build-module.sh"), k.gen, out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ko = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if r.returncode != 0 or not os.path.exists(ko):
            raise lab.LabError("step 'kvmbug module': build-module.sh %s failed (rc %d): %s"
                               % (k.gen, r.returncode, r.stderr.strip()[-2000:]))
        shutil.copy(ko, os.path.join(destdir, "pfnscope_kvmbug.ko"))


def build_initrd(k, scenario, kmods, dest):
    """The VM lab's initramfs (scenario none) followed by a second cpio archive with
    this family's /init (the lab's becomes /init.lab), the VMM and KVM's modules:
    the kernel unpacks both, later files replacing earlier ones."""
    base = dest + ".base"
    lab.build_initrd(k, "none", base)
    with tempfile.TemporaryDirectory(prefix="pfnkvm-initrd-") as st:
        for d in ("bin", "lib/kvm"):
            os.makedirs(os.path.join(st, d))
        shutil.copy(os.path.join(lab.VMDIR, "init"), os.path.join(st, "init.lab"))
        shutil.copy(os.path.join(KVMDIR, "init"), os.path.join(st, "init"))
        for f in ("init", "init.lab"):
            os.chmod(os.path.join(st, f), 0o755)
        shutil.copy(vmm_program(), os.path.join(st, "bin", "vmm"))
        for m in ("irqbypass", "kvm", "ccp", "kvm-amd"):
            shutil.copy(os.path.join(kmods, "modules", m + ".ko"), os.path.join(st, "lib/kvm", m + ".ko"))
        if scenario == "buggy":
            lab.buggy_module(k, os.path.join(st, "lib/kvm/pfnscope_buggy.ko"))
            kvmbug_module(k, os.path.join(st, "lib/kvm"))
        over = dest + ".over"
        with open(over, "wb") as out:
            find = subprocess.Popen(["find", "."], cwd=st, stdout=subprocess.PIPE)
            cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet"], cwd=st,
                                    stdin=find.stdout, stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=out)
            find.stdout.close()
            cpio.stdout.close()
            if gz.wait() or cpio.wait() or find.wait():
                raise lab.LabError("step 'kvm initramfs': cpio/gzip failed")
    with open(dest + ".tmp", "wb") as out:
        for p in (base, over):
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out)
            os.unlink(p)
    os.rename(dest + ".tmp", dest)


class Fixture:
    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "fixture.json")) as f:
            self.info = json.load(f)
        for k in ("kernel", "release", "cpu", "scenario", "vmlinux", "levels", "kvm_debug"):
            setattr(self, k, self.info[k])
        self.dumps = dict(self.info["dumps"])
        with open(os.path.join(d, "kvm.json")) as f:
            self.truth = json.load(f)
        self.params = {}
        with open(os.path.join(d, "kvm-params.txt")) as f:
            for line in f:
                p = line.split()
                if len(p) == 2:
                    self.params[p[0]] = p[1]

    def __repr__(self):
        return "<kvmlab.Fixture %s>" % self.dir


def fixture_key(k, cpu, scenario):
    return "%s-%s-%s-%s" % (k.release, cpu, scenario, source_hash()[:12])


def fixture(kernel="6.1", cpu="epyc", scenario="healthy", rebuild=False):
    if cpu not in CPUS:
        raise lab.LabError("unknown kvm lab cpu %r (one of %s)" % (cpu, ", ".join(CPUS)))
    if scenario not in SCENARIOS:
        raise lab.LabError("unknown kvm lab scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))
    k = lab.kernel(kernel)
    key = fixture_key(k, cpu, scenario)
    d = os.path.join(LABDIR, key)
    with lab._flock(os.path.join(LABDIR, ".%s-%s-%s.lock" % (k.release, cpu, scenario))):
        if rebuild or not os.path.exists(os.path.join(d, "complete")):
            _remove_stale(k, cpu, scenario, keep=None)
            t0 = time.time()
            _log("building fixture %s" % key)
            _build(k, cpu, scenario, d)
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


def _build(k, cpu, scenario, d):
    kmods = kvm_modules(k.gen)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    p = lambda n: os.path.join(d, n)
    initrd = p("initrd.cpio.gz")
    build_initrd(k, scenario, kmods, initrd)
    # no_timer_check: under TCG on a loaded host the IO-APIC timer test fails at random
    # (check_timer() panics "IO-APIC + timer doesn't work!"), as the VM lab notes
    append = lab._append(k, "none", "dump", initrd) + " no_timer_check" + \
        (" pfnkvm.buggy=1" if scenario == "buggy" else "")
    guest = lab.Guest(k, CPUS[cpu], initrd, p("serial.log"), d, append)
    try:
        t0 = time.time()
        guest.wait_marker("boot (READY)", "PFNLAB-READY", lab.TIMEOUT_READY)
        deadline = time.time() + TIMEOUT_TRUTH
        while not os.path.exists(p("kvm.json")):
            if "PFNLAB-FAIL" in guest.serial_text() or time.time() > deadline:
                guest.wait_marker("vmm truth", "PFNLAB-NEVER", 1)
                guest._fail("vmm truth", "no kvm.json after %ds" % TIMEOUT_TRUTH)
            time.sleep(0.2)
        _log("%s: READY + truth after %.0fs" % (os.path.basename(d), time.time() - t0))
        qmp = guest.connect_qmp()
        for name, paging, fmt, out in (("elf-nopaging", False, "elf", p("elf-nopaging.vmcore")),
                                       ("elf-paging", True, "elf", p("elf-paging.vmcore")),
                                       ("kdump-zlib", False, "kdump-zlib", p("kdump-zlib.flat"))):
            t1 = time.time()
            qmp.cmd("dump-guest-memory", timeout=lab.TIMEOUT_DUMP, paging=paging,
                    protocol="file:" + out + ".tmp", format=fmt)
            subprocess.run(["fallocate", "--dig-holes", out + ".tmp"], stderr=subprocess.DEVNULL)
            os.chmod(out + ".tmp", 0o644)
            os.rename(out + ".tmp", out)
            _log("%s: dump %s in %.0fs" % (os.path.basename(d), name, time.time() - t1))
        with open(p("kdump-zlib.flat"), "rb") as fi:
            r = subprocess.run(["makedumpfile", "-R", p("kdump-zlib.vmcore.tmp")], stdin=fi,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise lab.LabError("step 'makedumpfile -R': rc %d: %s" % (r.returncode, r.stdout[-2000:]))
        os.rename(p("kdump-zlib.vmcore.tmp"), p("kdump-zlib.vmcore"))
        os.unlink(p("kdump-zlib.flat"))
        # go: the guest kexec-loads the capture kernel and crashes itself
        t1 = time.time()
        open(p("go"), "w").close()
        guest.wait_marker("real kdump", "PFNLAB-KDUMP-DONE", lab.TIMEOUT_KDUMP)
        guest.wait_exit("real kdump (poweroff)", 60)
        _log("%s: real kdump in %.0fs" % (os.path.basename(d), time.time() - t1))
        os.unlink(p("go"))
    finally:
        guest.stop()
    for name in dump_formats(cpu):
        fn = DUMP_FILES[name]
        if not os.path.getsize(p(fn)) > 0:
            raise lab.LabError("step 'dump %s': %s is empty" % (name, p(fn)))
    info = lab._json(p("guest-info.json"))
    fx = {
        "kernel": k.gen, "release": k.release, "cpu": cpu, "qemu_cpu": CPUS[cpu],
        "scenario": scenario, "vmlinux": k.vmlinux, "vmlinuz": k.vmlinuz,
        "levels": int(info.get("levels", 4)),
        "kvm_debug": [os.path.join(kmods, "debug", m) for m in ("kvm.ko", "kvm-amd.ko")],
        "dumps": {n: p(DUMP_FILES[n]) for n in dump_formats(cpu)},
        "source_hash": source_hash(), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(p("fixture.json"), "w") as f:
        json.dump(fx, f, indent=1)
    with open(p("complete"), "w") as f:
        f.write("ok\n")


def kvm_set():
    """KVM_SET narrowed by $PFNSCOPE_KVM_LAB ("6.1" or "6.1:epyc:healthy,6.12")."""
    sel = os.environ.get("PFNSCOPE_KVM_LAB", "").replace(",", " ").split()
    if not sel:
        return list(KVM_SET)
    out = []
    for s in sel:
        parts = s.split(":")
        out += [t for t in KVM_SET if t[0] == parts[0]] if len(parts) == 1 else [tuple(parts)]
    return out


def main(argv):
    if not argv or argv[0] not in ("build", "list", "hash"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "hash":
        print(source_hash())
        return 0
    args = argv[1:]
    if len(args) % 3:
        print("kvmlab: build takes KERNEL CPU SCENARIO triples", file=sys.stderr)
        return 2
    items = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)] or kvm_set()
    if argv[0] == "list":
        for i in items:
            print(" ".join(i), os.path.join(LABDIR, fixture_key(lab.kernel(i[0]), i[1], i[2])))
        return 0
    errors = []
    for i in items:  # one outer guest at a time: each runs a nested VM under TCG
        try:
            fx = fixture(*i)
            _log("ok %s %s %s -> %s" % (i + (fx.dir,)))
        except Exception as e:
            errors.append(i)
            _log("FAILED %s %s %s: %s" % (i + (e,)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
