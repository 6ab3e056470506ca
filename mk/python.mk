# Python area: the C extension pfnscope._core (setup.py), the package in
# src/python/pfnscope, install for Debian's /usr/bin/python3, Python tests.
.PHONY: python install check-python python-clean

PY_SRC := $(wildcard src/core/*.c src/core/*.h src/readers/*.c src/readers/*.h src/python/*.c src/python/*.h include/pfnscope/*.h include/pfnscope/*.def) setup.py
PY_STAMP := $(BUILD)/python.stamp

# The package's bytecode is compiled here, as dh_python3 does for the Debian
# package: a run from the tree then reads it even where PYTHONDONTWRITEBYTECODE
# is set (otherwise every run compiles the package again: ~0.05 s of start-up).
python: $(PY_STAMP)
	@$(PYTHON) -m compileall -q src/python/pfnscope

$(PY_STAMP): $(PY_SRC)
	$(PYTHON) setup.py -q build_ext --inplace
	@mkdir -p $(BUILD) && touch $@

# Installs the package, the extension and the `pfnscope` console script for
# /usr/bin/python3: by default where Debian's pip puts root installs
# (/usr/local/lib/python3.X/dist-packages, /usr/local/bin); PREFIX=DIR
# installs under DIR instead (Debian's pip then adds local/: DIR/local/bin).
# The man page goes beside the script: share/man/man1 next to the bin/ that
# pip chose (MANDIR=DIR overrides).
PREFIX ?=
MANDIR ?= $(shell $(PYTHON) -c 'import os, sysconfig; b = "$(or $(PREFIX),/usr)"; \
  print(os.path.join(os.path.dirname(sysconfig.get_paths(vars={"base": b, "platbase": b})["scripts"]), "share/man/man1"))')
install: python
	$(PYTHON) -m pip install --no-deps --no-build-isolation --no-index --break-system-packages \
	  $(if $(PREFIX),--prefix=$(PREFIX)) --root-user-action=ignore .
	install -D -m 644 docs/pfnscope.1 $(DESTDIR)$(MANDIR)/pfnscope.1

check-python: python
	PYTHONPATH=$(CURDIR)/src/python $(PYTHON) -m pytest -q tests/python

python-clean:
	rm -rf $(PY_STAMP) build/gen build/lib.* build/temp.* src/python/pfnscope/_core*.so src/python/pfnscope.egg-info

# Live consistency under memory stress (tests/python/test_live_stress.py):
# `make check` runs a few runs of each target; this runs 100 of each
# (-k inside the guest, --qemu-ram from the host at the same time): ~15 s per
# -k run with the kernel's BTF, ~40-60 s on every 10th, which loads the debug
# vmlinux, under TCG; ~35 min in all, nice 10.  Numbers in build/stress/results.json.
.PHONY: check-stress
STRESS_RUNS ?= 100
check-stress: python
	PFNSCOPE_STRESS_RUNS=$(STRESS_RUNS) PFNSCOPE_STRESS_RAM_RUNS=$(STRESS_RUNS) \
	  PYTHONPATH=$(CURDIR)/src/python nice -n 10 $(PYTHON) -m pytest -q -s tests/python/test_live_stress.py
