# Nested-KVM lab (tests/kvm): an outer TCG guest with emulated AMD SVM + NPT runs
# KVM; a small VMM (tests/kvm/vmm.c) runs a real-mode nested guest over three
# memslots; truth + dumps per kernel and host paging mode (kvmlab.KVM_SET).
#   make lab-kvm         KVM's modules + debug files (tests/kvm/kvm-modules.sh) and
#                        every fixture of KVM_SET, one outer guest at a time
#   make check-lab-kvm   lab-kvm, then pytest tests/kvm (fails when a fixture cannot be built)
# PFNSCOPE_KVM_LAB narrows the set: "6.1" or "6.1:epyc:healthy,7:max:buggy".
# Cache: $(PFNSCOPE_CACHE)/kvm/{kernels,lab} (~300-380 MB per fixture on disk: two sparse
# ELF dumps, kdump-zlib, two real kdumps).
.PHONY: lab-kvm check-lab-kvm lab-kvm-clean
lab-kvm: lab-kernels
	$(MAKE) -C tests/kvm
	$(LAB_PY) -m tests.kvm.kvmlab build

check-lab-kvm: deps lab-kvm python
	$(LAB_PY) -m pytest -q -p no:cacheprovider tests/kvm

lab-kvm-clean:
	rm -rf $(PFNSCOPE_CACHE)/kvm/lab
