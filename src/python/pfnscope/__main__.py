import os
import sys

from .cli import main

rc = main()
# End without tearing the interpreter down: the output is written, and the
# teardown (freeing drgn's DWARF index, the dump's libkdumpfile context) is
# time spent for nothing.
try:
    sys.stdout.flush()
    sys.stderr.flush()
except (BrokenPipeError, OSError):
    pass
os._exit(rc if isinstance(rc, int) else 1)
