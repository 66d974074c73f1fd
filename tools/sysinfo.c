/* Reading the machine's description and state from /sys and /proc/cpuinfo
 * (see sysinfo.h). Every read may fail; a failure leaves the value unknown. */
#include "sysinfo.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *si_root(void)
{
    const char *r = getenv("EEX_SYSFS_ROOT");
    return r ? r : "";
}

const char *si_root_after(void)
{
    const char *r = getenv("EEX_SYSFS_ROOT_AFTER");
    return r && *r ? r : si_root();
}

/* Reads root/path into buf (at most cap-1 bytes), trailing whitespace and
 * NULs (device-tree strings) cut; 0 on success, -1 when unreadable or empty. */
static int read_text(const char *root, const char *path, char *buf, size_t cap)
{
    char full[1024];
    snprintf(full, sizeof full, "%s%s", root, path);
    FILE *f = fopen(full, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    n = strlen(buf); /* a device-tree string ends at its NUL */
    while (n && (isspace((unsigned char)buf[n - 1])))
        buf[--n] = '\0';
    return n ? 0 : -1;
}

static long read_long(const char *root, const char *path)
{
    char buf[64], *end;
    if (read_text(root, path, buf, sizeof buf))
        return -1;
    long v = strtol(buf, &end, 10);
    return end == buf || v < 0 ? -1 : v;
}

/* "0-3,5" into set; returns count or -1 on a malformed list. */
static int parse_list(const char *s, unsigned char set[SI_MAX_CPUS])
{
    memset(set, 0, SI_MAX_CPUS);
    int count = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 0 || a >= SI_MAX_CPUS)
            return -1;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1 || b < a || b >= SI_MAX_CPUS)
                return -1;
            s = end;
        }
        for (long i = a; i <= b; i++)
            count += !set[i], set[i] = 1;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return count;
}

void si_format_cpus(const unsigned char set[SI_MAX_CPUS], char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < SI_MAX_CPUS && n < cap; i++) {
        if (!set[i] || (i > 0 && set[i - 1]))
            continue;
        int j = i;
        while (j + 1 < SI_MAX_CPUS && set[j + 1])
            j++;
        int w = j > i ? snprintf(buf + n, cap - n, "%s%d-%d", n ? "," : "", i, j)
                      : snprintf(buf + n, cap - n, "%s%d", n ? "," : "", i);
        n += w > 0 ? (size_t)w : 0;
    }
    if (!buf[0])
        snprintf(buf, cap, "none");
}

/* Arm Ltd. (0x41) cores seen on the boards people benchmark on. */
static const char *arm_core_name(int implementer, int part)
{
    static const struct {
        int part;
        const char *name;
    } arm[] = {{0xd03, "Cortex-A53"}, {0xd04, "Cortex-A35"}, {0xd05, "Cortex-A55"}, {0xd07, "Cortex-A57"},
               {0xd08, "Cortex-A72"}, {0xd09, "Cortex-A73"}, {0xd0a, "Cortex-A75"}, {0xd0b, "Cortex-A76"},
               {0xd0c, "Neoverse-N1"}, {0xd0d, "Cortex-A77"}, {0xd0e, "Cortex-A76AE"}, {0xd40, "Neoverse-V1"},
               {0xd41, "Cortex-A78"}, {0xd42, "Cortex-A78AE"}, {0xd44, "Cortex-X1"}, {0xd46, "Cortex-A510"},
               {0xd47, "Cortex-A710"}, {0xd48, "Cortex-X2"}, {0xd49, "Neoverse-N2"}, {0xd4b, "Cortex-A78C"},
               {0xd4d, "Cortex-A715"}, {0xd4e, "Cortex-X3"}, {0xd80, "Cortex-A520"}, {0xd81, "Cortex-A720"},
               {0xd82, "Cortex-X4"}};
    if (implementer == 0x41)
        for (size_t i = 0; i < sizeof arm / sizeof arm[0]; i++)
            if (arm[i].part == part)
                return arm[i].name;
    if (implementer == 0x4e && part == 0x004)
        return "NVIDIA Carmel";
    return NULL;
}

