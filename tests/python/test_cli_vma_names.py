"""VMA names: `vmas --json` gives every VMA the name /proc/PID/maps prints in
its path column (fs/proc/task_mmu.c get_vma_name): the file's path (with
d_dname names and " (deleted)"), the special mappings' [vvar], [vdso],
[vvar_vclock], [heap], [stack]; null exactly where maps prints nothing.
`file` stays the resolved file only (null for every anonymous VMA)."""
import pytest

import lab_support as L

KEYS = [("6.1", "max", "healthy"), ("7", "max", "healthy"), ("6.12", "max", "healthy"),
        ("5.10", "max", "healthy")]
FORMATS = ("kdump-real-d23", "elf-paging")
SPECIAL = ("[vvar]", "[vdso]", "[vvar_vclock]", "[heap]", "[stack]")


@pytest.mark.parametrize("key", KEYS, ids=[L.key_id(k) for k in KEYS])
@pytest.mark.parametrize("fmt", FORMATS)
def test_vma_names_match_proc_maps(key, fmt):
    fx = L.fixture(*key)
    pids = sorted(fx.maps)
    assert pids, fx.dir
    args = ["-c", fx.dumps[fmt], "-s", fx.vmlinux, "vmas", "--json"]
    for pid in pids:
        args += ["-p", str(pid)]
    r = L.run(*args)
    assert r.rc == 0, r
    got = {}
    for v in r.json():
        assert v["type"] == "vma" and "name" in v, v
        got.setdefault(v["pid"], []).append(v)
    seen = set()
    checked = 0
    for pid in pids:
        want = [m for m in L.parse_maps(fx.maps[pid]) if m["path"] != "[vsyscall]"]
        vmas = got.get(pid, [])
        assert [(int(v["start"], 16), int(v["end"], 16)) for v in vmas] == \
            [(m["start"], m["end"]) for m in want], f"pid {pid}"
        for v, m in zip(vmas, want):
            path = m["path"]
            if not path:
                assert v["name"] is None, (pid, v, m)
                assert v["file"] is None, (pid, v, m)
            elif path in SPECIAL:
                assert v["name"] == path, (pid, v, m)
                assert v["file"] is None, (pid, v, m)
                seen.add(path)
            else:  # a file: the path, anon_inode:[..], socket:[..], /memfd:x (deleted)
                assert v["name"] == path, (pid, v, m)
                assert v["file"] is not None, (pid, v, m)
                if path.startswith("/") and not path.endswith("(deleted)"):
                    assert v["file"] == path, (pid, v, m)
                seen.add("file")
            checked += 1
    assert checked > 10
    # every fixture has a dynamically linked shell with heap, stack and vDSO
    assert {"file", "[vdso]", "[vvar]", "[stack]", "[heap]"} <= seen, seen


def test_vma_name_in_tables():
    """The human vmas/walk headers show the name where there is no file."""
    fx = L.fixture(*KEYS[0])
    pid = sorted(fx.maps)[0]
    specials = [m for m in L.parse_maps(fx.maps[pid]) if m["path"] in SPECIAL]
    assert specials, fx.maps[pid]
    r = L.run("-c", fx.dumps["kdump-real-d23"], "-s", fx.vmlinux, "vmas", "-p", str(pid))
    assert r.rc == 0, r
    lines = {int(ln.split("-", 1)[0], 16): ln for ln in r.out.splitlines()}
    for m in specials:
        assert lines[m["start"]].endswith(" " + m["path"]), (lines[m["start"]], m)
    m = specials[0]
    r = L.run("-c", fx.dumps["kdump-real-d23"], "-s", fx.vmlinux, "walk", "-p", str(pid),
              "-a", hex(m["start"]), "--summary")
    assert r.rc == 0, r
    head = r.out.splitlines()[0]
    assert head.startswith(f"# pid {pid} ") and head.endswith(" " + m["path"]), head
