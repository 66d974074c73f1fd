# Fast kernels: one object per ISA from kernels/simd_kernels.h, each built
# with its own instruction-set flags and chosen at run time (kernels/dispatch.c).
KERNELS_ARCH := $(shell $(CC) -dumpmachine 2>/dev/null)

ifneq ($(findstring x86_64,$(KERNELS_ARCH)),)
LIB_SRC += kernels/x86/kernels_avx2.c kernels/x86/kernels_avx512.c
$(BUILD)/obj/kernels/x86/kernels_avx2.o: CFLAGS += -O3 -mavx2 -mfma
$(BUILD)/obj/kernels/x86/kernels_avx512.o: CFLAGS += -O3 -mavx512f -mavx512vl -mavx512dq -mavx2 -mfma
endif
ifneq ($(findstring aarch64,$(KERNELS_ARCH)),)
LIB_SRC += kernels/arm/kernels_neon.c
$(BUILD)/obj/kernels/arm/kernels_neon.o: CFLAGS += -O3
endif
$(BUILD)/obj/kernels/simd_scalar.o: CFLAGS += -O3
