"""drgn integration of pfnscope.

* drgn 0.0.22 (Debian 12) has neither plugins nor commands: ``import pfnscope``
  inside ``drgn -c VMCORE -s VMLINUX`` is the integration (start drgn with
  plugins/drgn/drgn-pfnscope, or put src/python on PYTHONPATH, or `make
  install`), then ``pfnscope.walk(prog, pid=..., addr=...)``.  Commands can be
  run on the session's prog with ``pfnscope_drgn.run(prog, "walk -p 1 -a 0x..")``.
* drgn with plugins (entry point group ``drgn.plugins``, name ``pfnscope``,
  object ``pfnscope_drgn``): the ``drgn_prog_set`` hook makes the Program known
  to pfnscope, and where ``drgn.commands`` exists a ``pfnscope`` command is
  registered (``%pfnscope walk -p 1 -a 0x...`` at drgn's prompt).

Everything newer than 0.0.22 is feature-detected: nothing here fails on a drgn
that lacks it.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import Any, Sequence, Union

_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.normpath(os.path.join(_HERE, "..", "..", "src", "python"))
try:
    import pfnscope  # noqa: F401  (installed)
except ImportError:  # running from the source tree
    if os.path.isdir(os.path.join(_SRC, "pfnscope")):
        sys.path.insert(0, _SRC)
    import pfnscope  # noqa: F401

from pfnscope.cli import run_on_program

COMMAND_REGISTERED = False


def run(prog, argv: Union[str, Sequence[str]]) -> int:
    """Run a pfnscope CLI command on prog; returns its exit status."""
    if isinstance(argv, str):
        argv = shlex.split(argv)
    return run_on_program(prog, list(argv))


def drgn_prog_set(prog) -> None:
    """drgn plugin hook (drgn >= 0.0.27): nothing to do eagerly; pfnscope builds
    its layout on first use of the Program."""
    return None


def _register_command() -> bool:
    try:
        from drgn.commands import custom_command, parse_shell_command  # type: ignore
    except ImportError:
        return False

    @custom_command(
        name="pfnscope",
        description="audit page-table entries of VMAs (pfnscope)",
        usage="**pfnscope** tasks | vmas -p PID | walk -p PID (-a ADDR | --all) | check",
        long_description="Runs the pfnscope command line on the current program; "
        "`pfnscope --help` for the options.",
        parse=parse_shell_command,
    )
    def _cmd_pfnscope(prog: Any, name: str, args: Any, **kwargs: Any) -> Any:
        rc = run_on_program(prog, list(args))
        return None if rc == 0 else rc

    return True


try:
    COMMAND_REGISTERED = _register_command()
except Exception:  # a drgn whose command API differs: keep the Python API
    COMMAND_REGISTERED = False
