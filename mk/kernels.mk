# Fast kernels: one object per ISA from kernels/simd_kernels.h, each built
# with its own instruction-set flags and chosen at run time (kernels/dispatch.c).
KERNELS_ARCH := $(shell $(CC) -dumpmachine 2>/dev/null)

ifneq ($(findstring x86_64,$(KERNELS_ARCH)),)
LIB_SRC += kernels/x86/kernels_avx2.c kernels/x86/kernels_avx512.c
$(BUILD)/obj/kernels/x86/kernels_avx2.o: CFLAGS += -O3 -mavx2 -mfma -mf16c
$(BUILD)/obj/kernels/x86/kernels_avx512.o: CFLAGS += -O3 -mavx512f -mavx512vl -mavx512dq -mavx2 -mfma
endif
ifneq ($(findstring aarch64,$(KERNELS_ARCH)),)
LIB_SRC += kernels/arm/kernels_neon.c
$(BUILD)/obj/kernels/arm/kernels_neon.o: CFLAGS += -O3
endif
$(BUILD)/obj/kernels/simd_scalar.o: CFLAGS += -O3

# ---- AArch64: the NEON kernels, cross-compiled and run under qemu ----------
# `make test-arm` needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user (Debian). The test binary is static, so qemu needs no sysroot.
# Then the static eex on the fake /sys trees (tests/sysfs/) and the board
# tarball's eex: selftest, bench on both models, run (mk/boards.mk).
ARM_CROSS := aarch64-linux-gnu-
ARM_BUILD := build-aarch64-linux-gnu-noblas
.PHONY: test-arm arm-eex
test-arm:
	$(MAKE) CROSS=$(ARM_CROSS) BLAS=none $(ARM_BUILD)/libeex.a
	$(ARM_CROSS)gcc -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Iinclude -static \
	    -o $(ARM_BUILD)/test_simd_arm tests/arm/test_simd_arm.c $(ARM_BUILD)/libeex.a -lm -pthread
	$(ARM_CROSS)gcc -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Iinclude -static \
	    -o $(ARM_BUILD)/test_winograd_arm tests/arm/test_winograd_arm.c $(ARM_BUILD)/libeex.a -lm -pthread
	qemu-aarch64 $(ARM_BUILD)/test_simd_arm 40
	qemu-aarch64 $(ARM_BUILD)/test_winograd_arm 40
	$(MAKE) CROSS=$(ARM_CROSS) BLAS=none STATIC=1 $(ARM_BUILD)/eex
	BUILD=$(ARM_BUILD) $(PY) tests/sysfs/test_sysinfo.py --runner "qemu-aarch64 -L /usr/aarch64-linux-gnu"
	$(MAKE) test-dist-arm

# The one static binary to copy onto an ARM board (see docs/performance.md).
arm-eex:
	$(MAKE) CROSS=$(ARM_CROSS) BLAS=none STATIC=1 $(ARM_BUILD)/eex
