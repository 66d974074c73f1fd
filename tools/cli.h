/* Shared pieces of the eex command line. Every command returns its exit
 * code: 0 success, 1 runtime failure, 2 usage error. */
#ifndef EEX_CLI_H
#define EEX_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "eex.h"
#include "budget.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_distort(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_spectrum(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_sysinfo(int argc, char **argv);
int cmd_thresholds(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_plan(int argc, char **argv);

/* Prints "eex <cmd>: <message>" to stderr and returns CLI_FAIL. */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The same for a failed library call, with the library's message. */
int cli_status(const char *cmd, eex_status st);
/* Prints a usage hint and returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* --metric maxprob|entropy and --kernels ref|auto: 0, or -1 for anything else. */
int cli_parse_metric(const char *s, eex_metric *out);
int cli_parse_kernels(const char *s, eex_kernels *out);
/* Parses a positive int option value; returns -1 when it is not one. */
int cli_parse_int(const char *s, int lo, int hi);
/* A --split value (test, train or val, tools/split.c): s itself, or NULL after a
 * usage message naming cmd. */
const char *cli_parse_split(const char *cmd, const char *s);
/* A number in [lo, hi]: the whole string, not empty, not NaN. 0, or -1. */
int cli_parse_float(const char *s, double lo, double hi, double *out);
/* A non-negative integer that fits in 64 bits: digits only (no sign, no
 * spaces, not empty), refused on overflow. 0, or -1. */
int cli_parse_u64(const char *s, uint64_t *out);
/* s with control characters (C0, DEL, C1) replaced by '?': text from a file
 * (a model's labels) must not drive the terminal. Returns buf. */
const char *cli_printable(const char *s, char *buf, size_t cap);
/* Monotonic clock in milliseconds, for timing runs. */
double cli_now_ms(void);
/* qsort comparator for doubles, ascending. */
int cli_cmp_double(const void *a, const void *b);
/* Median of v[0..n) (n >= 1); sorts v. */
double cli_median(double *v, int n);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);

#endif
