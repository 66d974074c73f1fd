/* The model `eex selftest` runs end to end (tools/selftest_model.c, made by
 * tools/selftest/make_model.py): a .eex file, an input and PyTorch's output. */
#ifndef EEX_SELFTEST_MODEL_H
#define EEX_SELFTEST_MODEL_H

#include <stddef.h>

#define SELFTEST_BATCH 2
#define SELFTEST_C 3
#define SELFTEST_HW 24
#define SELFTEST_CLASSES 10

extern const unsigned char selftest_model[];
extern const size_t selftest_model_size;
extern const float selftest_input[SELFTEST_BATCH * SELFTEST_C * SELFTEST_HW * SELFTEST_HW];
extern const float selftest_expected[SELFTEST_BATCH * SELFTEST_CLASSES];

#endif
