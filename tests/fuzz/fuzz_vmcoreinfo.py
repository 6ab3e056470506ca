#!/usr/bin/python3
"""Mutation fuzzer for the Python parsers of untrusted bytes: VMCOREINFO
(pfnscope.vmcoreinfo.VmcoreInfo and its accessors, what open_dump and
open_qemu_ram feed the layout) and the --qemu-ram note scan
(pfnscope.target.scan_vmcoreinfo over a guest-RAM file).

Both are Python, so this is a plain loop, not libFuzzer: seeds are real
VMCOREINFO notes from the lab's dumps (tests/fuzz/corpus/vmcoreinfo);
each round mutates one (bit flips, bytes, token splices, line
duplication/deletion, value swaps from a dictionary of bad numbers) and
checks the contract: VmcoreInfo() never raises; an accessor returns its
type or raises PfnscopeError (the CLI's one-line error naming the key);
scan_vmcoreinfo() on a file holding the mutated note (at a random offset,
in random bytes, with a real or mutated ELF note header) returns a note
inside the file or raises PfnscopeError.  Anything else is a finding: the
input goes to ARTIFACTS/vmcoreinfo-N with the traceback, exit status 1.

    PYTHONPATH=src/python fuzz_vmcoreinfo.py [--seconds N] [--seed S]
                          [--artifacts DIR] CORPUS_DIR
"""
import argparse
import os
import random
import struct
import sys
import tempfile
import time
import traceback

from pfnscope.errors import PfnscopeError
from pfnscope.target import scan_vmcoreinfo
from pfnscope.vmcoreinfo import VmcoreInfo

TOKENS = [b"", b"-1", b"0x", b"zz", b"1e9", b"0x10", b"ffffffffffffffffffff", b"-", b"=",
          b"\x00", b"\xff\xfe", b"99999999999999999999999", b" ", b"\n", b"NUMBER(", b"SYMBOL(",
          b"OSRELEASE=", b"KERNELOFFSET=", b"6.1.0-56-amd64", b"x.y", b"NUMBER(pgtable_l5_enabled)=1",
          b"\xc3\x28", b"0b101", b"+5", b"1_000"]
KEYS = ["OSRELEASE", "KERNELOFFSET", "BUILD-ID", "PAGESIZE", "NUMBER(phys_base)",
        "SYMBOL(init_top_pgt)", "NUMBER(pgtable_l5_enabled)", "SIZE(page)", "OFFSET(page.flags)",
        "LENGTH(mem_section)", "NUMBER(SECTION_SIZE_BITS)", "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"]


def mutate(rnd, data):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.randrange(8)
        if op == 0 and b:
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 2:
            i = rnd.randint(0, len(b))
            b[i:i] = rnd.choice(TOKENS)
        elif op == 3 and b:
            i = rnd.randrange(len(b))
            del b[i:i + rnd.randint(1, 64)]
        elif op == 4:
            lines = bytes(b).split(b"\n")
            if lines:
                i = rnd.randrange(len(lines))
                lines.insert(rnd.randrange(len(lines) + 1), lines[i])
            b = bytearray(b"\n".join(lines))
        elif op == 5:
            # replace a value with a bad token
            lines = bytes(b).split(b"\n")
            i = rnd.randrange(len(lines))
            k, sep, _ = lines[i].partition(b"=")
            lines[i] = k + b"=" + rnd.choice(TOKENS)
            b = bytearray(b"\n".join(lines))
        elif op == 6:
            b = b[:rnd.randint(0, len(b))]
        else:
            k = rnd.choice(KEYS).encode()
            b += b"\n" + k + b"=" + rnd.choice(TOKENS)
    return bytes(b)


def check_info(raw):
    info = VmcoreInfo(raw)
    VmcoreInfo(raw.decode("latin-1"))
    for k in KEYS:
        k in info
        info.get(k)
    calls = [
        lambda: info.osrelease, lambda: info.build_id, lambda: info.kaslr_offset,
        lambda: info.pgtable_levels, lambda: info.version,
        lambda: info.number("phys_base"), lambda: info.number("SECTION_SIZE_BITS", 27),
        lambda: info.number("PAGE_BUDDY_MAPCOUNT_VALUE"), lambda: info.symbol("init_top_pgt"),
        lambda: info.symbol("mem_section"), lambda: info.size("page"),
        lambda: info.offset("page.flags"), lambda: info.length("mem_section"),
    ]
    for c in calls:
        try:
            v = c()
        except PfnscopeError as e:
            assert "\n" not in str(e), str(e)
            continue
        assert v is None or isinstance(v, (int, str, tuple)), v


def check_scan(rnd, raw, path):
    name = b"VMCOREINFO\0"
    desc = raw
    if rnd.random() < 0.7:
        hdr = struct.pack("<III", len(name), len(desc), 0)
    else:
        hdr = struct.pack("<III", rnd.choice([0, 11, 12, 0xffffffff]),
                          rnd.choice([0, len(desc), len(desc) + 100, 65536, 65537, 0xffffffff]),
                          rnd.choice([0, 1]))
    note = hdr + name + b"\0" * (-len(name) % 4) + desc
    pre = os.urandom(rnd.choice([0, 1, 11, 12, 100, 4096]))
    post = os.urandom(rnd.choice([0, 1, 7, 100]))
    if rnd.random() < 0.3:
        note = note[:rnd.randint(0, len(note))]
    blob = pre + note + post
    with open(path, "wb") as f:
        f.write(blob)
    try:
        info, off = scan_vmcoreinfo(path)
    except PfnscopeError as e:
        assert "\n" not in str(e), str(e)
        return
    assert 0 <= off < len(blob), off
    assert "OSRELEASE" in info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--artifacts", default="build/fuzz/artifacts")
    ap.add_argument("corpus")
    a = ap.parse_args()
    seeds = [open(os.path.join(a.corpus, f), "rb").read() for f in sorted(os.listdir(a.corpus))]
    assert seeds, f"no seeds in {a.corpus}"
    seed = a.seed if a.seed is not None else int(time.time())
    rnd = random.Random(seed)
    os.makedirs(a.artifacts, exist_ok=True)
    end = time.time() + a.seconds
    n = findings = 0
    pool = list(seeds)
    with tempfile.TemporaryDirectory() as tmp:
        ram = os.path.join(tmp, "ram")
        while time.time() < end:
            base = rnd.choice(pool)
            raw = mutate(rnd, base)
            try:
                check_info(raw)
                check_scan(rnd, raw, ram)
            except Exception:
                findings += 1
                p = os.path.join(a.artifacts, f"vmcoreinfo-{findings}")
                with open(p, "wb") as f:
                    f.write(raw)
                with open(p + ".txt", "w") as f:
                    f.write(traceback.format_exc())
                if findings <= 3:
                    sys.stderr.write(f"finding {p}:\n{traceback.format_exc()}\n")
            n += 1
            if n % 64 == 0 and len(pool) < 256:
                pool.append(raw)  # keep some mutants as new bases
    print(f"vmcoreinfo (Python loop, seed {seed}): {n} executions ({n / a.seconds:.0f}/s) "
          f"in {a.seconds:.0f} s, {findings} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
