/* The q4 wire codec (offload/codec4.c), its checks in eexw_get_infer, and
 * the split planner's arithmetic and automatic choice (offload/plan.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../offload/offload.h"

Test(q4, roundtrip_error_within_half_a_step)
{
    enum { C = 4, HW = 9, N = C * HW };
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)sin(i * 0.7) * (float)(1 + i / HW);
    for (int i = 0; i < HW; i++)  /* channel 1: after a ReLU, zeros must stay exact */
        x[HW + i] = i % 3 ? (float)i * 0.25f : 0.0f;
    for (int i = 0; i < HW; i++)  /* channel 3: constant */
        x[3 * HW + i] = 2.5f;
    uint8_t raw[4 * C + (N + 1) / 2];
    cr_assert_eq(eexw_raw_bytes(EEXW_Q4, N, C), sizeof raw);
    float scale;
    int32_t zp;
    cr_assert_eq(eexw_encode_ch(x, N, C, EEXW_Q4, raw, &scale, &zp), EEX_OK);
    cr_assert_eq(eexw_decode_ch(raw, N, C, EEXW_Q4, scale, zp, y), 0);
    for (int c = 0; c < C; c++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < HW; i++)
            lo = fminf(lo, x[c * HW + i]), hi = fmaxf(hi, x[c * HW + i]);
        const float step = (hi - lo) / 15.0f;
        for (int i = 0; i < HW; i++) {
            const int k = c * HW + i;
            cr_assert_leq(fabsf(y[k] - x[k]), 0.5f * step * 1.01f + 2e-3f * fabsf(x[k]) + 1e-6f,
                          "channel %d value %d: %g -> %g (step %g)", c, i, (double)x[k], (double)y[k], (double)step);
        }
    }
    for (int i = 0; i < HW; i++)
        if (x[HW + i] == 0.0f)
            cr_assert_eq(y[HW + i], 0.0f, "a zero after a ReLU came back as %g", (double)y[HW + i]);
    for (int i = 0; i < HW; i++)
        cr_assert_float_eq(y[3 * HW + i], 2.5f, 1e-6f);
}

