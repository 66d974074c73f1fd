/* The .eex reader against valid and broken files: each defect gives its own
 * status and a message naming the field, never a crash. Run under ASan/UBSan
 * by `make test-asan`, which also catches leaks on every error path. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "eex.h"
#include "eexbuild.h"

static eex_status open_buf(const unsigned char *p, size_t n)
{
    eex_model *m = NULL;
    eex_status st = eex_model_open_buffer(p, n, &m);
    if (st == EEX_OK)
        eex_model_close(m);
    else
        cr_assert_null(m, "a failed open must not hand out a model");
    return st;
}

static void expect(const tb_opts *o, eex_status want, const char *msg_part)
{
    size_t n;
    unsigned char *p = tb_build(o, &n);
    eex_status st = open_buf(p, n);
    free(p);
    cr_assert_eq(st, want, "got %s (%s), want %s", eex_status_name(st), eex_last_error(), eex_status_name(want));
    cr_assert(strstr(eex_last_error(), msg_part), "message '%s' should mention '%s'", eex_last_error(), msg_part);
}

static void valid_file_runs(const tb_opts *o);

Test(reader, valid_file_opens_and_runs)
{
    tb_opts o = {0};
    valid_file_runs(&o);
}

/* The same model with a float16 bias: widened exactly, the same outputs */
Test(reader, float16_tensor_opens_and_runs)
{
    tb_opts o = {.half_bias = 1};
    valid_file_runs(&o);
}

Test(reader, float16_tensor_nbytes_lies)
{
    tb_opts o = {.half_bias = 1, .bias_nbytes_add = 6};
    expect(&o, EEX_ERR_FORMAT, "x 2");
}

static void valid_file_runs(const tb_opts *opts)
{
    tb_opts o = *opts;
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    eex_model *m;
    cr_assert_eq(eex_model_open_buffer(p, n, &m), EEX_OK, "%s", eex_last_error());
    cr_assert_str_eq(eex_model_name(m), "tiny");
    cr_assert_eq(eex_model_label_count(m), 3);
    cr_assert_str_eq(eex_model_label(m, 2), "c");
    int64_t d[EEX_MAX_RANK];
    cr_assert_eq(eex_model_output_shape(m, 0, d), 2);
    cr_assert_eq(d[1], TB_OC);

    /* run it and compare with a hand computation of conv+relu+mean */
    float x[TB_IC * TB_H * TB_W];
    for (int i = 0; i < TB_IC * TB_H * TB_W; i++)
        x[i] = (float)((i * 7) % 11) / 10.0f - 0.5f;
    double want[TB_OC] = {0};
    for (int oc = 0; oc < TB_OC; oc++)
        for (int oy = 0; oy < TB_H; oy++)
            for (int ox = 0; ox < TB_W; ox++) {
                double acc = 0.25 * (oc - 1);
                for (int ic = 0; ic < TB_IC; ic++)
                    for (int ky = 0; ky < TB_K; ky++)
                        for (int kx = 0; kx < TB_K; kx++) {
                            int iy = oy - 1 + ky, ix = ox - 1 + kx;
                            if (iy < 0 || iy >= TB_H || ix < 0 || ix >= TB_W)
                                continue;
                            acc += x[(ic * TB_H + iy) * TB_W + ix] *
                                   tb_weight(((oc * TB_IC + ic) * TB_K + ky) * TB_K + kx);
                        }
                want[oc] += (acc > 0 ? acc : 0) / (TB_H * TB_W);
            }
    for (int k = 0; k < 2; k++) {
        eex_session_opts so = {.kernels = k ? EEX_KERNELS_REF : EEX_KERNELS_AUTO};
        eex_session *s;
        cr_assert_eq(eex_session_new(m, &so, &s), EEX_OK);
        int64_t shape[4] = {1, TB_IC, TB_H, TB_W};
        cr_assert_eq(eex_session_set_input(s, 0, x, shape, 4), EEX_OK);
        cr_assert_eq(eex_session_run(s), EEX_OK);
        float y[TB_OC];
        int rank;
        cr_assert_eq(eex_session_output(s, 0, y, TB_OC, d, &rank), EEX_OK);
        for (int oc = 0; oc < TB_OC; oc++)
            cr_assert_float_eq(y[oc], want[oc], 1e-5, "kernels %d class %d: %f vs %f", k, oc, y[oc], want[oc]);
        eex_session_free(s);
    }
    eex_model_close(m);
    free(p);
}

Test(reader, wrong_magic)
{
    tb_opts o = {0};
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    p[0] = 'X';
    cr_assert_eq(open_buf(p, n), EEX_ERR_MAGIC);
    cr_assert(strstr(eex_last_error(), "magic"));
    cr_assert_eq(open_buf(p, 3), EEX_ERR_MAGIC);
    free(p);
}

Test(reader, newer_version)
{
    tb_opts o = {0};
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    tb_set32(p, TB_VERSION, 2);
    cr_assert_eq(open_buf(p, n), EEX_ERR_VERSION);
    cr_assert(strstr(eex_last_error(), "version 2"), "%s", eex_last_error());
    free(p);
}

Test(reader, truncated_file_at_every_section)
{
    tb_opts o = {0};
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    const size_t starts[] = {48, 96, tb_get64(p, TB_TENSORS_OFF), tb_get64(p, TB_GRAPH_OFF),
                             tb_get64(p, TB_DATA_OFF), n - 1};
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
        eex_status st = open_buf(p, starts[i]);
        cr_assert_eq(st, EEX_ERR_TRUNCATED, "cut at %zu: %s %s", starts[i], eex_status_name(st), eex_last_error());
    }
    /* every other cut fails too, whatever the status */
    for (size_t cut = 0; cut < n; cut++)
        cr_assert_neq(open_buf(p, cut), EEX_OK, "cut at %zu opened", cut);
    free(p);
}

