"""The one exception type pfnscope raises for bad input.

Every problem a user can cause (a missing file, a vmlinux from another build,
a PID that does not exist, an unmapped address, a type the kernel lacks) is a
PfnscopeError whose str() is the one-line message the CLI prints after
"pfnscope: ".  The message starts with the thing at fault (file, address,
field), then the problem.
"""
from __future__ import annotations


class PfnscopeError(Exception):
    """Input or target error; str(e) is "<file/address/field>: <problem>"."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class LayoutError(PfnscopeError):
    """A type, member, symbol or VMCOREINFO key the layout needs is missing."""
