"""pfnscope inside three generations of drgn, on the same lab dump:

* Debian 12 (host): drgn 0.0.22, Python 3.11, no plugins, no commands;
* Debian 13 (trixie chroot): drgn 0.0.31, Python 3.13, plugins;
* Debian sid (sid chroot): the newest packaged drgn, Python 3.13, plugins and
  the command framework (the ``pfnscope`` drgn command, also in crash mode).

In the chroots pfnscope is built and installed from a copy of this tree with
pip against that suite's Python (the extension included, the drgn.plugins entry
point with it), then tests/drgn/session.py runs inside ``python3 -m drgn -c
VMCORE -s VMLINUX``.  Everything pfnscope prints there must equal what the
host's CLI prints on the same dump (the same JSON lines and exit status).
The chroots are the lab's (tests/vm/chroot.sh), completed by
tests/drgn/provision.sh.
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import lab_support as L

ROOT = L.ROOT
CHROOT_SH = os.path.join(ROOT, "tests", "vm", "chroot.sh")
PROVISION = os.path.join(ROOT, "tests", "drgn", "provision.sh")
SESSION = os.path.join(ROOT, "tests", "drgn", "session.py")
REPL = os.path.join(ROOT, "tests", "drgn", "repl.py")
KEY = ("6.1", "max", "healthy")
FORMAT = "kdump-real"          # makedumpfile -c -d 31: what every drgn opens
MAPPING = "devmem_private_lowram_cow"   # special ptes, a COWed anon page, a finding
SUITES = ("bookworm", "trixie", "sid")
# the tree pip builds from (tests/drgn for session.py)
PACKAGE_INPUTS = ("setup.py", "include", "src", "plugins", "README.md",
                  os.path.join("tests", "drgn"))


def _ignore(d, names):
    return [n for n in names if n.endswith((".so", ".pyc")) or n in ("__pycache__", "build")
            or n.endswith(".egg-info")]


def copy_tree(dest):
    for p in PACKAGE_INPUTS:
        src = os.path.join(ROOT, p)
        dst = os.path.join(dest, p)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=_ignore)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)


@functools.lru_cache(maxsize=None)
def target():
    """(fixture, dump, vmlinux, pid, addr): the manifest's mapping."""
    fx = L.fixture(*KEY)
    m = next(m for m in fx.manifest if m.get("kind") == MAPPING)
    dump = os.path.realpath(fx.dumps[FORMAT])
    return fx, dump, os.path.realpath(fx.vmlinux), int(m["pid"]), int(m["start"], 16)


@functools.lru_cache(maxsize=None)
def host_cli():
    """The host CLI's walk and check JSON on the dump (the reference)."""
    fx, dump, vml, pid, addr = target()
    walk = L.run("-c", dump, "-s", vml, "walk", "-p", str(pid), "-a", hex(addr), "--json", layout_cache=False)
    walk_all = L.run("-c", dump, "-s", vml, "walk", "-p", str(pid), "--all", "--json", layout_cache=False)
    check = L.run("-c", dump, "-s", vml, "check", "--json", layout_cache=False)
    assert walk.rc == 0 and walk.out, walk
    assert walk_all.rc == 0 and len(walk_all.out) > len(walk.out), walk_all
    assert check.rc in (0, 1), check
    return walk, check, walk_all


@functools.lru_cache(maxsize=None)
def host_rmap():
    """(PFN range of the walk's special entries, the host CLI's rmap JSON)."""
    fx, dump, vml, pid, addr = target()
    pfns = [e["pfn"] for e in entries(host_cli()[0].out) if e["special"]]
    assert pfns
    rng = "%#x-%#x" % (min(pfns), max(pfns))
    r = L.run("-c", dump, "-s", vml, "rmap", rng, "--json", layout_cache=False)
    assert r.rc == 0 and entries(r.out), r
    return rng, r


def _sh(argv, timeout=1800):
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return cp


