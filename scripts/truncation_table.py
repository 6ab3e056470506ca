#!/usr/bin/python3
"""The truncation table: format x cut point x result, on cached lab dumps.

Runs tests/python/test_partial_dumps.py's own steps (the same cuts, the same
copy, the same comparison with the whole dump and the same assertions) on
each lab dump format of each fixture given, outside pytest, and prints one
Markdown table per fixture: per cell "A / U / N" = entries agreeing with the
whole dump / entries "unreadable" (their struct page is gone) / entries not
read (their task or VMA is reported as not read), or "error" (refused with
one line), "whole" (the cut left every byte the headers describe).  A cell
whose contract assertion fails reads "FAIL" and the script exits 1.

    scripts/truncation_table.py [KERNEL:CPU:SCENARIO ...]   (default 6.1:max:healthy)

Needs the extension built (make python) and the fixtures cached; builds none.
"""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests", "python"), os.path.join(ROOT, "src", "python"), ROOT]

import lab_support as L  # noqa: E402
import test_partial_dumps as P  # noqa: E402


def cell(key, fmt, cut, tmp):
    fx = L.fixture(*key)
    src = fx.dumps[fmt]
    size = os.path.getsize(src)
    at = P._header_cut(src, fmt) if cut == "header" else size * cut // 100
    dst = os.path.join(tmp, f"{fmt}.cut{cut}")
    P._copy_cut(src, dst, at)
    try:
        if cut == "header":
            r = L.run("-c", dst, "-s", fx.vmlinux, "tasks", "--json")
            L.assert_clean_error(r, dst, "truncated")
            return "error", P._short(r.err.strip(), dst)
        row = P._compare(key, fmt, dst, f"{fmt} cut at {cut}%",
                         expect_missing=P._expected_missing(src, fmt, at))
    except AssertionError as e:
        return "FAIL", str(e).splitlines()[0][:200]
    finally:
        os.unlink(dst)
    if row["result"] in ("error", "whole"):
        return (row["result"] if row["result"] == "error" else f"whole ({row['agree']:,})",
                row["message"])
    return f"{row['agree']:,} / {row['unreadable']:,} / {row['not_read']:,}", row["message"]


def main(argv):
    keys = [tuple(a.split(":")) for a in argv] or [("6.1", "max", "healthy")]
    failed = False
    for key in keys:
        notes = []
        full = None
        rows = []
        with tempfile.TemporaryDirectory(prefix="pfnscope-cuts-") as tmp:
            for fmt in L.FORMATS:
                ents, _ = P._full(key, fmt)
                full = len(ents)
                cells = []
                for cut in P.CUTS:
                    res, msg = cell(key, fmt, cut, tmp)
                    failed |= res == "FAIL"
                    cells.append(res)
                    notes.append(f"- {fmt} {cut}{'' if cut == 'header' else '%'}: {msg}")
                rows.append((fmt, cells))
        print(f"\n{L.key_id(key)}: {full:,} entries in the whole dump "
              "(agree / unreadable / not read)\n")
        print("| format | " + " | ".join(f"{c}{'' if c == 'header' else '%'}" for c in P.CUTS) + " |")
        print("|---|" + "---|" * len(P.CUTS))
        for fmt, cells in rows:
            print(f"| {fmt} | " + " | ".join(cells) + " |")
        print()
        print("\n".join(notes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
