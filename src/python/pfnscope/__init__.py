"""pfnscope: audit a VMA's page-table entries in a crash dump or live kernel.

Python API (docs/guide.md), usable inside ``drgn -c VMCORE -s VMLINUX``::

    import pfnscope
    prog = pfnscope.open("vmcore")                 # or drgn's prog
    pfnscope.walk(prog, pid=147, addr=0x7f0000000000)
    for vma in pfnscope.for_each_vma(task.mm): ...
    pfnscope.find_vma(mm, addr); pfnscope.walk_vma(vma)
    pfnscope.check(prog)                           # list of Finding
"""
from .api import (Diagnosis, Entry, Finding, SEVERITIES, Task, Vma, check, find_task,
                  find_vma, for_each_vma, kvm, kvm_sptes, kvm_vms, open, rmap, session, tasks,
                  walk, walk_vma)
from .errors import LayoutError, PfnscopeError

__version__ = "0.1.0"

__all__ = ["open", "walk", "walk_vma", "for_each_vma", "find_vma", "check", "rmap", "kvm", "kvm_vms", "kvm_sptes", "tasks",
           "find_task", "session", "Entry", "Vma", "Task", "Finding", "Diagnosis",
           "SEVERITIES", "PfnscopeError", "LayoutError"]
