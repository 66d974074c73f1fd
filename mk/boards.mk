# ARM boards (docs/performance.md "ARM boards", bench/boards/README.md):
#   make dist-arm        build/dist/eex-<version>-aarch64.tar.gz: the static
#                        AArch64 eex, MobileNetV2-EE-224, Fashion-MNIST, a sample
#                        image and a README of the three commands to run on a board
#   make test-dist-arm   unpacks that tarball in a temporary directory and runs its
#                        eex under qemu-aarch64 (selftest, bench on both models, run);
#                        part of make test-arm
#   make test-sysinfo    eex sysinfo / bench on the fake /sys trees of tests/sysfs/,
#                        and board-report on bench/boards/sample/
#   make board-report RESULTS=DIR [REPORT=DIR]
#                        every eex bench --json file in DIR -> REPORT/board-report.md
#                        and board-report.png (default REPORT=DIR)
#
# Included before the Makefile's `all` rule: keep `all` the default goal.
_boards_mk_goal := $(.DEFAULT_GOAL)

EEX_VERSION_STR := $(shell sed -n 's/.*EEX_VERSION_STRING "\(.*\)"/\1/p' include/eex.h)
DIST_ARM_NAME   := eex-$(EEX_VERSION_STR)-aarch64
DIST_ARM        := build/dist/$(DIST_ARM_NAME).tar.gz
DIST_ARM_FILES  := models/mobilenetv2-ee-224.eex models/fmnist-ee.eex \
                   bench/boards/dist/README.md bench/boards/dist/fmnist-test-0.png

.PHONY: dist-arm test-dist-arm test-sysinfo board-report

# The binary must need nothing from the board: linked -static here (whatever
# STATIC the build directory's own eex had), checked for a program
# interpreter or a shared library.
dist-arm: $(DIST_ARM_FILES)
	$(MAKE) arm-eex
	@rm -rf build/dist/$(DIST_ARM_NAME) && mkdir -p build/dist/$(DIST_ARM_NAME)/models
	$(ARM_CROSS)gcc -static -s -o build/dist/$(DIST_ARM_NAME)/eex $(patsubst %.c,$(ARM_BUILD)/obj/%.o,$(CLI_SRC)) \
	    $(ARM_BUILD)/libeex.a -lm -pthread
	@if $(ARM_CROSS)readelf -ld build/dist/$(DIST_ARM_NAME)/eex | grep -E 'INTERP|NEEDED'; then \
	  echo "dist-arm: eex is not static"; exit 1; fi
	cp models/mobilenetv2-ee-224.eex models/fmnist-ee.eex build/dist/$(DIST_ARM_NAME)/models/
	cp bench/boards/dist/README.md bench/boards/dist/fmnist-test-0.png build/dist/$(DIST_ARM_NAME)/
	tar -C build/dist -czf $(DIST_ARM).tmp $(DIST_ARM_NAME) && mv $(DIST_ARM).tmp $(DIST_ARM)
	@rm -rf build/dist/$(DIST_ARM_NAME)
	@ls -l $(DIST_ARM)

# Only files from the tarball: a fresh directory, relative paths, an empty
# environment and a qemu sysroot (-L) that does not exist.
test-dist-arm: dist-arm
	@set -e; t=$$(mktemp -d); trap 'rm -rf "$$t"' EXIT; \
	tar -C "$$t" -xzf $(DIST_ARM); cd "$$t/$(DIST_ARM_NAME)"; \
	Q="env -i qemu-aarch64 -L $$t/no-sysroot"; \
	echo "== selftest"; $$Q ./eex selftest --quiet; \
	echo "== bench fmnist-ee"; $$Q ./eex bench models/fmnist-ee.eex --runs 3 --warmup 1 --json > fm.json; \
	echo "== bench mobilenetv2-ee-224"; $$Q ./eex bench models/mobilenetv2-ee-224.eex --runs 1 --warmup 0 --json > mnv2.json; \
	for j in fm.json mnv2.json; do \
	  grep -q '"format": "eex-bench/1"' $$j && grep -q '"isa": "neon"' $$j && grep -q '"machine": {"arch": "aarch64"' $$j \
	    || { echo "test-dist-arm: $$j lacks the fields"; exit 1; }; \
	  sed -n 's/.*"model_name": "\([^"]*\)".*"median_ms": \([0-9.]*\),.*/  \1: median \2 ms under qemu/p' $$j; done; \
	echo "== run"; $$Q ./eex run models/fmnist-ee.eex fmnist-test-0.png | tee run.txt; \
	grep -q 'answer     class 9 Ankle boot' run.txt || { echo "test-dist-arm: wrong answer"; exit 1; }; \
	echo "test-dist-arm: ok"

test-sysinfo: $(BUILD)/eex
	BUILD=$(BUILD) $(PY) tests/sysfs/test_sysinfo.py
	$(PY) tests/sysfs/test_report.py

REPORT ?= $(RESULTS)
board-report:
	@test -n "$(RESULTS)" || { echo "usage: make board-report RESULTS=DIR [REPORT=DIR]"; exit 2; }
	$(PY) bench/boards/report.py $(RESULTS) --out $(REPORT)

.DEFAULT_GOAL := $(_boards_mk_goal)
