/* eex: the command line. One binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: eex <command> [options]\n"
    "\n"
    "eex " EEX_VERSION_STRING ": an inference engine for early-exit neural networks.\n"
    "\n"
    "commands:\n"
    "  info MODEL.eex [--json]      inputs, outputs, ops, parameters, MACs, arena bytes\n"
    "  run  MODEL.eex IMAGE         classify an image (PNG, JPEG, BMP, ...); on an early-exit\n"
    "                               model: detector, exits, where the answer came from\n"
    "  run  MODEL.eex --input IN.npy --output OUT.npy\n"
    "                               run on float32 NCHW arrays, write output arrays\n"
    "  eval MODEL.eex --dataset DIR [--distortion none|blur:S|noise:S] [--expert ...]\n"
    "       [--threshold T,...] [--thresholds T1,..,TE] [--adaptive]\n"
    "                               an early-exit model over an IDX dataset: exits,\n"
    "                               P(offload), edge/cloud/overall accuracy per threshold\n"
    "                               (single or per exit), outage and missed deadlines;\n"
    "                               --adaptive: UCB p_tar per detected distortion, no labels\n"
    "  thresholds LOG.jsonl --objective max-accuracy|min-offload|min-latency ...\n"
    "                               per-exit thresholds from an eval log, with bootstrap\n"
    "                               intervals, beside the best single p_tar; Pareto frontier\n"
    "  calibrate MODEL.eex --dataset DIR --split val --val-index FILE -o OUT.eex\n"
    "                               one temperature per exit and expert set (NLL), ECE\n"
    "                               before/after, reliability diagram data\n"
    "  distort IN OUT (--blur S | --noise S) [--seed N]\n"
    "                               the evaluation distortions, on an image file\n"
    "  spectrum IN OUT              the distortion detector's input for an image\n"
    "  bench MODEL.eex [--threads N] [--runs R] [--warmup W] [--json] [--cpus LIST]\n"
    "                               latency (min/median/max), per-node table, peak RSS,\n"
    "                               the machine, frequencies, temperatures, throttling\n"
    "  selftest [--iters N]         every fast kernel against its reference and a built-in\n"
    "                               model against PyTorch's output, here; exit 0 = pass\n"
    "  sysinfo [--json] [--cpus LIST]\n"
    "                               CPU, cores, clusters, frequencies, governor, temperature\n"
    "                               as bench records them (Linux /sys, /proc/cpuinfo)\n"
    "  serve MODEL.eex --listen [ADDR:]PORT [--threads N] [--log FILE.jsonl]\n"
    "                               the cloud half: finishes the network for edges that\n"
    "                               run with --cloud HOST:PORT\n"
    "  plan MODEL.eex --rtt MS --bandwidth MBIT [--log EVAL.jsonl] [--measure HOST:PORT]\n"
    "                               where to cut and which wire codec: predicted (and\n"
    "                               measured) latency per cut point and codec per path\n"
    "\n"
    "'eex <command> --help' describes a command's options. Every command also takes\n"
    "  --max-input-mb N  the largest input: a file read, an image decoded (4 to 9\n"
    "                    bytes a pixel), a .npy array, an IDX file decompressed\n"
    "                    (default 64)\n"
    "  --max-arena-mb N  the largest activation arena a model may plan (default 1024)\n";

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        /* the CLI's own header version, and the library's it runs with */
        printf("eex %s (library %s)\n", EEX_VERSION_STRING, eex_version());
        return CLI_OK;
    }
    char err[200];
    if (cli_take_limits(&argc, argv, 2, err, sizeof err)) {
        fprintf(stderr, "eex %s: %s\n", argv[1], err);
        return CLI_USAGE;
    }
    eex_set_arena_limit(cli_lim.arena_bytes, CLI_ARENA_FLAG);
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "distort"))
        return cmd_distort(argc - 1, argv + 1);
    if (!strcmp(argv[1], "spectrum"))
        return cmd_spectrum(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(argv[1], "selftest"))
        return cmd_selftest(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sysinfo"))
        return cmd_sysinfo(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "thresholds"))
        return cmd_thresholds(argc - 1, argv + 1);
    if (!strcmp(argv[1], "calibrate"))
        return cmd_calibrate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "plan"))
        return cmd_plan(argc - 1, argv + 1);
    fprintf(stderr, "eex: unknown command '%s'\n\n%s", argv[1], usage);
    return CLI_USAGE;
}
