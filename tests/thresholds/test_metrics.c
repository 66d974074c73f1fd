/* Outage and missed-deadline probabilities against values worked out by hand. */
#include <criterion/criterion.h>
#include <math.h>

#include "../../tools/metrics.h"

Test(metrics, outage_by_hand)
{
    /* W = 4, target 0.75. Images (edge?, correct?):
       window 1: E+ E+ E- C   -> edge 3, correct 2: 0.667 < 0.75  outage
       window 2: E+ E+ E+ E-  -> 3/4 = 0.75, not below              ok
       window 3: C  C  C  C   -> no edge answer: not counted
       window 4: E+ C  C  C   -> 1/1                                ok
       tail:     E- E-        -> shorter than W: dropped
       => 1 outage in 3 counted windows */
    const int edge[] = {1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1};
    const int ok[] = {1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
    outage_acc a;
    outage_init(&a, 4, 0.75);
    for (int i = 0; i < 18; i++)
        outage_add(&a, edge[i], ok[i]);
    cr_assert_eq(a.windows, 3);
    cr_assert_eq(a.outages, 1);
    cr_assert_eq(a.empty, 1);
    cr_assert_float_eq(outage_prob(&a), 1.0 / 3.0, 1e-12);
    /* a cloud answer's correctness never counts for the edge */
    outage_init(&a, 2, 1.0);
    outage_add(&a, 0, 1), outage_add(&a, 1, 0);
    cr_assert_eq(a.outages, 1);
    outage_init(&a, 5, 0.5);
    cr_assert_float_eq(outage_prob(&a), 0.0, 0);
}

Test(metrics, missed_deadline_by_hand)
{
    /* D = 50 ms; images (offloaded?, ms, degraded?):
       edge            -> in time
       off 49.9        -> in time
       off 50.0        -> in time (not above D)
       off 50.1        -> missed
       off 12, degraded -> missed (no cloud answer)
       off NaN (not measured) -> missed
       edge            -> in time
       => 3 of 7 */
    deadline_acc d;
    deadline_init(&d, 50.0);
    deadline_add(&d, 0, 0, 0);
    deadline_add(&d, 1, 49.9, 0);
    deadline_add(&d, 1, 50.0, 0);
    deadline_add(&d, 1, 50.1, 0);
    deadline_add(&d, 1, 12.0, 1);
    deadline_add(&d, 1, NAN, 0);
    deadline_add(&d, 0, 900.0, 0);
    cr_assert_eq(d.missed, 3);
    cr_assert_float_eq(deadline_miss_prob(&d), 3.0 / 7.0, 1e-12);
}