/* A section whose declared size ends before its contents: TRUNCATED naming it. */
Test(reader, truncated_inside_each_section)
{
    static const struct { size_t size_field; const char *name; } secs[] = {
        {TB_META_SIZE, "meta"}, {TB_TENSORS_SIZE, "tensors"}, {TB_GRAPH_SIZE, "graph"}};
    for (size_t i = 0; i < 3; i++) {
        tb_opts o = {0};
        size_t n;
        unsigned char *p = tb_build(&o, &n);
        const uint64_t size = tb_get64(p, secs[i].size_field);
        for (uint64_t cut = 0; cut < size; cut += 3) {
            tb_set64(p, secs[i].size_field, cut);
            eex_status st = open_buf(p, n);
            cr_assert_eq(st, EEX_ERR_TRUNCATED, "%s cut to %llu: %s %s", secs[i].name, (unsigned long long)cut,
                         eex_status_name(st), eex_last_error());
            cr_assert(strstr(eex_last_error(), secs[i].name), "%s", eex_last_error());
        }
        free(p);
    }
}

Test(reader, section_offsets_past_end)
{
    static const size_t fields[] = {TB_META_OFF, TB_TENSORS_OFF, TB_GRAPH_OFF, TB_DATA_SIZE, TB_GRAPH_SIZE};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        tb_opts o = {0};
        size_t n;
        unsigned char *p = tb_build(&o, &n);
        tb_set64(p, fields[i], UINT64_MAX - 8);
        cr_assert_eq(open_buf(p, n), EEX_ERR_BOUNDS, "field %zu: %s", fields[i], eex_last_error());
        cr_assert(strstr(eex_last_error(), "section"), "%s", eex_last_error());
        free(p);
    }
}

Test(reader, tensor_past_end_of_data)
{
    tb_opts o = {.bias_offset_add = 64 * 1000};
    expect(&o, EEX_ERR_BOUNDS, "tensor 'b'");
}

Test(reader, tensor_nbytes_lies)
{
    tb_opts o = {.bias_nbytes_add = 4};
    expect(&o, EEX_ERR_FORMAT, "nbytes");
}

Test(reader, shape_product_overflows)
{
    tb_opts o = {.overflow_dims = 1};
    expect(&o, EEX_ERR_OVERFLOW, "tensor 'w'");
}

Test(reader, unknown_op)
{
    tb_opts o = {.conv_op = "lstm"};
    expect(&o, EEX_ERR_UNKNOWN_OP, "'lstm'");
}

Test(reader, duplicate_tensor_names)
{
    tb_opts o = {.dup_tensor = 1};
    expect(&o, EEX_ERR_DUPLICATE, "'w'");
}

Test(reader, duplicate_metadata_key)
{
    tb_opts o = {.dup_meta_key = 1};
    expect(&o, EEX_ERR_DUPLICATE, "model.name");
}

Test(reader, leftover_bytes_in_section)
{
    tb_opts o = {.extra_meta_bytes = 5};
    expect(&o, EEX_ERR_FORMAT, "left over");
}

Test(reader, undefined_node_input)
{
    tb_opts o = {.undefined_input = 1};
    expect(&o, EEX_ERR_GRAPH, "'nowhere'");
}

Test(reader, unaligned_tensor)
{
    tb_opts o = {.bias_offset_add = 4};
    expect(&o, EEX_ERR_ALIGNMENT, "tensor 'b'");
}

Test(reader, unaligned_data_section)
{
    tb_opts o = {0};
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    /* move data_off back by 8 (into the graph padding) and grow the section to match */
    const uint64_t off = tb_get64(p, TB_DATA_OFF), size = tb_get64(p, TB_DATA_SIZE);
    tb_set64(p, TB_DATA_OFF, off - 8);
    tb_set64(p, TB_DATA_SIZE, size + 8);
    tb_fix_crc(p, n);
    eex_status st = open_buf(p, n);
    free(p);
    /* a graph section that now overlaps data is reported first if padding was short */
    cr_assert(st == EEX_ERR_ALIGNMENT || st == EEX_ERR_BOUNDS, "%s", eex_status_name(st));
    cr_assert(strstr(eex_last_error(), "data") || strstr(eex_last_error(), "overlaps"), "%s", eex_last_error());
}

Test(reader, bad_checksum)
{
    tb_opts o = {0};
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    p[n - 1] ^= 0x40;  /* flip a bit in the last weight */
    cr_assert_eq(open_buf(p, n), EEX_ERR_CHECKSUM);
    cr_assert(strstr(eex_last_error(), "checksum"), "%s", eex_last_error());
    free(p);
}

Test(reader, every_single_byte_flip_is_caught_or_harmless)
{
    tb_opts o = {0};
    size_t n;
    unsigned char *p = tb_build(&o, &n);
    for (size_t i = 0; i < n; i++) {
        p[i] ^= 0xFF;
        (void)open_buf(p, n);  /* must not crash or leak; most fail on the CRC */
        tb_fix_crc(p, n);      /* with a fixed CRC the structural checks are exercised */
        (void)open_buf(p, n);
        p[i] ^= 0xFF;
        tb_fix_crc(p, n);
    }
    cr_assert_eq(open_buf(p, n), EEX_OK, "restored file must open: %s", eex_last_error());
    free(p);
}

Test(reader, missing_file_is_io_error)
{
    eex_model *m;
    cr_assert_eq(eex_model_open("/nonexistent/model.eex", &m), EEX_ERR_IO);
    cr_assert(strstr(eex_last_error(), "/nonexistent/model.eex"));
    cr_assert_eq(eex_model_open(NULL, &m), EEX_ERR_ARGUMENT);
}
