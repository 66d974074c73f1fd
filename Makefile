# eex build. `make` builds the library and CLI; `make test` installs what is
# missing, builds and runs every test. See README.md.
#
# Knobs:  BLAS=none     built-in GEMM instead of OpenBLAS
#         SAN=asan      -fsanitize=address,undefined build (in build-asan/)
#         SAN=tsan      -fsanitize=thread build (in build-tsan/, always BLAS=none)
#         CROSS=aarch64-linux-gnu-  cross compile;  STATIC=1  static CLI
#         PREFIX=/usr/local  for `make install`

CC      ?= cc
CROSS   ?=
ifneq ($(CROSS),)
CC      := $(CROSS)gcc
AR      := $(CROSS)ar
endif
AR      ?= ar
PY      := /usr/bin/python3
PREFIX  ?= /usr/local
# Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist) for demo, train, experiment.
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
# Another dataset for `make train` / `make experiment` (mk/train.mk): DATASET=DIR, its
# class names LABELS=FILE, NAME (default: the folder's name), AUGMENT=hflip.
DATASET ?=
LABELS  ?=
NAME    ?=
AUGMENT ?=
DATASET_NAME := $(if $(DATASET),$(or $(NAME),$(notdir $(patsubst %/,%,$(DATASET)))),fashion-mnist)
# Where a DATASET's run goes: checkpoints, NAME-ee.eex/.json/.pt; results/ below it.
TRAIN_OUT      ?= train/out/$(DATASET_NAME)
TRAIN_FAST_OUT ?= train/out-fast/$(DATASET_NAME)
BLAS    ?= openblas
SAN     ?=

# OpenBLAS's own threads are not instrumented for ThreadSanitizer (false reports).
ifeq ($(SAN),tsan)
override BLAS := none
endif

BUILD   ?= build$(if $(CROSS),-$(patsubst %-,%,$(CROSS)))$(if $(filter none,$(BLAS)),$(if $(filter tsan,$(SAN)),,-noblas))$(if $(SAN),-$(SAN))

CFLAGS  ?= -O2
EXTRA_CFLAGS ?=
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fPIC -pthread -Iinclude $(EXTRA_CFLAGS)
LDLIBS  := -lm -pthread
ifeq ($(BLAS),none)
CFLAGS  += -DEEX_NO_BLAS
else
CFLAGS  += -I/usr/include/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-pthread
LDLIBS  := -lopenblas $(LDLIBS)
endif
ifeq ($(SAN),asan)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -g -O1
LDFLAGS += -fsanitize=thread
endif
ifeq ($(STATIC),1)
CLI_LDFLAGS := -static   # the CLI only: a shared library cannot be static
endif

