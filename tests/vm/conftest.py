"""pytest glue for the VM lab: `from tests.vm import lab` and session fixtures.

Fixtures are built (once, cached in $PFNSCOPE_CACHE/lab) when a test first asks for
them; a build failure is a test error, never a skip.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

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
