"""A drgn script: what pfnscope gives inside a drgn session on a dump.

    drgn -c VMCORE -s VMLINUX tests/drgn/session.py OUT.json PID ADDR PFNS

Runs with the drgn that starts it (Debian 12's 0.0.22, trixie's, sid's) on
drgn's own Program (``prog``), and writes OUT.json: drgn's and Python's
versions, whether drgn loaded pfnscope as a plugin before this script ran
(and called its drgn_prog_set hook), which drgn command namespaces have the
``pfnscope`` command, and the output of

* ``walk -p PID -a ADDR --json`` and ``check --json`` through
  pfnscope.drgn_plugin.run (the CLI on the session's Program),
* ``walk -p PID --all --json`` and ``rmap PFNS --json`` the same way,
* the Python API: pfnscope.walk(prog, pid=PID, addr=ADDR) as JSON lines,
* where drgn has commands: the ``pfnscope`` drgn command (run_command), also
  on a pid that does not exist, and
  the same command in drgn's crash mode (``crash pfnscope ...``).
"""
import contextlib
import io
import json
import sys

out_path, pid, addr, pfns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0), sys.argv[4]
res = {"python": "%d.%d" % sys.version_info[:2]}

import drgn  # noqa: E402

res["drgn"] = drgn.__version__
res["plugin_loaded"] = "pfnscope.drgn_plugin" in sys.modules
if res["plugin_loaded"]:
    res["prog_set_calls"] = sys.modules["pfnscope.drgn_plugin"].PROG_SET_CALLS

import pfnscope  # noqa: E402
from pfnscope import drgn_plugin  # noqa: E402

res["pfnscope_file"] = pfnscope.__file__
res["core_file"] = sys.modules["pfnscope._core"].__file__
res["commands"] = list(drgn_plugin.REGISTERED)


def captured(fn, stdout=True):
    """fn's return value, exception, stdout (unless stdout=False: the
    command redirects it itself) and stderr."""
    buf = io.StringIO()
    ebuf = io.StringIO()
    rc = None
    err = None
    with contextlib.redirect_stdout(buf) if stdout else contextlib.nullcontext(), \
            contextlib.redirect_stderr(ebuf):
        try:
            rc = fn()
        except Exception as e:  # recorded, the test asserts on it
            err = "%s: %s" % (type(e).__name__, e)
    return {"rc": rc, "out": buf.getvalue(), "stderr": ebuf.getvalue(), "error": err}


walk_args = ["walk", "-p", str(pid), "-a", hex(addr), "--json"]
res["run_walk"] = captured(lambda: drgn_plugin.run(prog, walk_args))  # noqa: F821
res["run_walk_all"] = captured(lambda: drgn_plugin.run(  # noqa: F821
    prog, ["walk", "-p", str(pid), "--all", "--json"]))  # noqa: F821
res["run_rmap"] = captured(lambda: drgn_plugin.run(prog, ["rmap", pfns, "--json"]))  # noqa: F821
res["run_check"] = captured(lambda: drgn_plugin.run(prog, ["check", "--json"]))  # noqa: F821
res["api_walk"] = captured(lambda: print(
    "\n".join(e.to_json() for e in pfnscope.walk(prog, pid=pid, addr=addr))))  # noqa: F821

if res["commands"]:
    from drgn.commands import run_command
    line = " ".join(walk_args)
    res["command_walk"] = captured(lambda: run_command(prog, "pfnscope " + line))  # noqa: F821
    res["command_rmap"] = captured(lambda: run_command(prog, "pfnscope rmap %s --json" % pfns))  # noqa: F821
    res["command_check"] = captured(lambda: run_command(prog, "pfnscope check --json"))  # noqa: F821
    # drgn's redirection (sys.stdout becomes a file) and pipeline (a pipe to
    # a shell): the core writes to their file descriptors
    import os
    work = os.path.dirname(os.path.abspath(out_path))
    for k, tail in (("redirect", "> %s/redirect.jsonl"), ("pipe", "| cat > %s/pipe.jsonl")):
        path = os.path.join(work, k + ".jsonl")
        res["command_" + k] = captured(lambda: run_command(prog, "pfnscope %s %s" % (  # noqa: F821
            line, tail % work)), stdout=False)
        res["command_" + k]["out"] = open(path).read() if os.path.exists(path) else None
    # an error: the CLI's one-line message and exit status 2, raised by drgn
    res["command_bad_pid"] = captured(lambda: run_command(prog, "pfnscope walk -p 999999 --all"))  # noqa: F821
    if "crash" in res["commands"]:
        res["crash_walk"] = captured(lambda: run_command(prog, "crash pfnscope " + line))  # noqa: F821

with open(out_path, "w") as f:
    json.dump(res, f)
