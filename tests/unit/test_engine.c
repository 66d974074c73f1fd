/* The planner and the session API: lifetimes never share bytes, the arena is
 * smaller than the sum of all values, and misuse returns statuses. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../engine/planner.h"
#include "eex.h"
#include "eexbuild.h"

Test(planner, overlapping_lifetimes_never_share_bytes)
{
    uint64_t s = 12345;
    for (int it = 0; it < 200; it++) {
        eex_plan_item items[40];
        const int n = 1 + it % 40;
        size_t sum = 0;
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            items[i].bytes = 1 + (size_t)(s >> 40) % 5000;
            items[i].first = i - 1;
            items[i].last = i - 1 + (int)((s >> 20) % 6);
            sum += (items[i].bytes + 63) & ~(size_t)63;
        }
        int ok;
        size_t total = eex_plan(items, n, &ok);
        cr_assert(ok);
        cr_assert_leq(total, sum);
        for (int a = 0; a < n; a++) {
            cr_assert_eq(items[a].offset % 64, 0);
            cr_assert_leq(items[a].offset + items[a].bytes, total);
            for (int b = a + 1; b < n; b++) {
                const int live = items[a].first <= items[b].last && items[b].first <= items[a].last;
                const int mem = items[a].offset < items[b].offset + items[b].bytes &&
                                items[b].offset < items[a].offset + items[a].bytes;
                cr_assert(!(live && mem), "items %d and %d overlap in time and memory", a, b);
            }
        }
    }
}

Test(planner, chain_reuses_memory)
{
    /* a chain a->b->c->d: only two neighbours live at once */
    eex_plan_item items[4];
    for (int i = 0; i < 4; i++)
        items[i] = (eex_plan_item){.bytes = 1024, .first = i - 1, .last = i};
    int ok;
    cr_assert_eq(eex_plan(items, 4, &ok), 2048);
}

static eex_model *tiny_model(unsigned char **buf)
{
    tb_opts o = {0};
    size_t n;
    *buf = tb_build(&o, &n);
    eex_model *m;
    cr_assert_eq(eex_model_open_buffer(*buf, n, &m), EEX_OK, "%s", eex_last_error());
    return m;
}

Test(session, misuse_returns_statuses)
{
    unsigned char *buf;
    eex_model *m = tiny_model(&buf);
    eex_session *s;
    cr_assert_eq(eex_session_new(m, NULL, &s), EEX_OK);
    cr_assert_eq(eex_session_run(s), EEX_ERR_STATE);
    float y[16];
    cr_assert_eq(eex_session_output(s, 0, y, 16, NULL, NULL), EEX_ERR_STATE);
    float x[2 * 2 * 5 * 5] = {0};
    int64_t bad[4] = {1, 3, 5, 5};
    cr_assert_eq(eex_session_set_input(s, 0, x, bad, 4), EEX_ERR_SHAPE);
    cr_assert(strstr(eex_last_error(), "'x'"), "%s", eex_last_error());
    cr_assert_eq(eex_session_set_input(s, 1, x, bad, 4), EEX_ERR_NOT_FOUND);
    int64_t good[4] = {2, 2, 5, 5};
    cr_assert_eq(eex_session_set_input(s, 0, x, good, 4), EEX_OK);
    cr_assert_eq(eex_session_run(s), EEX_OK);
    cr_assert_eq(eex_session_output(s, 0, y, 5, NULL, NULL), EEX_ERR_ARGUMENT, "6 floats do not fit in 5");
    int64_t shape[EEX_MAX_RANK];
    int rank;
    cr_assert_eq(eex_session_output(s, 0, y, 16, shape, &rank), EEX_OK);
    cr_assert_eq(rank, 2);
    cr_assert_eq(shape[0], 2);
    cr_assert_eq(eex_session_output(s, 3, y, 16, NULL, NULL), EEX_ERR_NOT_FOUND);
    eex_session_opts bad_opts = {.batch = -1};
    eex_session *s2;
    cr_assert_eq(eex_session_new(m, &bad_opts, &s2), EEX_ERR_ARGUMENT);
    eex_session_free(s);
    eex_model_close(m);
    free(buf);
}

Test(session, batch_items_are_independent)
{
    unsigned char *buf;
    eex_model *m = tiny_model(&buf);
    eex_session *s;
    cr_assert_eq(eex_session_new(m, NULL, &s), EEX_OK);
    float x[3 * 50];
    for (int i = 0; i < 150; i++)
        x[i] = (float)((i * 13) % 7) - 3.0f;
    int64_t one[4] = {1, 2, 5, 5}, three[4] = {3, 2, 5, 5};
    float y1[3][3], y3[9];
    for (int b = 0; b < 3; b++) {
        cr_assert_eq(eex_session_set_input(s, 0, x + 50 * b, one, 4), EEX_OK);
        cr_assert_eq(eex_session_run(s), EEX_OK);
        cr_assert_eq(eex_session_output(s, 0, y1[b], 3, NULL, NULL), EEX_OK);
    }
    cr_assert_eq(eex_session_set_input(s, 0, x, three, 4), EEX_OK);
    cr_assert_eq(eex_session_run(s), EEX_OK);
    cr_assert_eq(eex_session_output(s, 0, y3, 9, NULL, NULL), EEX_OK);
    for (int b = 0; b < 3; b++)
        for (int c = 0; c < 3; c++)
            cr_assert_float_eq(y3[b * 3 + c], y1[b][c], 1e-6);
    eex_session_free(s);
    eex_model_close(m);
    free(buf);
}

Test(status, names_and_messages)
{
    cr_assert_str_eq(eex_status_name(EEX_ERR_CHECKSUM), "EEX_ERR_CHECKSUM");
    cr_assert_str_eq(eex_status_name((eex_status)999), "EEX_ERR_UNKNOWN_STATUS");
    for (int i = 0; i < EEX_STATUS_COUNT; i++)
        cr_assert_not_null(eex_status_name((eex_status)i));
}

/* The detector's spectrum is taken of at most 256 pixels on the longer side
 * (docs/distortions.md, step 0); the shorter side keeps the aspect ratio. */
Test(spectrum, size_caps_the_longer_side)
{
    int h, w;
    eex_spectrum_size(28, 28, &h, &w);
    cr_assert(h == 28 && w == 28);
    eex_spectrum_size(256, 100, &h, &w);
    cr_assert(h == 256 && w == 100);
    eex_spectrum_size(3000, 4000, &h, &w);
    cr_assert(h == 192 && w == 256, "%dx%d", w, h);
    eex_spectrum_size(257, 100, &h, &w); /* 100 * 256 / 257 = 99.6 */
    cr_assert(h == 256 && w == 100, "%dx%d", w, h);
    eex_spectrum_size(1, 10000, &h, &w);
    cr_assert(h == 1 && w == 256, "%dx%d", w, h);
    /* and the spectrum of a large image is the spectrum of its shrunk copy */
    enum { H = 300, W = 520 };
    static uint8_t img[H * W], small[256 * 148], a[256 * 148], b[256 * 148];
    for (int i = 0; i < H * W; i++)
        img[i] = (uint8_t)(i * 2654435761u >> 24);
    cr_assert_eq(eex_detector_spectrum_u8(img, H, W, 1, a, &h, &w), EEX_OK, "%s", eex_last_error());
    cr_assert(h == 148 && w == 256, "%dx%d", w, h);
    eex_resize_u8(img, H, W, 1, 148, 256, small);
    cr_assert_eq(eex_spectrum_u8(small, 148, 256, 1, b), EEX_OK);
    cr_assert(memcmp(a, b, sizeof a) == 0);
}