static const char *after_colon(const char *line)
{
    const char *c = strchr(line, ':');
    if (!c)
        return NULL;
    c++;
    while (*c == ' ' || *c == '\t')
        c++;
    return c;
}

static int key_is(const char *line, const char *key)
{
    const size_t n = strlen(key);
    return !strncmp(line, key, n) && (line[n] == ' ' || line[n] == '\t' || line[n] == ':');
}

/* Copies src into dst, cut to cap - 1 bytes. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    const size_t n = strlen(src) < cap - 1 ? strlen(src) : cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void copy_trim(char *dst, size_t cap, const char *src)
{
    copy_str(dst, cap, src);
    size_t n = strlen(dst);
    while (n && isspace((unsigned char)dst[n - 1]))
        dst[--n] = '\0';
}

/* /proc/cpuinfo: per processor the ARM implementer and part (and, for the
 * snapshot, x86's "cpu MHz"); the first "model name"; the Raspberry Pi's
 * "Model". mhz may be NULL. Marks each processor seen in `seen`. */
static void read_cpuinfo(const char *root, si_machine *m, unsigned char *seen, long *mhz_khz)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/proc/cpuinfo", root);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    int cur = -1;
    while (fgets(line, sizeof line, f)) {
        const char *v = after_colon(line);
        if (!v)
            continue;
        if (key_is(line, "processor")) {
            char *end;
            long p = strtol(v, &end, 10);
            cur = end != v && p >= 0 && p < SI_MAX_CPUS ? (int)p : -1;
            if (cur >= 0 && seen)
                seen[cur] = 1;
        } else if (mhz_khz && key_is(line, "cpu MHz") && cur >= 0) {
            mhz_khz[cur] = (long)(strtod(v, NULL) * 1000.0);
        } else if (m && key_is(line, "model name") && !m->cpu_model[0]) {
            copy_trim(m->cpu_model, sizeof m->cpu_model, v);
        } else if (m && key_is(line, "CPU implementer") && cur >= 0) {
            m->cpu[cur].implementer = (int)strtol(v, NULL, 0);
        } else if (m && key_is(line, "CPU part") && cur >= 0) {
            m->cpu[cur].part = (int)strtol(v, NULL, 0);
        } else if (m && key_is(line, "Model") && !m->board[0]) {
            copy_trim(m->board, sizeof m->board, v);
        }
    }
    fclose(f);
}

static void build_clusters(si_machine *m)
{
    m->nclusters = 0;
    for (int i = 0; i < m->ncpus; i++) {
        si_cpu *c = &m->cpu[i];
        if (!c->present)
            continue;
        int k = 0;
        for (; k < m->nclusters; k++) {
            const si_cluster *cl = &m->cluster[k];
            int first = 0;
            while (!cl->cpus[first])
                first++;
            const si_cpu *f = &m->cpu[first];
            if (f->part == c->part && f->implementer == c->implementer && f->max_khz == c->max_khz &&
                f->capacity == c->capacity)
                break;
        }
        if (k == m->nclusters) {
            if (m->nclusters == SI_MAX_CLUSTERS)
                k = SI_MAX_CLUSTERS - 1; /* more kinds than anyone builds: lump the rest */
            else {
                si_cluster *cl = &m->cluster[m->nclusters++];
                memset(cl, 0, sizeof *cl);
                cl->max_khz = c->max_khz, cl->min_khz = c->min_khz, cl->capacity = c->capacity;
                snprintf(cl->governor, sizeof cl->governor, "%s", c->governor);
                const char *name = arm_core_name(c->implementer, c->part);
                if (name)
                    snprintf(cl->core, sizeof cl->core, "%s", name);
                else if (c->part >= 0)
                    snprintf(cl->core, sizeof cl->core, "implementer 0x%x part 0x%x", (unsigned)c->implementer,
                             (unsigned)c->part);
            }
        }
        si_cluster *cl = &m->cluster[k];
        cl->cpus[i] = 1, cl->ncpus++;
        c->cluster = k;
        if (strcmp(cl->governor, c->governor))
            snprintf(cl->governor, sizeof cl->governor, "mixed");
    }
}

