#!/usr/bin/python3
"""The scripted check a kernel test runs: boot a kernel in a test VM, run
`pfnscope -k check` inside it against its own /proc/kcore, get its exit status.

    /usr/bin/python3 examples/test_vm_check.py [--kernel 6.1] [--cpu max]
        [--scenario healthy|buggy] [--fail-on high] [--json] [--cli PFNSCOPE]

The lab (tests/vm) boots Debian's kernel under QEMU with the host's root
filesystem shared read-only over virtio-9p; the guest chroots into it, so the
CLI, drgn and the debug vmlinux are the host's own files and nothing is built
into the guest.  `--scenario buggy` loads the test module that creates
mislabeled pfnmap pages: the check must then exit 1.  Exit status: the
guest's `pfnscope -k check` status (0 clean, 1 findings, 2 error).
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.vm import lab  # noqa: E402

DEFAULT_CLI = os.path.join(ROOT, "bin", "pfnscope")


def check_in_vm(kernel="6.1", cpu="max", scenario="healthy", check_args=(), cli=DEFAULT_CLI):
    """Boot, run `CLI -k check CHECK_ARGS` in the guest, stop.  Returns
    (exit status, stdout, stderr, the guest's manifest of mappings)."""
    with lab.live(kernel=kernel, cpu=cpu, scenario=scenario) as guest:
        # inside the guest: chroot /host (the host's root), the guest's /proc there
        cmd = f"{cli} -k -s {guest.vmlinux} check {' '.join(check_args)}"
        print(f"guest# {cmd}", file=sys.stderr)
        rc, out, err = guest.run(cmd, timeout=900)
        return rc, out, err, guest.manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="6.1", choices=lab.GENERATIONS)
    ap.add_argument("--cpu", default="max", choices=lab.CPUS)
    ap.add_argument("--scenario", default="healthy", choices=lab.SCENARIOS)
    ap.add_argument("--fail-on", default="high", choices=("low", "medium", "high", "critical"))
    ap.add_argument("--json", action="store_true", help="findings as JSON lines")
    ap.add_argument("--cli", default=DEFAULT_CLI,
                    help="the pfnscope the guest runs, a path in the host's root "
                         "(default: this tree's bin/pfnscope; `pfnscope` = the installed one)")
    args = ap.parse_args()
    print(f"booting {args.kernel} -cpu {args.cpu} ({args.scenario}) ...", file=sys.stderr)
    extra = ["--fail-on", args.fail_on] + (["--json"] if args.json else ["--summary"])
    rc, out, err, _ = check_in_vm(args.kernel, args.cpu, args.scenario, extra, args.cli)
    sys.stdout.write(out)
    sys.stderr.write(err)
    print(f"pfnscope -k check in the {args.kernel} {args.scenario} guest exited {rc}",
          file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
