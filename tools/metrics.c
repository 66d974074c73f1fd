#include "metrics.h"

#include <string.h>

void outage_init(outage_acc *a, int window, double target)
{
    memset(a, 0, sizeof *a);
    a->window = window > 0 ? window : 1;
    a->target = target;
}

void outage_add(outage_acc *a, int on_edge, int correct)
{
    a->n++;
    a->edge += on_edge != 0;
    a->correct += on_edge && correct;
    if (a->n < a->window)
        return;
    if (!a->edge)
        a->empty++;
    else {
        a->windows++;
        /* accuracy < target without division: correct < target * edge */
        a->outages += (double)a->correct < a->target * (double)a->edge - 1e-12;
    }
    a->n = a->edge = a->correct = 0;
}

double outage_prob(const outage_acc *a) { return a->windows ? (double)a->outages / (double)a->windows : 0.0; }

void deadline_init(deadline_acc *a, double deadline_ms)
{
    memset(a, 0, sizeof *a);
    a->deadline_ms = deadline_ms;
}

void deadline_add(deadline_acc *a, int offloaded, double latency_ms, int degraded)
{
    a->n++;
    a->missed += offloaded && (degraded || !(latency_ms <= a->deadline_ms));
}

double deadline_miss_prob(const deadline_acc *a) { return a->n ? (double)a->missed / (double)a->n : 0.0; }
