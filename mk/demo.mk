# `make demo-run` (the python area's demo; the lead wires `demo` to it):
# deps + build, the lab's healthy 6.1 fixture (boot, scenario, dumps), then
# `pfnscope check` on the real kdump and `pfnscope walk` on the private
# /dev/mem mapping (MAP_PRIVATE of low RAM, partly written: special linear
# pfnmap PTEs next to COWed anon pages).
DEMO_PY ?= /usr/bin/python3
DEMO_KIND ?= devmem_private_lowram_cow

.PHONY: demo-run
demo-run: deps python lab-guest
	@mkdir -p $(or $(PFNSCOPE_CACHE),$(HOME)/.cache/pfnscope)
	flock $(or $(PFNSCOPE_CACHE),$(HOME)/.cache/pfnscope)/kernels-6.1.lock ./tests/vm/kernels.sh 6.1
	$(DEMO_PY) -m tests.vm.lab build 6.1 max healthy
	@set -e; eval "$$($(DEMO_PY) -c 'from tests.vm import lab; import shlex; \
	  fx = lab.fixture("6.1", "max", "healthy"); \
	  m = [e for e in fx.manifest if e.get("kind") == "$(DEMO_KIND)"]; \
	  assert m, "no $(DEMO_KIND) mapping in the fixture manifest"; \
	  print("DUMP=%s VMLINUX=%s PID=%s START=%s" % (shlex.quote(fx.dumps["kdump-real"]), \
	        shlex.quote(fx.vmlinux), m[0]["pid"], m[0]["start"]))')"; \
	echo; echo "\$$ pfnscope -c $$DUMP -s $$VMLINUX check"; \
	rc=0; ./bin/pfnscope -c "$$DUMP" -s "$$VMLINUX" check --summary || rc=$$?; \
	echo "(exit status $$rc: 0 = nothing at or above high)"; \
	echo; echo "\$$ pfnscope -c $$DUMP -s $$VMLINUX vmas -p $$PID   (the mapping's process)"; \
	./bin/pfnscope -c "$$DUMP" -s "$$VMLINUX" vmas -p $$PID; \
	echo; echo "\$$ pfnscope -c $$DUMP -s $$VMLINUX walk -p $$PID -a $$START   ($(DEMO_KIND))"; \
	./bin/pfnscope -c "$$DUMP" -s "$$VMLINUX" walk -p $$PID -a $$START; \
	test $$rc -le 1
