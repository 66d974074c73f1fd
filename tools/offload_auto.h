/* --cut auto / --wire auto for `eex run` and `eex eval` with --cloud: the
 * library's automatic plan (eex_autoplan_next / _done) with costs measured
 * here at start (eex_plan_measure). */
#ifndef EEX_OFFLOAD_AUTO_H
#define EEX_OFFLOAD_AUTO_H

#include <stdio.h>

#include "eex.h"

typedef struct cli_auto_opts {
    int cut_auto, wire_auto;  /* --cut auto, --wire auto */
    int runs;                 /* --plan-runs R: timing runs per cost (0: 10) */
    double edge_scale;        /* --edge-scale X: the edge's times x X (0: 1) */
    unsigned wires;           /* --wires LIST: bit w, the codecs --wire auto may pick (0: all) */
} cli_auto_opts;

typedef struct cli_auto {
    int on;                   /* either is auto */
    int cut_fixed;            /* >= 0: the cut when only the wire is auto */
    eex_autoplan plan;
    eex_autoplan_step step;   /* the current (last) request's */
} cli_auto;

/* The help lines both commands print; I: the description's indent. */
#define CLI_AUTO_HELP(I) \
    "  --cut auto, --wire auto\n" \
    I "choose the cut / the codec per request with the split\n" \
    I "planner (eex plan's cost model): edge and cloud costs\n" \
    I "timed on this machine at start (--plan-runs R, default\n" \
    I "10; the edge's times x --edge-scale X, default 1, for a\n" \
    I "slower edge board), the path (RTT, Mbit/s) estimated\n" \
    I "from the requests themselves (a PING ahead of each,\n" \
    I "smoothed; 0 ms / 100 Mbit/s until the first reply), re-\n" \
    I "planned before each request; a new choice must be\n" \
    I "predicted >= 1% and 0.2 ms faster. --wires LIST: the\n" \
    I "codecs --wire auto may pick (default f32,f16,i8,q4). The\n" \
    I "choice and the estimate it was made on go into the\n" \
    I "output\n"

/* Parses --wire (f32, f16, i8, q4 into *wire; auto) / --plan-runs / --edge-scale /
 * --wires at argv[*i] (advancing *i): 1 taken, 0
 * not one of them, < 0 the usage error it printed (negated exit code). */
int cli_auto_arg(const char *cmd, int argc, char **argv, int *i, cli_auto_opts *o, eex_wire *wire);
/* Sets a up (nothing to do unless o says auto): measures the costs. cut_fixed:
 * the cut when the cut is not auto; wire: the codec when the wire is not.
 * Returns CLI_OK or the exit code of the error it printed. */
int cli_auto_open(const char *cmd, const eex_model *m, const cli_auto_opts *o, int cut_fixed, eex_wire wire, cli_auto *a);
/* Before a request: chooses, sets the client's wire; returns the cut. */
int cli_auto_next(const char *cmd, cli_auto *a, eex_cloud_client *c, int *cut);
/* After it: the reply and the PING update the plan. */
void cli_auto_done(cli_auto *a, const eex_cloud_client *c, const eex_offload_info *info);
/* `"plan": {"cut", "wire", "est_rtt_ms", "est_mbit", "ping_ms", "tcp_rtt_ms",
 * "predicted_ms"}` of a step, with a leading ", ". */
void cli_auto_json(FILE *f, const eex_autoplan_step *s);
/* The plan's current costs as `"costs": {"edge_ms": [cut...], "cloud_ms": [...],
 * "bytes": [[wire 1..4]...], "codec_ms": [[...]...]}` (0 bytes: not allowed). */
void cli_auto_costs_json(FILE *f, const cli_auto *a);

#endif
