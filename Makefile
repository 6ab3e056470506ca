# pfnscope — top-level build.  Each area owns a fragment in mk/:
#   mk/core.mk    C core library, unit tests (plain + ASan/UBSan), fuzzer
#   mk/lab.mk     VM lab: kernels, initramfs, guests, dumps, lab tests
#   mk/python.mk  C extension, Python package, CLI, Python/lab-backed tests
# `make check` is the README's test command; `make demo` the main job.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
export PFNSCOPE_CACHE ?= $(HOME)/.cache/pfnscope
BUILD := build
CC ?= cc
CFLAGS_COMMON := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude

.PHONY: all deps check demo bench install clean
all: core python

deps:
	@./scripts/deps.sh

-include mk/*.mk

# Ordered: fast C tests first, then the lab, then everything that reads the lab.
check: deps
	$(MAKE) check-core
	$(MAKE) check-lab
	$(MAKE) check-lab-kvm
	$(MAKE) check-arm64
	$(MAKE) check-python

clean:
	rm -rf $(BUILD)