@functools.lru_cache(maxsize=None)
def session(suite, tmp_root):
    """Run tests/drgn/session.py in drgn of the suite; returns (result dict,
    CLI-in-that-suite walk output or None)."""
    fx, dump, vml, pid, addr = target()
    work = os.path.join(tmp_root, suite)
    os.makedirs(work)
    out = os.path.join(work, "session.json")
    if suite == "bookworm":
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src", "python"),
                   PFNSCOPE_NO_PROGRESS="1")
        cp = subprocess.run(["/usr/bin/python3", "-m", "drgn", "-c", dump, "-s", vml, SESSION,
                             out, str(pid), hex(addr), host_rmap()[0]],
                            capture_output=True, text=True, timeout=1800, env=env)
        assert cp.returncode == 0 and os.path.exists(out), (cp.stdout, cp.stderr[-3000:])
        return json.load(open(out)), None
    cp = _sh([PROVISION, suite])
    assert cp.returncode == 0, cp.stderr
    src = os.path.join(work, "src")
    site = os.path.join(work, "site")
    copy_tree(src)
    binds = ["-r", os.path.dirname(dump), "-r", os.path.dirname(vml), "-w", work]

    def run(*cmd):
        return _sh([CHROOT_SH, suite, "run", *binds, "-C", work, "--", *cmd])

    # pip builds the extension against the suite's Python and installs the
    # package with its entry points (console script, drgn.plugins)
    cp = run("python3", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
             "--no-index", "--target", site, src)
    assert cp.returncode == 0, ("pip install in " + suite, cp.stdout[-2000:], cp.stderr[-4000:])
    # the CLI in the suite reads the debug vmlinux, as the drgn session does
    env = ["env", "PYTHONPATH=" + site, "PFNSCOPE_NO_PROGRESS=1", "PFNSCOPE_LAYOUT_CACHE=0"]
    cp = run(*env, "python3", "-m", "drgn", "-c", dump, "-s", vml,
             os.path.join(src, "tests", "drgn", "session.py"), out, str(pid), hex(addr),
             host_rmap()[0])
    assert cp.returncode == 0 and os.path.exists(out), (suite, cp.stdout[-2000:], cp.stderr[-4000:])
    res = json.load(open(out))
    cli = run(*env, os.path.join(site, "bin", "pfnscope"), "-c", dump, "-s", vml,
              "walk", "-p", str(pid), "-a", hex(addr), "--json")
    return res, cli


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    # under /tmp: the chroots bind it at the same path
    return str(tmp_path_factory.mktemp("drgn-gen"))


def lines(s):
    return [json.loads(x) for x in s.splitlines() if x.strip()]


def entries(s):
    return [o for o in lines(s) if o.get("type") == "entry"]


@pytest.mark.parametrize("suite", SUITES)
def test_import_pfnscope_in_drgn_session(suite, tmp_root):
    """import pfnscope works in a drgn session on the dump, against that
    suite's Python; the CLI run on drgn's Program (pfnscope.drgn_plugin.run)
    prints the same JSON as the host CLI, and the Python API's walk gives the
    same entries."""
    walk, check, walk_all = host_cli()
    res, _ = session(suite, tmp_root)
    want_py = {"bookworm": "3.11"}.get(suite)
    if want_py:
        assert res["python"] == want_py, res
    else:
        assert res["python"] != "3.11", res  # the suite's own Python, not the host's
    assert ".cpython-%s" % res["python"].replace(".", "") in os.path.basename(res["core_file"]), res
    assert res["run_walk"]["error"] is None and res["run_walk"]["rc"] == 0, res["run_walk"]
    assert lines(res["run_walk"]["out"]) == lines(walk.out)
    assert res["run_walk_all"]["rc"] == 0, res["run_walk_all"]
    assert lines(res["run_walk_all"]["out"]) == lines(walk_all.out)
    rmap = host_rmap()[1]
    assert res["run_rmap"]["rc"] == 0 and lines(res["run_rmap"]["out"]) == lines(rmap.out), \
        res["run_rmap"]
    assert res["run_check"]["error"] is None, res["run_check"]
    assert res["run_check"]["rc"] == check.rc
    assert lines(res["run_check"]["out"]) == lines(check.out)
    assert res["api_walk"]["error"] is None, res["api_walk"]
    api = lines(res["api_walk"]["out"])
    assert api and api == entries(walk.out)
    # something that can differ: special ptes and the COWed anon page are there
    assert any(e["special"] for e in api) and any(not e["special"] for e in api), api


