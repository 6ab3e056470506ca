"""pyflakes over the product's Python (the package, the GDB plugin, the
CLI script): no unused or undefined name, no function defined twice in a
module (a second def of a name silently replaces the first for every
caller in the module)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCT = [os.path.join(ROOT, p) for p in ("src/python/pfnscope", "plugins/gdb/pfnscope.py",
                                           "bin/pfnscope")]


def pyflakes(*paths):
    return subprocess.run([sys.executable, "-m", "pyflakes", *paths], capture_output=True,
                          text=True)


def test_pyflakes_finds_a_second_def(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f(a):\n    return a\n\n\ndef f(a, b):\n    return b\n")
    r = pyflakes(str(p))
    assert r.returncode == 1 and "redefinition of unused 'f'" in r.stdout, (r.stdout, r.stderr)


def test_product_is_pyflakes_clean():
    r = pyflakes(*PRODUCT)
    assert r.returncode == 0 and not r.stdout and not r.stderr, r.stdout + r.stderr
