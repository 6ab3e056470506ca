#!/usr/bin/python3
"""pfnscope in a drgn session: tasks, VMAs, a pfnmap walk, drgn helpers on the
same Program, and the check.

Run either inside drgn (the session's `prog` is used):
    plugins/drgn/drgn-pfnscope -c VMCORE -s VMLINUX examples/drgn_session.py
or standalone (pfnscope.open returns a drgn Program for any dump format,
including those drgn 0.0.22 cannot open itself):
    /usr/bin/python3 examples/drgn_session.py VMCORE [VMLINUX]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "python"))
import pfnscope  # noqa: E402
from drgn.helpers.linux.pid import find_task  # noqa: E402

prog = globals().get("prog")
if prog is None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prog = pfnscope.open(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)

tasks = [t for t in pfnscope.tasks(prog) if t.mm]
print(f"{len(tasks)} tasks with an mm; the first few:")
for t in tasks[:5]:
    print(f"  pid {t.pid:5} {t.comm}")

# Find a task that has a pfnmap VMA (e.g. a /dev/mem mapping) -- with drgn's
# own task object, to show that drgn's helpers work on this Program too.
pfnmap = None
for t in tasks:
    task = find_task(prog, t.pid)
    for vma in pfnscope.for_each_vma(task.mm, pid=t.pid):
        if "pfnmap" in vma.flag_names and vma.file:
            pfnmap = (t, task, vma)
            break
    if pfnmap:
        break

if pfnmap is None:
    print("no file-backed pfnmap VMA in this target")
else:
    t, task, vma = pfnmap
    print(f"\npid {t.pid} ({task.comm.string_().decode()}), drgn task_struct at {hex(task.value_())}")
    print(f"  {vma}")
    print(f"  drgn object: {vma.object.type_}  vm_pgoff={int(vma.object.vm_pgoff):#x}")
    for e in pfnscope.walk_vma(vma)[:8]:
        page = e.page or {}
        print(f"  {e.addr:#x} {e.level} {e.kind:8} pfn={e.pfn} special={e.special} "
              f"normal_page={e.normal_page} ({e.vnp_reason}) "
              f"rc/mc={page.get('refcount', '-')}/{page.get('mapcount', '-')} "
              f"kvm={e.consumers['kvm']} vfio={e.consumers['vfio']} "
              f"{' '.join(d.code for d in e.diagnoses)}")
    # walk() by pid and address gives the same entries
    assert [e.addr for e in pfnscope.walk(prog, pid=t.pid, addr=vma.start)] == \
        [e.addr for e in pfnscope.walk_vma(vma)]

findings = pfnscope.check(prog)
print(f"\ncheck: {len(findings)} findings")
for f in findings[:10]:
    print(" ", f)
