"""pytest glue for the VM lab: `from tests.vm import lab` and session fixtures.

Fixtures are built (once, cached in $PFNSCOPE_CACHE/lab) when a test first asks for
them; a build failure is a test error, never a skip.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
SRC = os.path.join(ROOT, "src", "python")

import re  # noqa: E402

import pytest  # noqa: E402

from tests.vm import lab  # noqa: E402

_built = {}


def lab_fixture(kernel="6.1", cpu="max", scenario="healthy"):
    """Session-cached lab.fixture(); a failed build fails every test that uses it."""
    key = (kernel, cpu, scenario)
    if key not in _built:
        try:
            _built[key] = lab.fixture(kernel=kernel, cpu=cpu, scenario=scenario)
        except Exception as e:  # remember the failure: do not rebuild per test
            _built[key] = e
    v = _built[key]
    if isinstance(v, Exception):
        raise lab.LabError("fixture %s/%s/%s could not be built: %s" % (key + (v,)))
    return v


def lacks_in_real_kdump(fx, fmt, rc, err):
    """Whether this run (exit rc, stderr err) on fx's dump fmt is the honest
    answer to a real kdump that lacks the kernel memory it needs (asserted
    when the run failed so).  A real kdump (makedumpfile -d 31 in the capture
    kernel) of a kernel newer than the capture's makedumpfile knows: its
    page-flag tests take some slab pages (task_struct, mm_struct, KVM's
    structures) for user pages and exclude them, at whatever addresses the
    guest's allocations fell.  A run that needs such memory must then fail
    honestly: exit 2, one line naming the kernel memory, that memory really
    absent from the dump while the QEMU dump of the same guest holds it.  The
    -d 23 dump of the same /proc/vmcore ("kdump-real-d23") keeps user pages,
    so the same assertions can be made on it."""
    if not fmt.startswith("kdump-real") or rc != 2:
        return False
    with open(os.path.join(os.path.dirname(fx.dumps[fmt]), "makedumpfile.log"), errors="replace") as f:
        if "The kernel version is not supported" not in f.read():
            return False
    lines = [ln for ln in err.splitlines() if ln.strip()]
    m = re.search(r" at (0x[0-9a-f]+)", lines[0]) if len(lines) == 1 else None
    assert m and ("kernel memory" in lines[0] or "not readable" in lines[0]), \
        "a real kdump that fails must fail with one line naming kernel memory: %r" % err
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    from pfnscope import errors, opening
    va = int(m.group(1), 16)
    qemu = opening.open_dump(fx.dumps["elf-paging"], vmlinux=fx.vmlinux)
    pa = qemu.target.kvirt_to_phys(va)
    assert len(qemu.target.read_phys(pa, 8)) == 8
    real = opening.open_dump(fx.dumps[fmt], vmlinux=fx.vmlinux)
    with pytest.raises(errors.FaultError):
        real.target.read_phys(pa, 8)
    return True


def fixture_ids(items):
    return ["%s-%s-%s" % i for i in items]


@pytest.fixture(scope="session")
def lab_module():
    return lab


@pytest.fixture(scope="session")
def healthy_61():
    """The healthy 6.1 cpu=max fixture (what most later tests read)."""
    return lab_fixture("6.1", "max", "healthy")


@pytest.fixture(scope="session")
def buggy_61():
    return lab_fixture("6.1", "max", "buggy")


@pytest.fixture
def live_guest():
    """A running 6.1 guest (RAM file + gdbstub), stopped after the test."""
    lv = lab.live("6.1", "max", "healthy")
    yield lv
    lv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped lab test is a failure: a missing fixture must not pass as a skip."""
    outcome = yield
    rep = outcome.get_result()
    narrowed = "not in PFNSCOPE_LAB_KERNELS" in str(rep.longrepr)  # a deliberate narrowing
    if rep.skipped and not narrowed and not hasattr(rep, "wasxfail") \
            and os.environ.get("PFNSCOPE_LAB_ALLOW_SKIP") != "1":
        rep.outcome = "failed"
        rep.longrepr = "lab test skipped (counts as a failure): %s" % (rep.longrepr,)