# The shared library exports only what include/eex.h marks EEX_API.
LIB_CFLAGS := -fvisibility=hidden
EEX_VERSION := $(shell sed -n 's/.*EEX_VERSION_STRING "\(.*\)"/\1/p' include/eex.h)
EEX_SOMAJOR := $(firstword $(subst ., ,$(EEX_VERSION)))
LIB_SRC := $(wildcard base/*.c engine/*.c weights/*.c branches/*.c kernels/*.c kernels/ref/*.c)
CLI_SRC := $(wildcard tools/*.c)

.DEFAULT_GOAL := all

# Each area keeps its own targets and sources in mk/<area>.mk.
include $(sort $(wildcard mk/*.mk))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/unit/*.c)

# Debian packages the build, the tests, the demo, the converter, the experiments and
# the benchmarks need (`make print-deps` lists them, one a line). Beside them:
# npm, which `make bench` uses to fetch onnxruntime-node into bench/peers/; `make
# deps` installs Debian's npm only when no npm is on PATH (some nodejs builds carry
# their own and conflict with Debian's package).
DEPS_PKGS := build-essential pkg-config git libopenblas-dev libstb-dev libcriterion-dev \
             python3-torch python3-torchvision python3-onnx python3-numpy python3-matplotlib python3-pil \
             clang-14 libfuzzer-14-dev iproute2 \
             gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user nodejs haproxy \
             dataset-fashion-mnist libonnx-testdata strace

.PHONY: all deps print-deps test test-layers test-abi test-unit test-parity test-converter test-cli test-ee test-asan test-tsan test-zoo test-onnx-node install clean help

all: $(BUILD)/libeex.a $(BUILD)/libeex.so $(BUILD)/eex

help:
	@sed -n '1,10p' Makefile

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# library objects: hidden unless EEX_API
$(LIB_OBJ): CFLAGS += $(LIB_CFLAGS)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

$(BUILD)/libeex.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# libeex.so.MAJOR.MINOR.PATCH with SONAME libeex.so.MAJOR; libeex.so links to it.
$(BUILD)/libeex.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libeex.so.$(EEX_SOMAJOR) -o $@.$(EEX_VERSION) $^ $(LDLIBS)
	ln -sf libeex.so.$(EEX_VERSION) $@.$(EEX_SOMAJOR)
	ln -sf libeex.so.$(EEX_VERSION) $@

$(BUILD)/eex: $(CLI_OBJ) $(BUILD)/libeex.a
	$(CC) $(LDFLAGS) $(CLI_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libeex.a $(LDLIBS)

# Installs only what is missing; fast when everything is present.
deps:
	@missing=""; for p in $(DEPS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "make deps: installing npm"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm; \
	fi

print-deps:
	@for p in $(DEPS_PKGS); do echo $$p; done

# ---- tests -------------------------------------------------------------------

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a -lcriterion $(LDLIBS)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(filter-out tests/unit/testutil.c,$(TEST_SRC)))

test-unit: $(UNIT_TESTS) test-pool
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t --jobs 2; done

# The thread pool under stress (plain C: it also runs under TSan, test-tsan).
$(BUILD)/tests/test_pool: tests/pool/test_pool.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a $(LDLIBS)

.PHONY: test-pool
test-pool: $(BUILD)/tests/test_pool
	$(BUILD)/tests/test_pool $(POOL_REGIONS)

PARITY_DIR := build/parity
test-parity: $(BUILD)/eex
	BUILD=$(BUILD) PY=$(PY) PARITY_DIR=$(PARITY_DIR) sh tests/parity/run.sh

test-converter:
	$(PY) tests/parity/test_converter.py

# Every torchvision CNN classifier (tests/zoo/make_zoo.py) against PyTorch in
# float64, relative to max|ref|. Fixtures are cached in build/zoo (about 3.5 min
# to build from nothing on 2 cores, then about 40 s a run).
ZOO_DIR := build/zoo
test-zoo: $(BUILD)/eex
	BUILD=$(BUILD) PY=$(PY) ZOO_DIR=$(ZOO_DIR) sh tests/zoo/run.sh

# ONNX's backend node tests (libonnx-testdata) converted and run; prints the
# pass / FAIL / CRASH / refused / skipped table (FAIL and CRASH must be 0).
test-onnx-node: $(BUILD)/eex
	$(PY) tests/onnx_node/conformance.py --eex $(BUILD)/eex

$(BUILD)/tests/test_ee: tests/ee/test_ee.c $(BUILD)/libeex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeex.a -lcriterion $(LDLIBS)

# Early exits on a small exported model, and C/Python distortions.
test-ee: $(BUILD)/eex $(BUILD)/tests/test_ee
	@mkdir -p build/ee
	$(PY) tests/ee/make_tiny.py build/ee/tiny.eex
	EEX_TEST_MODEL=build/ee/tiny.eex $(BUILD)/tests/test_ee --jobs 2
	$(PY) tests/ee/test_distort.py $(BUILD)
	$(PY) tests/ee/test_eval_vs_torch.py $(BUILD)
	$(PY) tests/ee/test_exit_rule.py $(BUILD)

test-cli: $(BUILD)/eex
	BUILD=$(BUILD) PY=$(PY) sh tests/cli/run.sh

# libeex.so exports only include/'s EEX_API functions; SONAME, install links, version.
test-abi: $(BUILD)/libeex.so $(BUILD)/eex
	BUILD=$(BUILD) sh tests/abi/run.sh

# No include climbs a layer (base <- weights, kernels <- branches <- engine <- offload;
# tools/ only the public API): docs/architecture.md, Layout.
test-layers:
	sh tests/layers/check.sh

test: deps all
	$(MAKE) test-layers test-unit test-abi test-converter test-cli test-sysinfo test-ee test-export test-parity test-pipeline test-thresholds \
	        test-zoo test-onnx-node
	$(MAKE) BLAS=none test-unit test-parity
	$(MAKE) test-offload test-arm
	$(MAKE) test-asan
	$(MAKE) test-tsan test-scale
	$(MAKE) test-fuzz-regress

# The suite under address+undefined sanitizers (build-asan/): unit, early-exit,
# CLI, offload (unit, batching, loopback incl. authentication) and the parity
# models at batch 1 and 4 on 2 threads (reference kernels and 1 thread are
# left to the plain run: same code, 4x the time). SAN_ENV makes any report fatal.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
           TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0
test-asan:
	$(SAN_ENV) $(MAKE) SAN=asan test-unit test-ee test-cli test-offload-unit test-thresholds
	THREADS=2 REF=0 $(SAN_ENV) $(MAKE) SAN=asan test-parity
	$(SAN_ENV) $(MAKE) SAN=asan offload-tools
	BUILD=build-asan PY=$(PY) $(PY) tests/offload/test_offload.py equality kill load batch auth
	$(MAKE) test-offload-asan

# The server and client under ThreadSanitizer (build-tsan/, BLAS=none): server
# and clients in threads of one process (tests/offload/test_threads.c; the
# Criterion unit tests cannot start under TSan, Criterion issue #274, and are
# single-threaded anyway), the loopback tests (load, hostile frames, command
# line, batching, authentication) and the scale-out kill test.
test-tsan:
	$(SAN_ENV) $(MAKE) SAN=tsan test-offload-threads offload-tools
	$(SAN_ENV) $(MAKE) SAN=tsan POOL_REGIONS=1500 test-pool
	BUILD=build-tsan PY=$(PY) $(PY) tests/offload/test_offload.py load hostile cli batch auth replay hotswap idle
	BUILD=build-tsan PY=$(PY) $(PY) tests/scale/scale.py --label "scale-out under TSan" --clients 8 --requests 60

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(wildcard include/*.h) $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libeex.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libeex.so.$(EEX_VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libeex.so.$(EEX_VERSION) $(DESTDIR)$(PREFIX)/lib/libeex.so.$(EEX_SOMAJOR)
	ln -sf libeex.so.$(EEX_SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libeex.so
	install -m 755 $(BUILD)/eex $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(EEX_VERSION)|' \
	    -e 's|@LIBS@|$(LDLIBS)|' eex.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/eex.pc

clean:
	rm -rf build build-*
