/* What the machine is and what state it is in, for `eex bench` and `eex
 * sysinfo`: CPU model, cores, clusters (big.LITTLE), frequency limits,
 * governors, current frequencies and temperatures, read from Linux's /sys
 * and /proc/cpuinfo. A missing or unreadable file leaves its value unknown
 * (-1, NaN or ""), never an error, so the same code runs on a board, in a
 * VM without cpufreq, under qemu and on the fake trees of tests/sysfs/.
 *
 * EEX_SYSFS_ROOT=DIR reads DIR/sys/... and DIR/proc/cpuinfo instead of the
 * real ones (tests, or a copy taken from a board). EEX_SYSFS_ROOT_AFTER=DIR
 * makes every snapshot taken after a benchmark round read DIR instead: a
 * test gives the "after" state of a board that throttled. */
#ifndef EEX_SYSINFO_H
#define EEX_SYSINFO_H

#include <stddef.h>
#include <stdio.h>

#define SI_MAX_CPUS 256
#define SI_MAX_ZONES 16
#define SI_MAX_CLUSTERS 8

typedef struct si_cpu {
    int present;       /* listed as online (or seen in /proc/cpuinfo) */
    long max_khz;      /* cpufreq/cpuinfo_max_freq, -1 unknown */
    long min_khz;      /* cpufreq/cpuinfo_min_freq, -1 unknown */
    int capacity;      /* cpu_capacity (1024 = the biggest core), -1 unknown */
    int implementer;   /* /proc/cpuinfo "CPU implementer", -1 unknown */
    int part;          /* "CPU part", -1 unknown */
    char governor[32]; /* cpufreq/scaling_governor, "" unknown */
    int cluster;
} si_cpu;

typedef struct si_cluster {
    unsigned char cpus[SI_MAX_CPUS]; /* 1 = member */
    int ncpus;
    char core[48];      /* "Cortex-A72", the model name, or "" */
    long max_khz, min_khz;
    int capacity;
    char governor[32];
} si_cluster;

typedef struct si_machine {
    char root[512];     /* "" = the real /sys and /proc */
    char arch[16];      /* this build: "aarch64", "x86-64" */
    char cpu_model[128];/* "AMD EPYC", "4x Cortex-A53 + 2x Cortex-A72", "" */
    char board[128];    /* device tree or DMI model, "" */
    int ncpus;          /* highest present cpu + 1, 0 unknown */
    int online_count;
    si_cpu cpu[SI_MAX_CPUS];
    int nclusters;
    si_cluster cluster[SI_MAX_CLUSTERS];
    int nzones;
    char zone_type[SI_MAX_ZONES][32];
    int zone_index[SI_MAX_ZONES]; /* N of thermal_zoneN */
} si_machine;

typedef struct si_snapshot {
    long cur_khz[SI_MAX_CPUS]; /* scaling_cur_freq (else /proc/cpuinfo "cpu MHz"), -1 unknown */
    double temp_c[SI_MAX_ZONES]; /* NaN unknown */
    double max_temp_c;           /* hottest zone, NaN unknown */
} si_snapshot;

/* The root from EEX_SYSFS_ROOT ("" when unset). */
const char *si_root(void);
/* The root for snapshots after a round: EEX_SYSFS_ROOT_AFTER, else si_root(). */
const char *si_root_after(void);

/* Reads the machine description under root (see above). Never fails. */
void si_read_machine(const char *root, si_machine *m);
/* Current frequencies of m's cpus and temperatures of its zones, under root. */
void si_snapshot_read(const char *root, const si_machine *m, si_snapshot *s);

/* Parses a cpu list: "0-3,6", "all", "big" (the cluster with the highest
 * capacity, else max frequency), "little" (the lowest). Sets set[i] for each
 * cpu; returns the count, or -1 with why in err (a bad list, a cpu >=
 * SI_MAX_CPUS, big/little on a machine with one cluster or none known). */
int si_parse_cpus(const si_machine *m, const char *list, unsigned char set[SI_MAX_CPUS], char *err, size_t cap);
/* Writes set as "0-3,6" (or "none"). */
void si_format_cpus(const unsigned char set[SI_MAX_CPUS], char *buf, size_t cap);

/* Appends to warn (one sentence per line) what suggests throttling between
 * two snapshots of the cpus in `set`: a current frequency that fell by more
 * than 5%, or a zone that ended at or above temp_limit_c. Returns the number
 * of warnings. */
int si_throttle_check(const si_machine *m, const unsigned char set[SI_MAX_CPUS], const si_snapshot *before,
                      const si_snapshot *after, double temp_limit_c, char *warn, size_t cap);

/* One thread of this process (/proc/self/task/N/stat, always the real
 * /proc): the cpu it last ran on and the CPU time it has used. A thread that
 * has slept since its affinity changed still shows the cpu it ran on before. */
typedef struct si_thread {
    int tid, cpu;
    long long ticks; /* utime + stime, in clock ticks */
} si_thread;
/* Fills up to cap threads; returns how many (0 unknown). */
int si_threads(si_thread *t, int cap);

/* The machine as a JSON object (no newline) / as indented text lines. */
void si_machine_json(FILE *f, const si_machine *m);
void si_machine_text(FILE *f, const si_machine *m);
/* One snapshot of the cpus in set as {"mhz": [...], "temp_c": [...], "max_temp_c": x}. */
void si_snapshot_json(FILE *f, const si_machine *m, const unsigned char set[SI_MAX_CPUS], const si_snapshot *s);
/* "cpu0 1500 MHz, ... ; 48.2 C" on one line. */
void si_snapshot_text(FILE *f, const si_machine *m, const unsigned char set[SI_MAX_CPUS], const si_snapshot *s);

#endif
