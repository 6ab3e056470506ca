"""--reader drgn on the arm64 fixtures' dumps.  drgn 0.0.22 reads the real
kdump (makedumpfile, through libkdumpfile's own arm64 translation): the
entries must be the kdumpfile reader's.  It cannot read QEMU's dumps of
arm64 guests: the ELF ones (paging or not) fail at the first kernel virtual
read ("recursive address translation": drgn walks swapper_pg_dir through
its own translation, and these cores map no virtual segment of the image),
the kdump-compressed one already at open (libkdumpfile finds no architecture
in its 64 KiB-block header).  There the CLI exits 2 with one line that says
so and names --reader kdumpfile."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (ROOT, os.path.join(ROOT, "src", "python"), os.path.join(ROOT, "tests", "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

import lab_support as L  # noqa: E402
from tests.arm64 import lab as alab  # noqa: E402

KEYS = [tuple(k) for k in alab.arm64_set()]
CASES = [(k, f) for k in KEYS for f in alab.formats(k[0]) if f != "kdump-zlib-flat"]
IDS = ["%s-%s" % ("-".join(k), f) for k, f in CASES]

# what drgn 0.0.22 says, per QEMU format
FAILS = {"elf-nopaging": "recursive address translation",
         "elf-paging": "recursive address translation",
         "kdump-zlib": "KDUMP_ATTR_ARCH_NAME"}


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_reader_drgn(key, fmt):
    fx = alab.fixture(*key)
    r = L.run("-c", fx.dumps[fmt], "-s", fx.vmlinux, "--reader", "drgn",
              *L.walk_all_args(fx))
    if fmt in FAILS:
        L.assert_clean_error(r, "drgn 0.0.22", FAILS[fmt], "--reader kdumpfile")
        print("\n[%s %s] --reader drgn: exit 2, %s" % ("-".join(key), fmt, r.err.strip()))
        return
    assert r.rc == 0, r
    want = L.run("-c", fx.dumps[fmt], "-s", fx.vmlinux, *L.walk_all_args(fx))
    assert want.rc == 0, want
    got = [o for o in r.records() if o["type"] != "target"]
    assert got == [o for o in want.records() if o["type"] != "target"] and len(got) > 1000
    print("\n[%s %s] --reader drgn: %d records identical to the kdumpfile reader's"
          % ("-".join(key), fmt, len(got)))
