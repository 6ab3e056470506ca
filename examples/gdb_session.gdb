# pfnscope in a GDB session over QEMU's gdbstub (the guest may run with KASLR:
# the command finds the offset itself; `--kaslr-offset OFF` gives it by hand).
#
#   qemu-system-x86_64 ... -gdb unix:/tmp/gdb.sock,server=on,wait=off
#   PFNSCOPE_GDB=/tmp/gdb.sock gdb -q -batch -x examples/gdb_session.gdb VMLINUX
#
# (run from the pfnscope tree; PFNSCOPE_GDB may also be host:port)
set pagination off
python import os; gdb.execute("target remote " + os.environ["PFNSCOPE_GDB"])
source plugins/gdb/pfnscope.py

echo \n=== pfnscope tasks\n
pfnscope tasks

python
# Same output as the CLI, so the JSON form is handy for scripting inside GDB.
import json
out = gdb.execute("pfnscope tasks --json", to_string=True)
recs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
tasks = [r for r in recs if r["type"] == "task"]   # after the "target" record
user = [t for t in tasks if int(t["mm"], 16) and t["pid"] != 1]
gdb.set_convenience_variable("pid", user[0]["pid"] if user else 1)
end

echo \n=== pfnscope vmas -p $pid\n
eval "pfnscope vmas -p %d", $pid
echo \n=== pfnscope walk -p $pid --all --summary (runs of equal entries)\n
eval "pfnscope walk -p %d --all --summary", $pid
echo \n=== pfnscope check (diagnoses of every task)\n
pfnscope check --summary
printf "exit status of the check: %d\n", $pfnscope_rc
detach
