# crash extension (plugins/crash): a shim that embeds Python and runs
# pfnscope.crash inside crash.  Built against crash's defs.h (the `crash`
# package: /usr/include/crash/defs.h) and this Python, with crash's extension
# conventions (-D<arch>, -fPIC -shared -rdynamic, extensions/Makefile).
#   make crash-ext     build/pfnscope_crash.so, then in crash: extend build/pfnscope_crash.so
.PHONY: crash-ext check-crash
CRASH_DEFS ?= /usr/include/crash
CRASH_ARCH ?= $(shell uname -m | tr a-z A-Z)
CRASH_EXT := $(BUILD)/pfnscope_crash.so
PY_CFLAGS = $(shell $(PYTHON) -c 'import sysconfig as s; print("-I" + s.get_paths()["include"])')
PY_LIBDIR = $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("LIBDIR"))')
PY_LIBNAME = $(shell $(PYTHON) -c 'import sysconfig as s; v = s.get_config_var; print((v("LDLIBRARY") or "").removeprefix("lib").removesuffix(".so").removesuffix(".a"))')
PY_SONAME = $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("INSTSONAME"))')

crash-ext: $(CRASH_EXT) python

$(CRASH_DEFS)/defs.h:
	@echo "crash-ext: no $@: install Debian's crash package (make deps)" >&2; exit 2

$(CRASH_EXT): plugins/crash/pfnscope_crash.c $(CRASH_DEFS)/defs.h
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -g -fPIC -shared -rdynamic -Wl,-z,nodelete \
	  -D$(CRASH_ARCH) -I$(CRASH_DEFS) $(PY_CFLAGS) \
	  -DPFNSCOPE_LIBPYTHON='"$(PY_SONAME)"' -DPFNSCOPE_PYTHONPATH='"$(CURDIR)/src/python"' \
	  -o $@ $< -L$(PY_LIBDIR) -l$(PY_LIBNAME) -ldl

check-crash: crash-ext
	PYTHONPATH=$(CURDIR)/src/python $(PYTHON) -m pytest -q tests/python/test_crash_ext.py