void si_read_machine(const char *root, si_machine *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->root, sizeof m->root, "%s", root);
#if defined(__aarch64__)
    snprintf(m->arch, sizeof m->arch, "aarch64");
#elif defined(__x86_64__)
    snprintf(m->arch, sizeof m->arch, "x86-64");
#else
    snprintf(m->arch, sizeof m->arch, "other");
#endif
    for (int i = 0; i < SI_MAX_CPUS; i++)
        m->cpu[i] = (si_cpu){.max_khz = -1, .min_khz = -1, .capacity = -1, .implementer = -1, .part = -1};

    unsigned char online[SI_MAX_CPUS] = {0}, seen[SI_MAX_CPUS] = {0};
    char buf[1024];
    int have = 0;
    if (!read_text(root, "/sys/devices/system/cpu/online", buf, sizeof buf) && parse_list(buf, online) > 0)
        have = 1;
    read_cpuinfo(root, m, seen, NULL);
    for (int i = 0; i < SI_MAX_CPUS; i++)
        if (have ? online[i] : seen[i])
            m->cpu[i].present = 1, m->online_count++, m->ncpus = i + 1;

    for (int i = 0; i < m->ncpus; i++) {
        si_cpu *c = &m->cpu[i];
        char p[128];
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq", i);
        c->max_khz = read_long(root, p);
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_min_freq", i);
        c->min_khz = read_long(root, p);
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%d/cpu_capacity", i);
        long cap = read_long(root, p);
        c->capacity = cap >= 0 && cap < 1 << 20 ? (int)cap : -1;
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor", i);
        if (read_text(root, p, c->governor, sizeof c->governor))
            c->governor[0] = '\0';
    }
    build_clusters(m);

    if (!m->cpu_model[0] && m->nclusters) {
        size_t n = 0;
        for (int k = 0; k < m->nclusters && n < sizeof m->cpu_model; k++) {
            const si_cluster *cl = &m->cluster[k];
            if (!cl->core[0]) {
                n = 0;
                break; /* one unnamed cluster: the model is unknown */
            }
            int w = snprintf(m->cpu_model + n, sizeof m->cpu_model - n, "%s%dx %s", k ? " + " : "", cl->ncpus,
                             cl->core);
            n += w > 0 ? (size_t)w : 0;
        }
        if (!n)
            m->cpu_model[0] = '\0';
    } else if (m->cpu_model[0]) {
        for (int k = 0; k < m->nclusters; k++)
            if (!m->cluster[k].core[0])
                copy_str(m->cluster[k].core, sizeof m->cluster[k].core, m->cpu_model);
    }
    /* the device-tree model names an ARM board; DMI an x86 machine */
    if (!read_text(root, "/sys/firmware/devicetree/base/model", buf, sizeof buf) ||
        (!m->board[0] && !read_text(root, "/sys/devices/virtual/dmi/id/product_name", buf, sizeof buf)))
        copy_str(m->board, sizeof m->board, buf);

    for (int z = 0; z < 64 && m->nzones < SI_MAX_ZONES; z++) {
        char p[128], type[32];
        snprintf(p, sizeof p, "/sys/class/thermal/thermal_zone%d/temp", z);
        const long t = read_long(root, p);
        snprintf(p, sizeof p, "/sys/class/thermal/thermal_zone%d/type", z);
        const int has_type = !read_text(root, p, type, sizeof type);
        if (t < 0 && !has_type)
            continue;
        m->zone_index[m->nzones] = z;
        snprintf(m->zone_type[m->nzones], sizeof m->zone_type[0], "%s", has_type ? type : "");
        m->nzones++;
    }
}

