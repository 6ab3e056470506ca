# VM lab (tests/vm): kernels, guest programs, test module, fixtures, lab tests.
#   make lab         kernels + guest programs + module + every fixture of the check set
#                    (healthy/buggy: lab.DEFAULT_SET; busy: lab.BUSY_SET, tests/vm/busy)
#   make check-lab   lab, then pytest tests/vm (fails when a fixture cannot be built)
#   make check-lab-vfio  only the VFIO family (tests/vm/vfio: 6.1, 6.12, 7 on q35 + VT-d)
#   make demo        the README's main job (mk/demo.mk: fixture + pfnscope check/walk)
# PFNSCOPE_LAB_KERNELS narrows the set: "6.1", "6.1 7", or "6.1:max:healthy,7:max:busy".
# PFNSCOPE_LAB_JOBS: fixture builds in parallel (default 2).
LAB_PY ?= /usr/bin/python3
LAB_KERNEL_GENS = $(shell cd $(CURDIR) && $(LAB_PY) -c 'from tests.vm import lab; print(" ".join(dict.fromkeys(i[0] for i in lab.default_set())))')

.PHONY: lab lab-guest lab-kernels lab-fixtures lab-vfio check-lab check-lab-vfio demo lab-clean
lab-guest:
	$(MAKE) -C tests/vm/guest
	$(MAKE) -C tests/vm/busy

# the lock lab.py takes around the same script (tests/vm/lab.py kernels-GEN.lock):
# a bench and a check run together would otherwise race on vmlinux.tmp
LAB_CACHE ?= $(or $(PFNSCOPE_CACHE),$(HOME)/.cache/pfnscope)
lab-kernels:
	@mkdir -p $(LAB_CACHE)
	@for g in $(LAB_KERNEL_GENS); do flock $(LAB_CACHE)/kernels-$$g.lock ./tests/vm/kernels.sh $$g || exit 1; done

# lab.py builds the module per kernel (make -C tests/vm/module KDIR=...) for buggy fixtures
lab-fixtures: lab-guest lab-kernels
	$(LAB_PY) -m tests.vm.lab build
	$(LAB_PY) -m tests.vm.lab build vfio

# the VFIO family alone (its kernels come through lab.py)
lab-vfio: lab-guest
	$(LAB_PY) -m tests.vm.lab build vfio

check-lab-vfio: deps lab-vfio python
	$(LAB_PY) -m pytest -q -p no:cacheprovider tests/vm/test_vfio.py

lab: lab-fixtures

check-lab: deps lab python
	$(LAB_PY) -m pytest -q -p no:cacheprovider tests/vm

# the README's main job: boot the lab's default scenario, dump it, run pfnscope on it
demo: demo-run

lab-clean:
	rm -rf $(PFNSCOPE_CACHE)/lab
