# C core: build/libpfnscope.a, unit tests (plain and ASan/UBSan), fuzzer.
.PHONY: core check-core check-core-plain check-core-san check-core-fuzz check-core-fuzz-btf

CORE_SRC := $(wildcard src/core/*.c)
CORE_HDR := $(wildcard include/pfnscope/*.h)
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

$(BUILD)/fuzz-walk: tests/fuzz/fuzz_walk.c tests/unit/mock.c $(UNIT_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(SAN_CC) $(CFLAGS_COMMON) $(FUZZ_FLAGS) -Itests/unit tests/fuzz/fuzz_walk.c tests/unit/mock.c $(CORE_SRC) -o $@

check-core-plain: $(BUILD)/unit-tests
	./$(BUILD)/unit-tests

check-core-san: $(BUILD)/unit-tests-san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(BUILD)/unit-tests-san

# the repo corpus is copied so the fuzzer's additions stay in build/
check-core-fuzz: $(BUILD)/fuzz-walk
	rm -rf $(BUILD)/fuzz-corpus $(BUILD)/fuzz-artifacts
	mkdir -p $(BUILD)/fuzz-corpus $(BUILD)/fuzz-artifacts
	cp tests/fuzz/corpus/* $(BUILD)/fuzz-corpus/
	./$(BUILD)/fuzz-walk -max_total_time=$(PFNSCOPE_FUZZ_SECONDS) -max_len=16384 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz-artifacts/ $(BUILD)/fuzz-corpus

check-core: check-core-plain check-core-san check-core-fuzz

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