void si_snapshot_read(const char *root, const si_machine *m, si_snapshot *s)
{
    long mhz[SI_MAX_CPUS];
    for (int i = 0; i < SI_MAX_CPUS; i++)
        s->cur_khz[i] = -1, mhz[i] = -1;
    read_cpuinfo(root, NULL, NULL, mhz);
    for (int i = 0; i < m->ncpus; i++) {
        if (!m->cpu[i].present)
            continue;
        char p[128];
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq", i);
        s->cur_khz[i] = read_long(root, p);
        if (s->cur_khz[i] < 0)
            s->cur_khz[i] = mhz[i];
    }
    s->max_temp_c = NAN;
    for (int z = 0; z < SI_MAX_ZONES; z++) {
        s->temp_c[z] = NAN;
        if (z >= m->nzones)
            continue;
        char p[128];
        snprintf(p, sizeof p, "/sys/class/thermal/thermal_zone%d/temp", m->zone_index[z]);
        char buf[64], *end;
        if (read_text(root, p, buf, sizeof buf))
            continue;
        const double v = strtod(buf, &end); /* millidegrees Celsius */
        if (end == buf)
            continue;
        s->temp_c[z] = fabs(v) >= 1000.0 ? v / 1000.0 : v;
        if (isnan(s->max_temp_c) || s->temp_c[z] > s->max_temp_c)
            s->max_temp_c = s->temp_c[z];
    }
}

int si_parse_cpus(const si_machine *m, const char *list, unsigned char set[SI_MAX_CPUS], char *err, size_t cap)
{
    memset(set, 0, SI_MAX_CPUS);
    if (!strcmp(list, "all")) {
        for (int i = 0; i < m->ncpus; i++)
            set[i] = (unsigned char)m->cpu[i].present;
        if (m->online_count)
            return m->online_count;
        snprintf(err, cap, "'all': the online cpus are unknown here");
        return -1;
    }
    if (!strcmp(list, "big") || !strcmp(list, "little")) {
        const int big = list[0] == 'b';
        if (m->nclusters < 2) {
            snprintf(err, cap, "'%s': this machine has %s", list,
                     m->nclusters ? "one kind of core" : "no cpu clusters known");
            return -1;
        }
        int pick = -1;
        for (int k = 0; k < m->nclusters; k++) {
            const si_cluster *c = &m->cluster[k];
            /* capacity when the kernel gives it, else max frequency */
            const long v = c->capacity >= 0 ? c->capacity : c->max_khz;
            if (v < 0)
                continue;
            if (pick < 0)
                pick = k;
            const si_cluster *p = &m->cluster[pick];
            const long pv = p->capacity >= 0 ? p->capacity : p->max_khz;
            if (big ? v > pv : v < pv)
                pick = k;
        }
        if (pick < 0) {
            snprintf(err, cap, "'%s': neither cpu_capacity nor cpuinfo_max_freq is known here", list);
            return -1;
        }
        memcpy(set, m->cluster[pick].cpus, SI_MAX_CPUS);
        return m->cluster[pick].ncpus;
    }
    const int n = parse_list(list, set);
    if (n <= 0)
        snprintf(err, cap, "'%s' is not a cpu list (e.g. 0-3,6 / all / big / little; cpus below %d)", list,
                 SI_MAX_CPUS);
    return n <= 0 ? -1 : n;
}

