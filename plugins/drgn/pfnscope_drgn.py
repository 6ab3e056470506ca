"""drgn integration of pfnscope from the source tree: ``import pfnscope_drgn``
in a drgn session started by plugins/drgn/drgn-pfnscope (or with src/python on
PYTHONPATH) is ``pfnscope.drgn_plugin``: ``pfnscope_drgn.run(prog, "check")``,
and on drgn 0.0.33+ the ``pfnscope`` command.  An installed pfnscope (pip,
make install, the Debian package) declares pfnscope.drgn_plugin as drgn plugin
``pfnscope`` itself.
"""
import os
import sys

_SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "..", "..", "src", "python"))
try:
    import pfnscope  # noqa: F401  (installed)
except ImportError:  # running from the source tree
    if os.path.isdir(os.path.join(_SRC, "pfnscope")):
        sys.path.insert(0, _SRC)
    import pfnscope  # noqa: F401

from pfnscope.drgn_plugin import (COMMAND_REGISTERED, REGISTERED, drgn_prog_set,  # noqa: F401,E402
                                  run)
