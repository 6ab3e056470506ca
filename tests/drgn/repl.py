"""drgn's interactive prompt on a pseudo-terminal, as a user types into it:

    python3 tests/drgn/repl.py OUT.txt -- python3 -m drgn -c VMCORE -s VMLINUX
        < one line per command (e.g. "%pfnscope walk -p 1 -a 0x400000 --json")

Starts the command on a pty, waits for drgn's ">>> " prompt, types each line
of stdin and waits for the next prompt, then types "exit()".  Writes
everything drgn printed (the terminal's output, \\r\\n line ends) to OUT.txt;
exits with drgn's status, or 3 when a prompt did not come within 300 s.
"""
import os
import pty
import select
import sys
import time

PROMPT = b">>> "


def main():
    out_path = sys.argv[1]
    argv = sys.argv[sys.argv.index("--") + 1:]
    lines = [x.rstrip("\n") for x in sys.stdin if x.strip()]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"
        os.execvp(argv[0], argv)
    buf = bytearray()

    def until_prompt(start):
        deadline = time.time() + 300
        while time.time() < deadline:
            if buf.find(PROMPT, start) >= 0:
                return True
            r, _, _ = select.select([fd], [], [], 1)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return False
                if not data:
                    return False
                buf.extend(data)
        return False

    ok = until_prompt(0)
    for line in lines + ["exit()"]:
        if not ok:
            break
        start = len(buf)
        os.write(fd, line.encode() + b"\r")
        if line != "exit()":
            ok = until_prompt(start + len(line))
    while True:  # drain until drgn exits
        try:
            r, _, _ = select.select([fd], [], [], 30)
            data = os.read(fd, 65536) if r else b""
        except OSError:
            data = b""
        if not data:
            break
        buf.extend(data)
    _, status = os.waitpid(pid, 0)
    with open(out_path, "wb") as f:
        f.write(bytes(buf))
    if not ok:
        sys.exit(3)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