int si_throttle_check(const si_machine *m, const unsigned char set[SI_MAX_CPUS], const si_snapshot *before,
                      const si_snapshot *after, double temp_limit_c, char *warn, size_t cap)
{
    int count = 0;
    size_t n = strlen(warn);
    for (int i = 0; i < m->ncpus && i < SI_MAX_CPUS; i++) {
        const long b = before->cur_khz[i], a = after->cur_khz[i];
        if (!set[i] || b <= 0 || a < 0 || (double)a >= 0.95 * (double)b)
            continue;
        if (n + 1 >= cap)
            break;
        int w = snprintf(warn + n, cap - n, "cpu%d frequency dropped from %ld to %ld MHz during the run\n", i,
                         b / 1000, a / 1000);
        n = w > 0 && n + (size_t)w < cap ? n + (size_t)w : cap - 1;
        count++;
    }
    for (int z = 0; z < m->nzones; z++) {
        const double b = before->temp_c[z], a = after->temp_c[z];
        if (isnan(a) || a < temp_limit_c)
            continue;
        char from[32] = "";
        if (!isnan(b))
            snprintf(from, sizeof from, " (from %.1f C)", b);
        if (n + 1 >= cap)
            break;
        int w = snprintf(warn + n, cap - n, "%s temperature reached %.1f C%s, past the %.0f C limit\n",
                         m->zone_type[z][0] ? m->zone_type[z] : "thermal zone", a, from, temp_limit_c);
        n = w > 0 && n + (size_t)w < cap ? n + (size_t)w : cap - 1;
        count++;
    }
    return count;
}

int si_threads(si_thread *t, int cap)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        if (read_text("", path, buf, sizeof buf))
            continue;
        /* the fields after the command name (in parentheses, may hold
         * spaces) start at field 3; 14 utime, 15 stime, 39 processor */
        const char *p = strrchr(buf, ')');
        if (!p)
            continue;
        long long v[40] = {0};
        int field = 3;
        for (p++; *p && field < 40; field++) {
            char *end;
            while (*p == ' ')
                p++;
            v[field] = strtoll(p, &end, 10);
            while (*end && *end != ' ')
                end++; /* the state letter of field 3 */
            p = end;
        }
        if (field < 40)
            continue;
        t[n].tid = atoi(e->d_name), t[n].cpu = (int)v[39], t[n].ticks = v[14] + v[15];
        n++;
    }
    closedir(d);
    return n;
}

/* ---- output --------------------------------------------------------------- */

static void json_str_or_unknown(FILE *f, const char *s) { cli_json_string(f, s[0] ? s : "unknown"); }
static void json_mhz(FILE *f, long khz)
{
    if (khz < 0)
        fputs("null", f);
    else
        fprintf(f, "%ld", khz / 1000);
}
static void json_num(FILE *f, double v, const char *fmt)
{
    if (isnan(v))
        fputs("null", f);
    else
        fprintf(f, fmt, v);
}

void si_machine_json(FILE *f, const si_machine *m)
{
    char list[1024];
    unsigned char on[SI_MAX_CPUS] = {0};
    for (int i = 0; i < m->ncpus; i++)
        on[i] = (unsigned char)m->cpu[i].present;
    si_format_cpus(on, list, sizeof list);
    fputs("{\"arch\": ", f);
    cli_json_string(f, m->arch);
    fputs(", \"cpu_model\": ", f);
    json_str_or_unknown(f, m->cpu_model);
    fputs(", \"board\": ", f);
    json_str_or_unknown(f, m->board);
    if (m->online_count)
        fprintf(f, ", \"cores\": %d, \"online\": \"%s\"", m->online_count, list);
    else
        fputs(", \"cores\": null, \"online\": \"unknown\"", f);
    fputs(", \"sysfs_root\": ", f);
    cli_json_string(f, m->root[0] ? m->root : "/");
    fputs(", \"clusters\": [", f);
    for (int k = 0; k < m->nclusters; k++) {
        const si_cluster *c = &m->cluster[k];
        si_format_cpus(c->cpus, list, sizeof list);
        fprintf(f, "%s{\"cpus\": \"%s\", \"count\": %d, \"core\": ", k ? ", " : "", list, c->ncpus);
        json_str_or_unknown(f, c->core);
        fputs(", \"max_mhz\": ", f);
        json_mhz(f, c->max_khz);
        fputs(", \"min_mhz\": ", f);
        json_mhz(f, c->min_khz);
        fputs(", \"capacity\": ", f);
        if (c->capacity < 0)
            fputs("null", f);
        else
            fprintf(f, "%d", c->capacity);
        fputs(", \"governor\": ", f);
        json_str_or_unknown(f, c->governor);
        fputc('}', f);
    }
    fputs("], \"thermal_zones\": [", f);
    for (int z = 0; z < m->nzones; z++) {
        fputs(z ? ", " : "", f);
        json_str_or_unknown(f, m->zone_type[z]);
    }
    fputs("]}", f);
}

