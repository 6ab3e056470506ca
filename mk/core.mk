# C core: build/libpfnscope.a, unit tests (plain and ASan/UBSan), fuzzers.
.PHONY: core check-core check-core-plain check-core-san check-core-tsan check-core-fuzz check-core-fuzz-btf

CORE_SRC := $(wildcard src/core/*.c)
CORE_HDR := $(wildcard include/pfnscope/*.h include/pfnscope/*.def src/core/*.h)
CORE_OBJ := $(patsubst src/core/%.c,$(BUILD)/core/%.o,$(CORE_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c) tests/unit/runner.c tests/unit/mock.c
UNIT_HDR := $(wildcard tests/unit/*.h)
CORE_CFLAGS := $(CFLAGS_COMMON) -O2 -fPIC
SAN_CC ?= clang
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1
PFNSCOPE_FUZZ_SECONDS ?= 60

core: $(BUILD)/libpfnscope.a

$(BUILD)/core/%.o: src/core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(BUILD)/libpfnscope.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# plain: the library as shipped + the tests
$(BUILD)/unit-tests: $(UNIT_SRC) $(UNIT_HDR) $(BUILD)/libpfnscope.a
	$(CC) $(CFLAGS_COMMON) -O2 -Itests/unit $(UNIT_SRC) $(BUILD)/libpfnscope.a -o $@

# sanitized: core compiled into the test binary with clang
$(BUILD)/unit-tests-san: $(UNIT_SRC) $(UNIT_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(SAN_CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -Itests/unit $(UNIT_SRC) $(CORE_SRC) -o $@

# ThreadSanitizer: the core compiled into the test binary; runs the tests
# whose walks share one kernel across threads (tests/unit/test_parallel.c),
# what the extension's worker threads (-j N) do.
TSAN_FLAGS := -fsanitize=thread -g -O1
$(BUILD)/unit-tests-tsan: $(UNIT_SRC) $(UNIT_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(SAN_CC) $(CFLAGS_COMMON) $(TSAN_FLAGS) -Itests/unit $(UNIT_SRC) $(CORE_SRC) -lpthread -o $@

# Fuzz targets (tests/fuzz/fuzz_*.c), each with its seed corpus in
# tests/fuzz/corpus/NAME.  fuzz-NAME: ASan+UBSan (make check, and the
# replay of long runs); fuzz-fast-NAME: -O2, no sanitizer (long runs).
FUZZ_TARGETS := walk vma task page kdump
FUZZ_FAST_FLAGS := -fsanitize=fuzzer -g -O2
FUZZ_COMMON := tests/fuzz/fuzz_common.h tests/unit/mock.c $(UNIT_HDR)
KDUMP_SRC := src/readers/kdumpfile.c src/readers/diskdump.c src/readers/elfcore.c src/readers/fmap.c
KDUMP_HDR := src/readers/diskdump.h src/readers/elfcore.h src/readers/fmap.h include/pfnscope/readers.h
fuzz_srcs = $(if $(filter kdump,$(1)),$(KDUMP_SRC) src/core/error.c,tests/unit/mock.c $(CORE_SRC))
fuzz_libs = $(if $(filter kdump,$(1)),-lkdumpfile -ldeflate,)

$(BUILD)/fuzz-%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON) $(CORE_SRC) $(CORE_HDR) $(KDUMP_SRC) $(KDUMP_HDR)
	@mkdir -p $(BUILD)
	$(SAN_CC) $(CFLAGS_COMMON) $(FUZZ_FLAGS) -Itests/unit $< $(call fuzz_srcs,$*) $(call fuzz_libs,$*) -o $@

$(BUILD)/fuzz-fast-%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON) $(CORE_SRC) $(CORE_HDR) $(KDUMP_SRC) $(KDUMP_HDR)
	@mkdir -p $(BUILD)
	$(SAN_CC) $(CFLAGS_COMMON) $(FUZZ_FAST_FLAGS) -Itests/unit $< $(call fuzz_srcs,$*) $(call fuzz_libs,$*) -o $@

check-core-plain: $(BUILD)/unit-tests
	./$(BUILD)/unit-tests

check-core-san: $(BUILD)/unit-tests-san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(BUILD)/unit-tests-san

check-core-tsan: $(BUILD)/unit-tests-tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./$(BUILD)/unit-tests-tsan parallel

# make check: each target briefly (PFNSCOPE_FUZZ_SECONDS in all, split
# evenly; the Python VMCOREINFO harness gets one share too).  The repo
# corpus is copied so the fuzzer's additions stay in build/.  One fixed seed:
# every machine walks the same sequence of mutations (a faster one further
# along it), so what `make check` finds is found again.  A finding
# fails the target (libFuzzer exits non-zero and leaves the input in
# build/fuzz/artifacts/).
FUZZ_EACH = $(shell echo $$(( $(PFNSCOPE_FUZZ_SECONDS) / 6 > 1 ? $(PFNSCOPE_FUZZ_SECONDS) / 6 : 1 )))
# (kdump inputs are files: the seeds are the first 74-80 KiB of real dumps,
# a whole 49 KiB kdump-compressed file and a whole 56 KiB ELF core)
FUZZ_OPTS = $$( [ $$t = kdump ] && echo -max_len=131072 -malloc_limit_mb=1000000 || echo -max_len=16384 ) -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1

check-core-fuzz: $(addprefix $(BUILD)/fuzz-,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		rm -rf $(BUILD)/fuzz/corpus-$$t; mkdir -p $(BUILD)/fuzz/corpus-$$t $(BUILD)/fuzz/artifacts; \
		cp tests/fuzz/corpus/$$t/* $(BUILD)/fuzz/corpus-$$t/; \
		echo "fuzz $$t: $(FUZZ_EACH) s"; \
		rc=0; ./$(BUILD)/fuzz-$$t -seed=1 -max_total_time=$(FUZZ_EACH) $(FUZZ_OPTS) \
			-artifact_prefix=$(BUILD)/fuzz/artifacts/$$t- $(BUILD)/fuzz/corpus-$$t \
			> $(BUILD)/fuzz/check-$$t.txt 2>&1 || rc=$$?; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' $(BUILD)/fuzz/check-$$t.txt || true; \
		if [ $$rc -ne 0 ]; then tail -40 $(BUILD)/fuzz/check-$$t.txt; exit 1; fi; \
	done
	PYTHONPATH=src/python $(PYTHON) tests/fuzz/fuzz_vmcoreinfo.py --seconds $(FUZZ_EACH) \
		--artifacts $(BUILD)/fuzz/artifacts tests/fuzz/corpus/vmcoreinfo

# make fuzz: long runs, FUZZ_SECONDS per target (default 1 h) on one core
# (nice), unsanitized -O2 builds for speed, growing build/fuzz/corpus-NAME;
# then every input of the grown corpora is replayed under ASan+UBSan, so a
# memory error the fast build did not crash on is still a finding.  The
# executions and findings of each target go to build/fuzz/results.txt.
# The kdump target runs forked (its executions are the parent's count,
# the stat:: lines being the last job's): contexts of failed diskdump opens cannot
# be freed (libkdumpfile 0.5.1 crashes; see abandon_ctx in
# src/readers/kdumpfile.c) and pile up over many inputs, so each short-lived
# job starts afresh.  An OOM is still a finding (-ignore_ooms=0): the
# headers that made libkdumpfile allocate gigabytes are refused first.
# FUZZ=NAME... runs only those (and the Python harness only when FUZZ
# names vmcoreinfo or is unset); results are appended.
FUZZ_SECONDS ?= 3600
FUZZ_NICE ?= nice -n 10
FUZZ ?= $(FUZZ_TARGETS) vmcoreinfo
FUZZ_C = $(filter $(FUZZ_TARGETS),$(FUZZ))
.PHONY: fuzz
fuzz: $(addprefix $(BUILD)/fuzz-fast-,$(FUZZ_C)) $(addprefix $(BUILD)/fuzz-,$(FUZZ_C))
	@mkdir -p $(BUILD)/fuzz/artifacts; echo "# $$(date -u '+%F %T UTC'), $(FUZZ_SECONDS) s each" >> $(BUILD)/fuzz/results.txt
	@for t in $(FUZZ_C); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$t; cp -n tests/fuzz/corpus/$$t/* $(BUILD)/fuzz/corpus-$$t/; \
		echo "fuzz $$t: $(FUZZ_SECONDS) s (fast build)"; \
		$(FUZZ_NICE) ./$(BUILD)/fuzz-fast-$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_OPTS) \
			$$( [ $$t = kdump ] && echo -fork=1 -ignore_ooms=0 ) \
			-artifact_prefix=$(BUILD)/fuzz/artifacts/$$t- $(BUILD)/fuzz/corpus-$$t \
			> $(BUILD)/fuzz/log-$$t.txt 2>&1; rc=$$?; \
		if [ $$t = kdump ]; then \
			execs=$$(sed -n 's/^#\([0-9]*\): cov.*/\1/p' $(BUILD)/fuzz/log-$$t.txt | tail -1); \
			rate=$$(sed -n 's/^#[0-9]*: cov.* exec\/s \([0-9]*\) .*/\1/p' $(BUILD)/fuzz/log-$$t.txt | tail -1); \
		else \
			execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(BUILD)/fuzz/log-$$t.txt); \
			rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(BUILD)/fuzz/log-$$t.txt); \
		fi; \
		$(FUZZ_NICE) ./$(BUILD)/fuzz-$$t -runs=0 $(FUZZ_OPTS) \
			-artifact_prefix=$(BUILD)/fuzz/artifacts/$$t-san- $(BUILD)/fuzz/corpus-$$t \
			> $(BUILD)/fuzz/replay-$$t.txt 2>&1; rc2=$$?; \
		n=$$(ls $(BUILD)/fuzz/corpus-$$t | wc -l); \
		echo "$$t: $$execs executions ($$rate/s) in $(FUZZ_SECONDS) s, corpus $$n inputs;" \
			"fast run exit $$rc, sanitized replay exit $$rc2" | tee -a $(BUILD)/fuzz/results.txt; \
	done
	@if [ -n "$(filter vmcoreinfo,$(FUZZ))" ]; then \
		PYTHONPATH=src/python $(FUZZ_NICE) $(PYTHON) tests/fuzz/fuzz_vmcoreinfo.py --seconds $(FUZZ_SECONDS) \
			--artifacts $(BUILD)/fuzz/artifacts tests/fuzz/corpus/vmcoreinfo | tee -a $(BUILD)/fuzz/results.txt; \
	fi
	@ls $(BUILD)/fuzz/artifacts | sed 's/^/finding: /' | tee -a $(BUILD)/fuzz/results.txt

check-core: check-core-plain check-core-san check-core-tsan check-core-fuzz

# the BTF reader and kallsyms decoder (input from dumps); not part of check-core
$(BUILD)/fuzz-btf: tests/fuzz/fuzz_btf.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(SAN_CC) $(CFLAGS_COMMON) $(FUZZ_FLAGS) tests/fuzz/fuzz_btf.c src/core/btf.c src/core/kallsyms.c -o $@

check-core-fuzz-btf: $(BUILD)/fuzz-btf
	rm -rf $(BUILD)/fuzz-btf-corpus && mkdir -p $(BUILD)/fuzz-btf-corpus $(BUILD)/fuzz-artifacts
	cp tests/fuzz/corpus-btf/* $(BUILD)/fuzz-btf-corpus/
	./$(BUILD)/fuzz-btf -max_total_time=$(PFNSCOPE_FUZZ_SECONDS) -max_len=65536 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz-artifacts/ $(BUILD)/fuzz-btf-corpus
