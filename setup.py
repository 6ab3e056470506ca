# SPDX-License-Identifier: MIT
"""Build the pfnscope Python package and its C extension pfnscope._core.

The extension compiles the whole C core (src/core), the file readers
(src/readers) and the CPython glue (src/python/*.c).  The struct pfs_layout
members that pfnscope._core.Layout accepts come from
include/pfnscope/layout-fields.def, as the struct itself does, so the core
may add layout fields without touching the extension.
"""
import glob
import os

from setuptools import Extension, setup


SOURCES = (sorted(glob.glob("src/core/*.c")) + sorted(glob.glob("src/readers/*.c"))
           + sorted(glob.glob("src/python/*.c")))

core = Extension(
    "pfnscope._core",
    sources=SOURCES,
    include_dirs=["include"],
    libraries=["kdumpfile", "deflate"],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-Wno-missing-field-initializers"],
    depends=(glob.glob("include/pfnscope/*.h") + glob.glob("include/pfnscope/*.def")
             + glob.glob("src/core/*.h") + glob.glob("src/readers/*.h")
             + glob.glob("src/python/*.h")),
)

setup(
    name="pfnscope",
    version="0.1.0",
    description="Walk a VMA's page tables in a live kernel or crash dump (drgn extension)",
    license="MIT",
    package_dir={"": "src/python"},
    packages=["pfnscope"],
    ext_modules=[core],
    # drgn 0.0.27+ imports every module of group drgn.plugins when it starts:
    # pfnscope.drgn_plugin registers the `pfnscope` drgn command (0.0.33+).
    entry_points={"console_scripts": ["pfnscope = pfnscope.cli:script"],
                  "drgn.plugins": ["pfnscope = pfnscope.drgn_plugin"]},
    python_requires=">=3.9",
)
