# Benchmark (tests/bench, issue 6): pfnscope against crash, drgn 0.0.22 / 0.3 and the
# physical limit on a 2 GiB lab guest (1 GiB populated anon VMA, 256 MiB /dev/mem
# pfnmap, 200 small processes), dumped as QEMU ELF (paging=true) and real kdump.
#   make bench         deps + extension, the sid chroot (upstream drgn + crash, made once),
#                      the bench guest (cached), every measurement; prints the table,
#                      writes build/bench/results.json and README.md's Benchmark section
#   make bench-smoke   the same pipeline on the lab's small healthy 6.1 fixture (what
#                      `make check` runs through tests/python/test_bench_smoke.py)
# BENCH_ARGS: e.g. "--repeat 5", "--dumps kdump-real", "--no-chroot", "--kernel 6.12".
# Not a timed test: nothing fails on time; tools that disagree on the pfns fail.
BENCH_PY ?= /usr/bin/python3
BENCH_ARGS ?=

.PHONY: bench bench-smoke
bench: deps python
	$(BENCH_PY) -m tests.bench.bench --readme $(BENCH_ARGS)

bench-smoke: python
	PYTHONPATH=$(CURDIR)/src/python $(BENCH_PY) -m pytest -q -p no:cacheprovider tests/python/test_bench_smoke.py

# Scale (tests/scale): whole-system check on an 8 GiB guest (2,000 processes,
# 6 GiB populated in a mix of VMA kinds) against the 2 GiB bench guest, both
# dumps: wall, CPU, peak RSS, entries/s, growth per entry.  Bench only (not
# in make check); builds its fixture the first time (~10 min under TCG,
# ~7 GB of ELF dump under $PFNSCOPE_CACHE/scale).
.PHONY: bench-scale
bench-scale: deps python
	$(BENCH_PY) -m tests.scale.measure --readme $(SCALE_ARGS)
