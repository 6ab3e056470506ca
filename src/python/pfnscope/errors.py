"""The exceptions pfnscope raises for bad input and unreadable targets.

Every problem a user can cause (a missing file, a vmlinux from another build,
a PID that does not exist, an unmapped address, a type the kernel lacks, a
damaged dump) is a PfnscopeError.  ``e.line()`` is the one-line message the
CLI prints after "pfnscope: ": the thing at fault (file, address, field)
first, then the problem.

The C core reports its errors as a struct pfs_error (include/pfnscope/error.h:
a code, the address and what was being read there, or the file concerned);
the extension turns it into one of the CoreError classes below in one place
(src/python/error.c), keeping those fields as attributes:

    PfnscopeError(where, problem)       .where .problem
      LayoutError                       a type/member/symbol the layout needs
      CoreError (pfnscope._core.Error)  .code .address .what .file
        FaultError                      memory at .address cannot be read
        CorruptError                    a kernel structure is malformed or loops
        DumpError (_core.OpenError)     .file is not a dump pfnscope can read
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class PfnscopeError(Exception):
    """Input or target error; str(e) is "<file/address/field>: <problem>"."""

    code = 0
    address: Optional[int] = None
    what: Optional[str] = None
    file: Optional[str] = None

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem

    def line(self) -> str:
        """The one line the CLI prints after "pfnscope: "."""
        return str(self)


class LayoutError(PfnscopeError):
    """A type, member, symbol or VMCOREINFO key the layout needs is missing."""


# enum pfs_error_code (include/pfnscope/error.h)
EREAD, EFAULT, ELOOP, ECORRUPT, ELAYOUT, ENOMEM, ENOENT, EINVAL, EDUMP, EOS = range(1, 11)


class CoreError(PfnscopeError):
    """An error of the C core or of a dump reader (pfnscope._core.Error).

    str(e) is the core's message, "<code text>: <what> at 0x<address>" (what
    and address left out when unknown); .code is the enum pfs_error_code,
    .address and .what say what was being read where, .file names the file.
    """

    def __init__(self, message: str, code: int = 0, address: Optional[int] = None,
                 what: Optional[str] = None, file: Optional[str] = None) -> None:
        Exception.__init__(self, message)
        self.code = code
        self.address = address
        self.what = what
        self.file = file

    @property
    def addr(self) -> Optional[int]:
        """The address, under the name the core's exception always had."""
        return self.address

    def _split(self):
        msg = str(self).splitlines()[0] if str(self) else type(self).__name__
        if self.address is not None and self.what:  # "<code text>: <what> at 0x.."
            return f"{self.what} at {self.address:#x}", msg.split(": " + self.what)[0]
        if self.file and msg.startswith(self.file + ": "):
            return self.file, msg[len(self.file) + 2:]
        return None, msg

    @property
    def where(self) -> str:  # type: ignore[override]
        return self._split()[0] or "target"

    @property
    def problem(self) -> str:  # type: ignore[override]
        return self._split()[1]

    def line(self) -> str:
        where, problem = self._split()
        return problem if where is None else f"{where}: {problem}"


class FaultError(CoreError):
    """Memory at .address (what was being read: .what) cannot be read: not
    mapped, or not in the dump."""


class CorruptError(CoreError):
    """A kernel structure read at .address is malformed, or a list or tree
    loops."""


class DumpError(CoreError, OSError):
    """.file cannot be opened, is not a dump, or is damaged beyond reading
    (pfnscope._core.OpenError)."""