def _version(v):
    return tuple(int(x) for x in v.split("+")[0].split(".")[:3])


@pytest.mark.parametrize("suite", SUITES)
def test_drgn_plugin_and_command(suite, tmp_root):
    """Where drgn has plugins (0.0.27+) it loaded pfnscope's entry point
    before the script ran and called its drgn_prog_set hook; where it has
    commands (0.0.33+) `pfnscope walk ...` and `crash pfnscope walk ...` run
    inside drgn and print the host CLI's JSON."""
    walk, check, _ = host_cli()
    res, cli = session(suite, tmp_root)
    v = _version(res["drgn"])
    if suite == "bookworm":
        assert v == (0, 0, 22), res["drgn"]
    if suite == "trixie":
        assert v >= (0, 0, 27), res["drgn"]
    if suite == "sid":
        assert v >= (0, 0, 33), res["drgn"]   # the generation with commands
    if v >= (0, 0, 27):
        assert res["plugin_loaded"], res
        assert res["prog_set_calls"] >= 1, res
    else:
        assert not res["plugin_loaded"], res
    if v >= (0, 0, 33):
        assert "default" in res["commands"], res
        for k in ("command_walk", "command_redirect", "command_pipe") + (
                ("crash_walk",) if "crash" in res["commands"] else ()):
            assert res[k]["error"] is None, (k, res[k])
            assert res[k]["out"] is not None and lines(res[k]["out"]) == lines(walk.out), k
        assert res["command_rmap"]["error"] is None, res["command_rmap"]
        assert lines(res["command_rmap"]["out"]) == lines(host_rmap()[1].out)
        cc = res["command_check"]
        if check.rc == 0:
            assert cc["error"] is None, cc
        else:  # the CLI's exit status 1 is drgn's CommandExitStatusError
            assert "status %d" % check.rc in (cc["error"] or ""), cc
        assert lines(cc["out"]) == lines(check.out)
        bad = res["command_bad_pid"]
        assert bad["out"] == "" and "status 2" in (bad["error"] or ""), bad
        assert bad["stderr"].startswith("pfnscope: ") and "999999" in bad["stderr"], bad
        assert len(bad["stderr"].splitlines()) == 1 and "Traceback" not in bad["stderr"], bad
    else:
        assert res["commands"] == [], res
    if cli is not None:  # the suite's own pfnscope console script (pip install)
        assert cli.returncode == 0, (suite, cli.stderr[-3000:])
        assert lines(cli.stdout) == lines(walk.out)
    print("\n%s: drgn %s python %s plugin=%s commands=%s" % (
        suite, res["drgn"], res["python"], res["plugin_loaded"], res["commands"]), file=sys.stderr)


_ESC = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[=>])")


def test_pfnscope_command_at_drgn_prompt_sid(tmp_root):
    """A user at sid drgn's interactive prompt (a pseudo-terminal) types
    `%pfnscope walk ... --json`: the output is the host CLI's JSON."""
    walk, _, _ = host_cli()
    res, _ = session("sid", tmp_root)
    assert "default" in res["commands"], res
    fx, dump, vml, pid, addr = target()
    work = os.path.join(tmp_root, "sid")
    out = os.path.join(tmp_root, "sid-prompt.txt")
    typed = "%%pfnscope walk -p %d -a %#x --json\n" % (pid, addr)
    cp = subprocess.run(["/usr/bin/python3", REPL, out, "--", CHROOT_SH, "sid", "run",
                         "-r", os.path.dirname(dump), "-r", os.path.dirname(vml), "-w", work, "--",
                         "env", "TERM=xterm", "NO_COLOR=1", "PYTHONPATH=" + os.path.join(work, "site"),
                         "python3", "-m", "drgn", "-q", "-c", dump, "-s", vml],
                        input=typed, capture_output=True, text=True, timeout=900)
    text = _ESC.sub("", open(out, encoding="utf-8", errors="replace").read())
    assert cp.returncode == 0, (cp.returncode, text[-3000:])
    got = [json.loads(x) for x in re.split(r"[\r\n]+", text) if x.startswith("{")]
    assert got == lines(walk.out), text[-3000:]
