# arm64 lab (tests/arm64): Debian's arm64 kernels under qemu-system-aarch64 (TCG),
# a fixture family apart from tests/vm (own sources hash, cache $PFNSCOPE_CACHE/arm64).
#   make lab-arm64     kernels (private arm64 apt), cross-built guest programs, fixtures
#   make check-arm64   lab-arm64, then pytest tests/arm64: the fixtures' dumps, and
#                      the GDB command (gdb-multiarch) on live guests of the healthy
#                      fixtures' kernels and CPUs (test_live_gdb.py, one at a time)
# PFNSCOPE_ARM64_KERNELS narrows the set: "6.1" or "6.12:cortex-a57:healthy".
.PHONY: lab-arm64 check-arm64
lab-arm64:
	$(LAB_PY) -m tests.arm64.lab build

check-arm64: deps lab-arm64 python
	$(LAB_PY) -m pytest -q -p no:cacheprovider tests/arm64
