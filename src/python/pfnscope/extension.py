"""The C extension pfnscope._core (walker, readers, layout struct), loaded
once; a tree where it was not built says how to build it when it is first
used, not when pfnscope is imported."""
from __future__ import annotations

from types import ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

from .errors import PfnscopeError

try:
    from . import _core as _loaded
except ImportError as _e:  # pragma: no cover - reported when used
    _module: Optional[ModuleType] = None
    _IMPORT_ERROR = str(_e)
else:
    _module = _loaded
    _IMPORT_ERROR = ""


def core() -> ModuleType:
    """The C extension module, or a one-line error telling how to build it."""
    if _module is None:
        raise PfnscopeError("pfnscope._core", f"C extension not built ({_IMPORT_ERROR}); run `make python`")
    return _module