static const char *or_unknown(const char *s) { return s[0] ? s : "unknown"; }

void si_machine_text(FILE *f, const si_machine *m)
{
    char list[1024];
    unsigned char on[SI_MAX_CPUS] = {0};
    for (int i = 0; i < m->ncpus; i++)
        on[i] = (unsigned char)m->cpu[i].present;
    si_format_cpus(on, list, sizeof list);
    fprintf(f, "cpu: %s (%s), board: %s\n", or_unknown(m->cpu_model), m->arch, or_unknown(m->board));
    if (m->online_count)
        fprintf(f, "cores: %d online (%s)\n", m->online_count, list);
    else
        fputs("cores: unknown\n", f);
    for (int k = 0; k < m->nclusters; k++) {
        const si_cluster *c = &m->cluster[k];
        char mx[32] = "unknown", mn[32] = "unknown", capy[32] = "unknown";
        if (c->max_khz >= 0)
            snprintf(mx, sizeof mx, "%ld MHz", c->max_khz / 1000);
        if (c->min_khz >= 0)
            snprintf(mn, sizeof mn, "%ld MHz", c->min_khz / 1000);
        if (c->capacity >= 0)
            snprintf(capy, sizeof capy, "%d", c->capacity);
        si_format_cpus(c->cpus, list, sizeof list);
        fprintf(f, "cluster %d: cpus %s, %s, max %s, min %s, capacity %s, governor %s\n", k, list, or_unknown(c->core),
                mx, mn, capy, or_unknown(c->governor));
    }
    if (!m->nclusters)
        fputs("clusters: unknown\n", f);
    fputs("thermal zones:", f);
    for (int z = 0; z < m->nzones; z++)
        fprintf(f, " %s", or_unknown(m->zone_type[z]));
    fputs(m->nzones ? "\n" : " unknown\n", f);
}

void si_snapshot_json(FILE *f, const si_machine *m, const unsigned char set[SI_MAX_CPUS], const si_snapshot *s)
{
    fputs("{\"cpus\": [", f);
    int first = 1;
    for (int i = 0; i < m->ncpus; i++)
        if (set[i]) {
            fprintf(f, "%s%d", first ? "" : ", ", i);
            first = 0;
        }
    fputs("], \"mhz\": [", f);
    first = 1;
    for (int i = 0; i < m->ncpus; i++) {
        if (!set[i])
            continue;
        fputs(first ? "" : ", ", f);
        json_mhz(f, s->cur_khz[i]);
        first = 0;
    }
    fputs("], \"temp_c\": [", f);
    for (int z = 0; z < m->nzones; z++) {
        fputs(z ? ", " : "", f);
        json_num(f, s->temp_c[z], "%.1f");
    }
    fputs("], \"max_temp_c\": ", f);
    json_num(f, s->max_temp_c, "%.1f");
    fputc('}', f);
}

void si_snapshot_text(FILE *f, const si_machine *m, const unsigned char set[SI_MAX_CPUS], const si_snapshot *s)
{
    int any = 0;
    for (int i = 0; i < m->ncpus; i++) {
        if (!set[i])
            continue;
        if (s->cur_khz[i] >= 0)
            fprintf(f, "%scpu%d %ld MHz", any ? ", " : "", i, s->cur_khz[i] / 1000);
        else
            fprintf(f, "%scpu%d unknown", any ? ", " : "", i);
        any = 1;
    }
    fputs(any ? "; " : "frequency unknown; ", f);
    if (isnan(s->max_temp_c))
        fputs("temperature unknown", f);
    else
        fprintf(f, "%.1f C", s->max_temp_c);
}
