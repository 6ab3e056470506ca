"""pfnscope inside drgn: plugin hooks and the ``pfnscope`` drgn command.

* Any drgn (Debian 12's 0.0.22 included): ``import pfnscope`` in a session
  started with ``drgn -c VMCORE -s VMLINUX``, then ``pfnscope.walk(prog, ...)``;
  ``pfnscope.drgn_plugin.run(prog, "walk -p 1 -a 0x...")`` runs a command line
  on the session's Program.
* drgn with plugins (0.0.27+): pfnscope's distribution declares this module as
  entry point ``pfnscope`` in group ``drgn.plugins``, so drgn imports it when
  it starts; the ``drgn_prog_set`` hook is defined (nothing to do eagerly:
  pfnscope derives its layout from the Program on first use).
* drgn with commands (0.0.33+): importing this module registers the command
  ``pfnscope`` (``%pfnscope walk -p 1 -a 0x...`` at drgn's prompt,
  ``drgn.commands.run_command(prog, "pfnscope check")`` in a script), and the
  same command under drgn's ``%crash`` mode (``crash> pfnscope vmas -p 1``).
  Its arguments are the CLI's subcommands and options (tasks, vmas, walk,
  rmap, check); the target is the session's Program.  A nonzero exit status
  of the CLI (1: findings at --fail-on, 2: error) becomes drgn's
  CommandExitStatusError.

The command API differs between drgn versions (0.0.33 hands a command its
argument string; 0.1+ takes a ``parse`` callback and hands over the parsed
words), so everything past 0.0.22 is feature-detected and this module imports
cleanly on every drgn.
"""
from __future__ import annotations

import shlex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Sequence, Union

from .cli import run_on_program

COMMAND_NAME = "pfnscope"
# namespaces the command was registered in ("default", "crash")
REGISTERED: List[str] = []
# how many Programs drgn announced through the drgn_prog_set hook
PROG_SET_CALLS = 0


def run(prog, argv: Union[str, Sequence[str]]) -> int:
    """Run a pfnscope command line on prog; returns the CLI's exit status."""
    if isinstance(argv, str):
        argv = shlex.split(argv)
    return run_on_program(prog, list(argv))


def drgn_prog_set(prog) -> None:
    """drgn plugin hook, called when drgn attaches a Program to a kernel or
    core dump.  Nothing to prepare eagerly: pfnscope derives its layout from
    the Program on first use; the count lets a session see the plugin ran."""
    global PROG_SET_CALLS
    PROG_SET_CALLS += 1


_USAGE = ("**pfnscope** tasks | vmas -p *PID* | walk -p *PID* (-a *ADDR* | --all) "
          "[--summary] [--json] | rmap *PFN*[-*PFN*] [--json] | "
          "check [-p *PID*] [--fail-on *SEVERITY*] [--json]")
_LONG = ("Audit the page-table entries of VMAs on the current program with "
         "pfnscope's command line: per entry the special bit, the kernel's "
         "vm_normal_page() verdict, the struct page refcount/mapcount, consumer "
         "verdicts and diagnoses of mislabeled pfnmap pages.  The subcommands "
         "and options are those of the pfnscope CLI (pfnscope --help); the "
         "target is the program drgn has open.")


def _words(args: Any) -> List[str]:
    # drgn 0.0.33 passes the raw argument string, 0.1+ the parsed words
    return shlex.split(args) if isinstance(args, str) else list(args)


def _command_function(exit_error):
    def _cmd_pfnscope(prog: Any, name: str, args: Any, **kwargs: Any) -> Any:
        words = _words(args)
        rc = run_on_program(prog, words)
        if rc:
            raise exit_error(" ".join([name] + words), rc)
        return None
    return _cmd_pfnscope


def _register(decorator, exit_error, with_parse) -> None:
    kwargs = dict(name=COMMAND_NAME, description="audit the page-table entries of VMAs",
                  usage=_USAGE, long_description=_LONG)
    if with_parse is not None:
        kwargs["parse"] = with_parse
    decorator(**kwargs)(_command_function(exit_error))


def _register_commands() -> List[str]:
    try:
        import drgn.commands as dc  # type: ignore
    except ImportError:  # drgn < 0.0.33: no command framework
        return []
    # 0.1+: commands parse their own arguments (parse=...)
    parse = getattr(dc, "parse_shell_command", None)
    exit_error = dc.CommandExitStatusError
    done = []
    try:
        from drgn.commands.linux import linux_kernel_custom_command as default
    except ImportError:
        default = dc.custom_command
    _register(default, exit_error, parse)
    done.append("default")
    crash = None
    for mod in ("drgn.commands._crash.common", "drgn.commands.crash"):
        try:
            crash = __import__(mod, fromlist=["crash_custom_command"]).crash_custom_command
            break
        except (ImportError, AttributeError):
            continue
    if crash is not None:
        _register(crash, exit_error, parse)
        done.append("crash")
    return done


try:
    REGISTERED[:] = _register_commands()
except Exception:  # a drgn whose command API differs again: the Python API stays
    REGISTERED[:] = []
COMMAND_REGISTERED = bool(REGISTERED)
