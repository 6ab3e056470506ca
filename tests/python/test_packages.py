"""pfnscope as a user installs it, on a lab dump:

* the wheel: `pip wheel` (no index, no build isolation: no PyPI) builds a
  wheel carrying the C extension; installed with pip into a fresh directory,
  `python3 -m pfnscope` and the `pfnscope` console script run from it;
* the Debian package: tests/pkg/deb-install.sh builds it with
  dpkg-buildpackage and installs it with apt into a clean Debian 12 chroot,
  apt resolving python3-drgn and libkdumpfile; `pfnscope -c DUMP -s VMLINUX
  walk` runs there.  The build and the install are cached by a hash of the
  packaging inputs; the transcript of the install is kept next to the .deb.

Each output must equal the source tree's CLI on the same dump.
"""
import functools
import json
import os
import shutil
import subprocess
import zipfile

import lab_support as L

ROOT = L.ROOT
DEB_INSTALL = os.path.join(ROOT, "tests", "pkg", "deb-install.sh")
KEY = ("6.1", "max", "healthy")
FORMAT = "kdump-real"
MAPPING = "devmem_private_lowram_cow"


@functools.lru_cache(maxsize=None)
def target():
    fx = L.fixture(*KEY)
    m = next(m for m in fx.manifest if m.get("kind") == MAPPING)
    return (os.path.realpath(fx.dumps[FORMAT]), os.path.realpath(fx.vmlinux),
            int(m["pid"]), int(m["start"], 16))


def walk_args(json_out):
    dump, vml, pid, addr = target()
    return ["-c", dump, "-s", vml, "walk", "-p", str(pid), "-a", hex(addr)] + (
        ["--json"] if json_out else [])


@functools.lru_cache(maxsize=None)
def tree_walk(json_out):
    r = L.run(*walk_args(json_out))
    assert r.rc == 0 and r.out, r
    return r.out


def _ignore(d, names):
    return [n for n in names if n.endswith((".so", ".pyc")) or n in ("__pycache__", "build")
            or n.endswith(".egg-info")]


def test_wheel_builds_installs_and_runs(tmp_path):
    src = tmp_path / "src"
    for p in ("setup.py", "README.md"):
        os.makedirs(src, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, p), src / p)
    for p in ("include", "src", "plugins"):
        shutil.copytree(os.path.join(ROOT, p), src / p, ignore=_ignore)
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = ["/usr/bin/python3", "-m", "pip"]
    cp = subprocess.run(pip + ["wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                               "-w", str(wheels), str(src)],
                        capture_output=True, text=True, timeout=900)
    assert cp.returncode == 0, cp.stderr[-4000:]
    whl = [w for w in os.listdir(wheels) if w.endswith(".whl")]
    assert len(whl) == 1 and whl[0].startswith("pfnscope-0.1.0-cp3"), whl
    names = zipfile.ZipFile(wheels / whl[0]).namelist()
    assert any(n.startswith("pfnscope/_core.cpython-") and n.endswith(".so") for n in names), names
    ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    eps = zipfile.ZipFile(wheels / whl[0]).read(ep).decode()
    assert "pfnscope = pfnscope.cli:script" in eps and "[drgn.plugins]" in eps, eps
    cp = subprocess.run(pip + ["install", "-q", "--no-deps", "--no-index", "--target", str(site),
                               str(wheels / whl[0])], capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-4000:]
    # run away from the tree: only the installed copy is importable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), PFNSCOPE_NO_PROGRESS="1")
    where = subprocess.run(["/usr/bin/python3", "-c", "import pfnscope._core as c; print(c.__file__)"],
                           capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert where.stdout.strip().startswith(str(site)), (where.stdout, where.stderr)
    for argv in (["/usr/bin/python3", "-m", "pfnscope"], [str(site / "bin" / "pfnscope")]):
        for js in (True, False):
            cp = subprocess.run(argv + walk_args(js), capture_output=True, text=True,
                                cwd=str(tmp_path), env=env, timeout=900)
            assert cp.returncode == 0, (argv, cp.stderr[-3000:])
            assert cp.stdout == tree_walk(js), argv
    cp = subprocess.run([str(site / "bin" / "pfnscope"), "--help"], capture_output=True, text=True,
                        env=env)
    assert cp.returncode == 0 and "walk" in cp.stdout


def test_deb_installs_in_clean_chroot_and_walks():
    cp = subprocess.run([DEB_INSTALL], capture_output=True, text=True, timeout=3600)
    assert cp.returncode == 0, cp.stderr[-4000:]
    d = cp.stdout.strip().splitlines()[-1]
    deb = open(os.path.join(d, "ready")).read().strip()
    transcript = open(os.path.join(d, "transcript.txt")).read()
    # apt resolved the dependencies from Debian and installed the package
    installed = dict(line.split("\t", 1) for line in transcript.splitlines()
                     if "\t" in line and not line.startswith("#"))
    assert installed.get("pfnscope") == "0.1.0", transcript[-3000:]
    assert installed.get("python3-drgn", "").startswith("0.0.22"), installed
    assert installed.get("libkdumpfile10:amd64", "").startswith("0.5"), installed
    info = subprocess.run(["dpkg-deb", "-f", os.path.join(d, deb), "Depends"],
                          capture_output=True, text=True).stdout
    assert "python3-drgn" in info and "libkdumpfile10" in info and "libdeflate0" in info, info
    files = subprocess.run(["dpkg-deb", "-c", os.path.join(d, deb)], capture_output=True,
                           text=True).stdout
    assert "./usr/bin/pfnscope\n" in files and "dist-packages/pfnscope/_core.cpython-" in files, files
    if os.path.exists(os.path.join(ROOT, "docs", "pfnscope.1")):
        assert "./usr/share/man/man1/pfnscope.1.gz" in files, files
    dump, vml, pid, addr = target()
    log = []
    for js, prog in ((False, ["pfnscope"]), (True, ["pfnscope"]), (True, ["python3", "-m", "pfnscope"])):
        argv = prog + walk_args(js)
        r = subprocess.run([DEB_INSTALL, "run", "-r", os.path.dirname(dump), "-r", os.path.dirname(vml),
                            "--"] + argv, capture_output=True, text=True, timeout=900)
        log.append("# " + " ".join(argv) + "\n" + r.stdout + r.stderr)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout == tree_walk(js)
        if js:
            ents = [json.loads(x) for x in r.stdout.splitlines() if '"entry"' in x]
            assert any(e["special"] for e in ents), ents
    with open(os.path.join(d, "walk-transcript.txt"), "w") as f:
        f.write("\n".join(log))