Test(q4, odd_count_and_refusals)
{
    float x[5] = {0, 1, 2, 3, 4}, y[5];
    uint8_t raw[16];
    float scale;
    int32_t zp;
    cr_assert_eq(eexw_raw_bytes(EEXW_Q4, 5, 1), 4 + 3u);
    cr_assert_eq(eexw_encode_ch(x, 5, 1, EEXW_Q4, raw, &scale, &zp), EEX_OK);
    cr_assert_eq(raw[4 + 2] >> 4, 0, "the last odd element's high nibble is 0");
    cr_assert_eq(eexw_decode_ch(raw, 5, 1, EEXW_Q4, scale, zp, y), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_float_eq(y[i], x[i], 0.2f);
    x[2] = NAN;
    cr_assert_eq(eexw_encode_ch(x, 5, 1, EEXW_Q4, raw, &scale, &zp), EEX_ERR_NUMERIC);
    cr_assert_neq(eexw_encode_ch(x, 5, 2, EEXW_Q4, raw, &scale, &zp), EEX_OK, "5 elements in 2 channels");
    /* hostile parameters: a NaN minimum, an infinite or negative step */
    const uint16_t bad[3][2] = {{0x7e00, 0x3c00}, {0x0000, 0x7c00}, {0x0000, 0xbc00}};
    for (int b = 0; b < 3; b++) {
        eexw_put_u16(raw, bad[b][0]);
        eexw_put_u16(raw + 2, bad[b][1]);
        cr_assert_eq(eexw_decode_ch(raw, 5, 1, EEXW_Q4, 0, 0, y), -1, "parameters %d", b);
    }
}

/* An INFER body for a [1, C, H, W] q4 tensor, raw payload of `payload` bytes. */
static size_t q4_body(uint8_t *b, int C, int H, int W, size_t payload)
{
    eexw_infer q = {.cut = 0, .expert = 0, .metric = 0, .dtype = EEXW_Q4, .rank = 4, .packing = 0, .threshold = 0.5f};
    q.dims[0] = 1, q.dims[1] = C, q.dims[2] = H, q.dims[3] = W;
    const size_t off = eexw_put_infer(b, &q);
    memset(b + off, 0, payload);
    return off + payload;
}

Test(q4, get_infer_checks_the_payload)
{
    static uint8_t b[4096];
    eexw_infer q;
    char reason[160];
    size_t n = q4_body(b, 4, 3, 3, eexw_raw_bytes(EEXW_Q4, 36, 4));
    cr_assert_eq(eexw_get_infer(b, (uint32_t)n, &q, reason, sizeof reason), 0, "%s", reason);
    cr_assert_eq(q.dtype, EEXW_Q4);
    n = q4_body(b, 4, 3, 3, eexw_raw_bytes(EEXW_Q4, 36, 4) - 1);
    cr_assert_eq(eexw_get_infer(b, (uint32_t)n, &q, reason, sizeof reason), EEX_WIRE_ERR_REQUEST, "a byte short");
    /* one element a channel: more raw bytes than 4 x elements, refused */
    n = q4_body(b, 8, 1, 1, eexw_raw_bytes(EEXW_Q4, 8, 8));
    cr_assert_eq(eexw_get_infer(b, (uint32_t)n, &q, reason, sizeof reason), EEX_WIRE_ERR_REQUEST);
    cr_assert(strstr(reason, "q4"), "%s", reason);
    /* an unknown dtype is still refused */
    b[37] = 5;
    cr_assert_eq(eexw_get_infer(b, (uint32_t)n, &q, reason, sizeof reason), EEX_WIRE_ERR_REQUEST);
}

static eex_plan_costs two_cuts(void)
{
    eex_plan_costs k;
    memset(&k, 0, sizeof k);
    k.cuts = 2;
    k.exits = 2;
    k.cut_exit[0] = 1, k.cut_exit[1] = 2;
    k.edge_ms[0] = 10, k.edge_ms[1] = 30;
    k.cloud_ms[0] = 20, k.cloud_ms[1] = 5;
    for (int w = 1; w <= EEX_WIRE_COUNT; w++) {
        k.bytes[0][w] = 100000.0 / w;  /* the early cut's tensor is large */
        k.bytes[1][w] = 10000.0 / w;
    }
    k.exit_ms[1] = 4, k.exit_ms[2] = 25;
    return k;
}

Test(plan, arithmetic)
{
    eex_plan_costs k = two_cuts();
    const eex_path_model p = {.rtt_ms = 50, .mbit = 8};  /* 1 byte = 1 microsecond */
    cr_assert_float_eq(eex_plan_request_ms(&k, 0, EEX_WIRE_F32, &p), 10 + 50 + 100 + 20, 1e-9);
    cr_assert_float_eq(eex_plan_request_ms(&k, 1, EEX_WIRE_Q4, &p), 30 + 50 + 2.5 + 5, 1e-9);
    cr_assert_lt(eex_plan_request_ms(&k, 2, EEX_WIRE_F32, &p), 0, "no such cut");
    const eex_path_model none = {.rtt_ms = 1, .mbit = 0};
    cr_assert_lt(eex_plan_request_ms(&k, 0, EEX_WIRE_F32, &none), 0, "no bandwidth");
    /* exit shares: 40% answer at exit 1, 10% at exit 2 */
    k.exit_share[1] = 0.4, k.exit_share[2] = 0.1;
    const double r0 = eex_plan_request_ms(&k, 0, EEX_WIRE_F16, &p), r1 = eex_plan_request_ms(&k, 1, EEX_WIRE_F16, &p);
    cr_assert_float_eq(eex_plan_expected_ms(&k, 0, EEX_WIRE_F16, &p), 0.4 * 4 + 0.6 * r0, 1e-9,
                       "exit 2 is the cloud's at cut 0: those images offload");
    cr_assert_float_eq(eex_plan_expected_ms(&k, 1, EEX_WIRE_F16, &p), 0.4 * 4 + 0.1 * 25 + 0.5 * r1, 1e-9);
}

Test(plan, best_depends_on_the_path)
{
    const eex_plan_costs k = two_cuts();
    int c = -1, w = -1;
    /* fast: the early cut's 30 ms less compute beats its bytes */
    const eex_path_model fast = {.rtt_ms = 10, .mbit = 1000};
    cr_assert_gt(eex_plan_best(&k, &fast, 1u << EEX_WIRE_F32, &c, &w), 0);
    cr_assert_eq(c, 0);
    cr_assert_eq(w, EEX_WIRE_F32);
    /* slow: the late cut's small tensor */
    const eex_path_model slow = {.rtt_ms = 180, .mbit = 2};
    eex_plan_best(&k, &slow, 1u << EEX_WIRE_F32 | 1u << EEX_WIRE_Q4, &c, &w);
    cr_assert_eq(c, 1);
    cr_assert_eq(w, EEX_WIRE_Q4);
    cr_assert_lt(eex_plan_best(&k, &slow, 0, &c, &w), 0, "no wire allowed");
}

static eex_offload_info reply(double offload_ms, double server_ms, size_t bytes, int connects)
{
    eex_offload_info i;
    memset(&i, 0, sizeof i);
    i.offloaded = 1;
    i.offload_ms = offload_ms;
    i.server_ms = server_ms;
    i.bytes_sent = bytes;
    i.bytes_received = 0;
    i.connects = connects;
    return i;
}

Test(plan, path_estimate)
{
    eex_path_est e = {0};
    eex_offload_info i = reply(300, 5, 1000, 1);  /* the handshake's request: RTT only */
    eex_path_est_update(&e, &i, 250);
    cr_assert_eq(e.samples, 0, "a request that connected is no sample");
    cr_assert_eq(e.mbit, 0, "no rate from a request that connected");
    for (int r = 0; r < 40; r++) {
        i = reply(180 + 5 + 8, 5, 1000, 0);  /* 1000 bytes in 8 ms: 1 Mbit/s */
        eex_path_est_update(&e, &i, 180);
    }
    cr_assert_float_eq(e.mbit, 1.0, 1e-3);
    cr_assert_float_eq(e.rtt_ms, 180.0, 1e-6);
    /* one late PING (an outlier) does not move the RTT; two in a row do */
    i = reply(500 + 5 + 8, 5, 1000, 0);
    eex_path_est_update(&e, &i, 500);
    cr_assert_float_eq(e.rtt_ms, 180.0, 1e-6, "one outlier moved the RTT to %g", e.rtt_ms);
    i = reply(10 + 5 + 8, 5, 1000, 0);
    eex_path_est_update(&e, &i, 10);
    eex_path_est_update(&e, &i, 10);
    cr_assert(e.rtt_ms < 180.0 - 0.2 * 170.0, "a changed path (180 -> 10 ms) not followed after two samples: %g",
              e.rtt_ms);
    for (int r = 0; r < 30; r++)
        eex_path_est_update(&e, &i, 10);
    cr_assert_float_eq(e.rtt_ms, 10.0, 0.1, "after 32 samples of 10 ms the RTT is %g", e.rtt_ms);
    i = reply(0, 0, 1000, 0);
    i.degraded = 1;
    const eex_path_est before = e;
    eex_path_est_update(&e, &i, 10);
    cr_assert_eq(memcmp(&e, &before, sizeof e), 0, "a degraded request teaches nothing");
}

Test(plan, autoplan_moves_with_the_path)
{
    const eex_plan_costs k = two_cuts();
    eex_autoplan a;
    eex_autoplan_init(&a, &k, 1u << EEX_WIRE_F32);
    int c, w, moved_at = -1;
    eex_autoplan_choose(&a, &c, &w);
    cr_assert(c >= 0 && c < 2 && w == EEX_WIRE_F32, "a choice before any reply");
    for (int r = 0; r < 10; r++) {  /* 10 ms, 1000 Mbit/s */
        eex_autoplan_choose(&a, &c, &w);
        const eex_offload_info i = reply(10 + k.bytes[c][w] * 8 / 1e6 + k.cloud_ms[c], k.cloud_ms[c],
                                         (size_t)k.bytes[c][w], 0);
        eex_autoplan_update(&a, c, w, &i, 10);
    }
    cr_assert_eq(a.cut, 0);
    for (int r = 0; r < 20; r++) {  /* 180 ms, 2 Mbit/s */
        eex_autoplan_choose(&a, &c, &w);
        if (c == 1 && moved_at < 0)
            moved_at = r;
        const eex_offload_info i = reply(180 + k.bytes[c][w] * 8 / 2e3 + k.cloud_ms[c], k.cloud_ms[c],
                                         (size_t)k.bytes[c][w], 0);
        eex_autoplan_update(&a, c, w, &i, 180);
    }
    cr_assert_eq(a.cut, 1);
    cr_assert(moved_at >= 0 && moved_at <= 3, "moved after %d requests", moved_at);
    cr_assert_leq(a.changes, 2, "%d moves: flapping", a.changes);
}

/* One request's round through the library calls `eex run` / `eex eval`
 * use: the step records the choice and the estimate it was made on, and
 * the reply teaches the plan (no server needed: no request is sent). */
Test(plan, autoplan_next_and_done)
{
    eex_model *m;
    if (eex_model_open("models/fmnist-ee.eex", &m))
        cr_skip_test("models/fmnist-ee.eex not found (run from the repository root)");
    eex_cloud_client *cl;
    const eex_cloud_opts co = {.wire = EEX_WIRE_F32};
    cr_assert_eq(eex_cloud_client_new(m, "127.0.0.1", 9, &co, &cl), EEX_OK);
    eex_cloud_timing tm;
    eex_cloud_client_last_timing(cl, &tm);
    cr_assert(tm.start == 0 && tm.done == 0, "no request yet");
    const eex_plan_costs k = two_cuts();
    eex_autoplan a;
    eex_autoplan_init(&a, &k, 1u << EEX_WIRE_F16 | 1u << EEX_WIRE_Q4);
    eex_autoplan_step st;
    cr_assert_eq(eex_autoplan_next(&a, cl, &st), EEX_OK);
    cr_assert(st.wire == EEX_WIRE_F16 || st.wire == EEX_WIRE_Q4, "wire %d not in the mask", st.wire);
    cr_assert_eq(st.path.samples, 0);
    cr_assert_gt(st.predicted_ms, 0);
    const eex_offload_info i = reply(10 + k.cloud_ms[st.cut] + 1, k.cloud_ms[st.cut], (size_t)k.bytes[st.cut][st.wire], 0);
    eex_autoplan_done(&a, cl, &st, &i);
    cr_assert_eq(st.probe_rtt_ms, 0, "no PING was sent");
    cr_assert_eq(a.path.samples, 1, "the reply is a sample");
    eex_autoplan_step st2;
    cr_assert_eq(eex_autoplan_next(&a, cl, &st2), EEX_OK);
    cr_assert_eq(st2.path.samples, 1, "the next choice is made on the estimate");
    cr_assert_neq(eex_autoplan_next(NULL, cl, &st2), EEX_OK);
    cr_assert_str_eq(eex_wire_name(EEX_WIRE_Q4), "q4");
    cr_assert_str_eq(eex_wire_name(0), "?");
    eex_cloud_client_free(cl);
    eex_model_close(m);
}

/* eex_plan_measure_idle: the gap is slept before every timed run (nanosleep
 * sleeps at least that long, so the lower bound on the wall time cannot fail
 * by chance), the costs are filled, and a bad gap is refused with its value. */
Test(plan, measure_idle_sleeps_before_each_run)
{
    eex_model *m;
    cr_assert_eq(eex_model_open("models/fmnist-ee.eex", &m), EEX_OK, "%s", eex_last_error());
    eex_plan_costs k;
    cr_assert_eq(eex_plan_measure_idle(m, 2, -1.0, &k), EEX_ERR_ARGUMENT);
    cr_assert(strstr(eex_last_error(), "idle gap -1"), "%s", eex_last_error());
    const int runs = 2;
    const double idle = 3.0, t0 = eex_now_ms();
    cr_assert_eq(eex_plan_measure_idle(m, runs, idle, &k), EEX_OK, "%s", eex_last_error());
    const double took = eex_now_ms() - t0;
    cr_assert_gt(k.cuts, 0);
    /* each exit's runs, each cut's edge runs and cloud runs: two warm-ups each */
    const int timed = (k.exits + 2 * k.cuts) * (runs + 2);
    cr_assert_geq(took, timed * idle, "%d runs with %.0f ms before each took %.1f ms", timed, idle, took);
    for (int c = 0; c < k.cuts; c++) {
        cr_assert_gt(k.edge_ms[c], 0);
        cr_assert_gt(k.cloud_ms[c], 0);
        cr_assert_gt(k.bytes[c][EEX_WIRE_F16], 0);
    }
    eex_model_close(m);
}
