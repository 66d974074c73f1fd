/* eex sysinfo: the machine as eex bench records it. */
#include <string.h>

#include "cli.h"
#include "sysinfo.h"

static const char help[] =
    "usage: eex sysinfo [--json] [--cpus LIST]\n"
    "\n"
    "Prints what eex bench records about this machine: CPU model, board,\n"
    "online cores, clusters of alike cores (big.LITTLE) with their max/min\n"
    "frequency, cpu_capacity and frequency governor, the thermal zones, and the\n"
    "current frequencies and temperatures. Read from /sys and /proc/cpuinfo\n"
    "(Linux); what a machine does not expose is printed as unknown (null in\n"
    "JSON), never an error.\n"
    "\n"
    "options:\n"
    "  --json        one JSON object on stdout\n"
    "  --cpus LIST   show which cpus a bench --cpus LIST would pin to: a list\n"
    "                such as 0-3,6, or all, big (the cluster with the highest\n"
    "                cpu_capacity, else max frequency) or little (the lowest)\n"
    "\n"
    "environment:\n"
    "  EEX_SYSFS_ROOT=DIR   read DIR/sys/... and DIR/proc/cpuinfo instead (a\n"
    "                       copy of a board's files; tests/sysfs/ holds some)\n";

int cmd_sysinfo(int argc, char **argv)
{
    int json = 0;
    const char *cpus = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--cpus") && i + 1 < argc)
            cpus = argv[++i];
        else
            return cli_usage("sysinfo", "unexpected argument '%s'", argv[i]);
    }
    static si_machine m;
    si_read_machine(si_root(), &m);
    unsigned char set[SI_MAX_CPUS] = {0};
    char err[256], list[1024];
    if (cpus && si_parse_cpus(&m, cpus, set, err, sizeof err) < 0)
        return cli_usage("sysinfo", "--cpus %s", err);
    if (!cpus)
        for (int i = 0; i < m.ncpus; i++)
            set[i] = (unsigned char)m.cpu[i].present;
    si_format_cpus(set, list, sizeof list);
    static si_snapshot now;
    si_snapshot_read(si_root(), &m, &now);
    if (json) {
        fputs("{\"machine\": ", stdout);
        si_machine_json(stdout, &m);
        fputs(", \"cpus\": ", stdout);
        cli_json_string(stdout, list);
        fputs(", \"now\": ", stdout);
        si_snapshot_json(stdout, &m, set, &now);
        fputs("}\n", stdout);
    } else {
        si_machine_text(stdout, &m);
        if (cpus)
            printf("--cpus %s: cpus %s\n", cpus, list);
        fputs("now: ", stdout);
        si_snapshot_text(stdout, &m, set, &now);
        fputc('\n', stdout);
    }
    return CLI_OK;
}
