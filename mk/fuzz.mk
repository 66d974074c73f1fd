# Fuzzing with libFuzzer (clang-14, Debian's libfuzzer-14-dev). Targets: the .eex
# reader, IDX/gzip, .npy, image decoding, and the wire frame decoder (fuzz_frame).
#   make fuzz FUZZ_SECONDS=N   each target for N seconds (default 30), corpus grows in build-fuzz/corpus
#   make test-fuzz-regress     every committed input in tests/fuzz/corpus and tests/fuzz/crashes, once
# The library is built with clang, BLAS=none and -fsanitize=fuzzer-no-link,address,undefined
# into build-fuzz/; each target links it with the tool sources it exercises.

FUZZ_CC      := clang-14
FUZZ_SECONDS ?= 30
FUZZ_DIR     := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1
FUZZ_TARGETS := fuzz_eex fuzz_idx fuzz_npy fuzz_image fuzz_frame
FUZZ_TOOLS   := tools/idx.c tools/npy.c tools/image.c tools/budget.c tools/stb_impl.c

.PHONY: fuzz fuzz-build test-fuzz-regress

ifneq ($(BUILD),$(FUZZ_DIR))
$(FUZZ_DIR)/libeex.a: $(LIB_SRC) $(wildcard include/*.h base/*.h engine/*.h kernels/*.h weights/*.h offload/*.h)
	$(MAKE) --no-print-directory BUILD=$(FUZZ_DIR) CC=$(FUZZ_CC) BLAS=none \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_DIR)/libeex.a
endif

$(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_DIR)/libeex.a $(FUZZ_TOOLS)
	$(FUZZ_CC) -std=c11 -D_DEFAULT_SOURCE -Iinclude -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_TOOLS) \
	    $(FUZZ_DIR)/libeex.a -lm -pthread

fuzz-build: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=131072 \
	      -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- -print_final_stats=1 \
	      $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash|Done' || exit 1; \
	done

# Replays the seed corpus and every regression input (crashes found earlier).
test-fuzz-regress: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  files=$$(ls tests/fuzz/corpus/$$t/* tests/fuzz/crashes/$$t-* 2>/dev/null || true); \
	  [ -z "$$files" ] && continue; \
	  $(FUZZ_DIR)/$$t -runs=0 $$files >/dev/null 2>$(FUZZ_DIR)/$$t.log || { cat $(FUZZ_DIR)/$$t.log; exit 1; }; \
	  echo "ok    $$t: $$(echo $$files | wc -w) inputs replayed"; \
	done
