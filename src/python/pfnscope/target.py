"""Re-exports for scripts and tests that import from pfnscope.target; each
name is defined in:

* opening a target: pfnscope.opening (open_dump, open_live, open_qemu_ram);
* the Session and its registry: pfnscope.session;
* a target's drgn Program: pfnscope.program (session_for, vmcoreinfo_elf);
* dump files: pfnscope.dumpfile (check_elf_truncation, damage_records);
* VMCOREINFO in guest RAM: pfnscope.vmcoreinfo (scan_vmcoreinfo);
* the C extension: pfnscope.extension (core).
"""
from __future__ import annotations

from .dumpfile import check_elf_truncation, damage_records
from .errors import PfnscopeError
from .extension import core
from .opening import open_dump, open_live, open_qemu_ram
from .program import session_for, vmcoreinfo_elf
from .session import Session
from .vmcoreinfo import scan_vmcoreinfo

__all__ = ["PfnscopeError", "Session", "check_elf_truncation", "core",
           "damage_records", "open_dump", "open_live", "open_qemu_ram", "scan_vmcoreinfo",
           "session_for", "vmcoreinfo_elf"]
