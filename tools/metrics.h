/* The two reliability metrics `eex eval` reports beside accuracy
 * (docs/thresholds.md, "Outage and missed deadlines"):
 *
 * edge-inference outage probability: the images in stream order are cut
 *   into consecutive windows of W (a last, shorter window is dropped); a
 *   window is in outage when the accuracy of the images the edge answered
 *   in it is below the target. Windows where the edge answered nothing are
 *   not counted (no edge inference, no edge outage).
 * missed-deadline probability: the share of all images whose answer from
 *   the path the policy chose was not in hand within D ms: offloaded images
 *   whose measured end-to-end latency exceeds D, or that degraded (the
 *   cloud's answer never came: the client's deadline is D). Edge answers
 *   are counted as in time (a few ms against deadlines of tens to
 *   thousands). */
#ifndef EEX_METRICS_H
#define EEX_METRICS_H

typedef struct outage_acc {
    int window;            /* W */
    double target;         /* edge accuracy below this is an outage */
    long n, edge, correct; /* the window being filled */
    long windows, outages; /* counted windows, those in outage */
    long empty;            /* full windows with no edge answer (not counted) */
} outage_acc;

void outage_init(outage_acc *a, int window, double target);
/* One image, in stream order: answered on the edge?, correct? */
void outage_add(outage_acc *a, int on_edge, int correct);
/* outages / windows, 0 when no window counted. */
double outage_prob(const outage_acc *a);

typedef struct deadline_acc {
    double deadline_ms;
    long n, missed;
} deadline_acc;

void deadline_init(deadline_acc *a, double deadline_ms);
/* One image: offloaded?, its measured end-to-end latency, degraded? */
void deadline_add(deadline_acc *a, int offloaded, double latency_ms, int degraded);
double deadline_miss_prob(const deadline_acc *a);

#endif
