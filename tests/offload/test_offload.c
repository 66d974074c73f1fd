/* The partition executor's pieces without a network: SHA-256 against
 * published vectors, HMAC-SHA256 against RFC 4231, tagged frames, key
 * files, the f16 codec against its twin (the compiler's
 * _Float16) and published bit patterns, the int8 codec's error bound, and
 * the wire frames: round trips, every length check, and random bytes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../offload/offload.h"
#include "eex.h"

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha(const void *data, size_t n, const char *want)
{
    uint8_t d[32];
    char got[65];
    eex_sha256(data, n, d);
    hex(d, got);
    cr_assert_str_eq(got, want, "sha256 of %zu bytes", n);
}

/* FIPS 180-2 appendix B and the NIST example vectors */
Test(sha256, published_vectors)
{
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    check_sha(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

/* lengths around the padding boundaries (55/56, 63/64/65, 119/120), from
 * Python's hashlib over bytes (7 i + 3) mod 256 */
Test(sha256, padding_boundaries)
{
    static const struct { size_t n; const char *d; } v[] = {
        {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
        {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
        {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
        {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
        {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
        {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
        {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
        {1000, "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371"},
        {4097, "225270fa091dc75bf959a0e3bbcb897fc3ae8e7fa128ae1394cf5614e15505f5"},
    };
    uint8_t buf[4097];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        check_sha(buf, v[i].n, v[i].d);
}

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

Test(f16, published_bit_patterns)
{
    static const struct { float f; uint16_t h; } v[] = {
        {0.0f, 0x0000}, {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.99f, 0x7bff},
        {65520.0f, 0x7c00}, {1e10f, 0x7c00}, {0x1p-14f, 0x0400}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000},
        {0x1.8p-25f, 0x0001}, {0.1f, 0x2e66}, {1.0f / 3.0f, 0x3555}, {3e-5f, 0x01f7}, {-1.5e-7f, 0x8003},
        {6.1e-5f, 0x03ff}, {1e-8f, 0x0000}, {INFINITY, 0x7c00}, {-INFINITY, 0xfc00}, {-0.0f, 0x8000},
        {1.0009765625f, 0x3c01}, {1.00048828125f, 0x3c00} /* tie -> even */, {1.00146484375f, 0x3c02} /* tie -> even */,
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        cr_assert_eq(eex_f32_to_f16(v[i].f), v[i].h, "%a -> 0x%04x, want 0x%04x", (double)v[i].f,
                     eex_f32_to_f16(v[i].f), v[i].h);
    const uint16_t nan = eex_f32_to_f16(NAN);
    cr_assert((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff), "NaN stays NaN");
    cr_assert(isnan(eex_f16_to_f32(nan)));
}

Test(f16, every_half_round_trips)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = eex_f16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        cr_assert_eq(eex_f32_to_f16(f), h, "0x%04x -> %a -> 0x%04x", h, (double)f, eex_f32_to_f16(f));
    }
}

#ifdef __FLT16_MAX__
/* The twin: the compiler's conversion, at every half, its midpoints to the
 * next half, one float ulp either side of them, and random floats. */
static void twin(float f)
{
    const _Float16 want = (_Float16)f;
    uint16_t w;
    memcpy(&w, &want, 2);
    const uint16_t got = eex_f32_to_f16(f);
    if (isnan(f))
        cr_assert((got & 0x7c00) == 0x7c00 && (got & 0x3ff));
    else
        cr_assert_eq(got, w, "%a: 0x%04x, the compiler says 0x%04x", (double)f, got, w);
    cr_assert(isnan(f) || eex_f16_to_f32(got) == (float)want);
}

Test(f16, matches_the_compilers_float16)
{
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const float a = eex_f16_to_f32((uint16_t)h), b = eex_f16_to_f32((uint16_t)(h + 1));
        const float mid = a + (b - a) / 2;  /* exact in float */
        uint32_t u;
        memcpy(&u, &mid, 4);
        for (int s = 0; s < 2; s++) {
            const float sg = s ? -1.0f : 1.0f;
            twin(sg * a), twin(sg * mid), twin(sg * bits_f(u - 1)), twin(sg * bits_f(u + 1));
        }
    }
    uint64_t st = 1;
    for (int i = 0; i < 2000000; i++)
        twin(bits_f((uint32_t)(eex_splitmix64(&st) >> 32)));
}
#endif

Test(i8, error_is_at_most_half_a_step_and_zero_is_exact)
{
    enum { N = 4096 };
    float x[N], y[N];
    uint8_t q[N];
    uint64_t st = 7;
    for (int i = 0; i < N; i++)
        x[i] = (float)((double)(eex_splitmix64(&st) >> 11) / 9007199254740992.0 * 7.0 - 2.0);
    x[5] = 0.0f;
    float scale;
    int32_t zp;
    cr_assert_eq(eexw_encode(x, N, EEXW_I8, q, &scale, &zp), EEX_OK);
    cr_assert(scale > 0 && zp >= -128 && zp <= 127);
    eexw_decode(q, N, EEXW_I8, scale, zp, y);
    for (int i = 0; i < N; i++)
        cr_assert(fabsf(x[i] - y[i]) <= scale * 0.5001f, "%g -> %g (scale %g)", x[i], y[i], scale);
    cr_assert_eq(y[5], 0.0f);
}

Test(i8, constant_zero_positive_and_bad_tensors)
{
    float z[4] = {0, 0, 0, 0}, y[4], p[3] = {2.5f, 2.5f, 2.5f};
    uint8_t q[4];
    float scale;
    int32_t zp;
    cr_assert_eq(eexw_encode(z, 4, EEXW_I8, q, &scale, &zp), EEX_OK);
    eexw_decode(q, 4, EEXW_I8, scale, zp, y);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(y[i], 0.0f);
    cr_assert_eq(eexw_encode(p, 3, EEXW_I8, q, &scale, &zp), EEX_OK);
    eexw_decode(q, 3, EEXW_I8, scale, zp, y);
    cr_assert(fabsf(y[0] - 2.5f) <= scale * 0.5001f);
    float bad[2] = {1.0f, NAN};
    cr_assert_eq(eexw_encode(bad, 2, EEXW_I8, q, &scale, &zp), EEX_ERR_NUMERIC);
}

Test(f16, saturates_finite_values_on_the_wire)
{
    float x[3] = {1e6f, -1e6f, 1.5f}, y[3];
    uint8_t q[6];
    float scale;
    int32_t zp;
    cr_assert_eq(eexw_encode(x, 3, EEXW_F16, q, &scale, &zp), EEX_OK);
    eexw_decode(q, 3, EEXW_F16, scale, zp, y);
    cr_assert_eq(y[0], 65504.0f);
    cr_assert_eq(y[1], -65504.0f);
    cr_assert_eq(y[2], 1.5f);
}

/* A whole INFER frame for a [1,2,3,4] tensor. */
static size_t make_infer(uint8_t *frame, int dtype)
{
    eexw_infer q = {.cut = 1, .expert = 2, .metric = 0, .dtype = dtype, .rank = 4, .threshold = 0.8f,
                    .dims = {1, 2, 3, 4}};
    memset(q.digest, 0xab, sizeof q.digest);
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i / 7.0f - 1.0f;
    const size_t body = eexw_infer_body_len(4, 24, dtype);
    uint8_t *b = frame + EEXW_HEADER;
    const size_t off = eexw_put_infer(b, &q);
    cr_assert_eq(eexw_encode(x, 24, dtype, b + off, &q.scale, &q.zero_point), EEX_OK);
    eexw_put_infer(b, &q);
    eexw_put_header(frame, EEXW_INFER, 0x1122334455667788ull, (uint32_t)body);
    eexw_seal(frame, (uint32_t)body);
    return body;
}

Test(frames, infer_round_trip_for_every_dtype)
{
    for (int dtype = EEXW_F32; dtype <= EEXW_I8; dtype++) {
        uint8_t frame[512];
        const size_t body = make_infer(frame, dtype);
        eexw_header h;
        cr_assert_eq(eexw_get_header(frame, &h), 0);
        cr_assert_eq(h.type, EEXW_INFER);
        cr_assert_eq(h.request_id, 0x1122334455667788ull);
        cr_assert_eq(h.body_len, body);
        cr_assert(eexw_crc_ok(frame, h.body_len));
        eexw_infer q;
        char reason[256];
        cr_assert_eq(eexw_get_infer(frame + EEXW_HEADER, h.body_len, &q, reason, sizeof reason), 0, "%s", reason);
        cr_assert_eq(q.cut, 1);
        cr_assert_eq(q.expert, 2);
        cr_assert_eq(q.rank, 4);
        cr_assert_eq(q.elems, 24u);
        cr_assert_eq(q.dims[3], 4);
        cr_assert_float_eq(q.threshold, 0.8f, 1e-7);
        float y[24];
        eexw_decode(q.payload, q.elems, q.dtype, q.scale, q.zero_point, y);
        const float tol = dtype == EEXW_F32 ? 0.0f : dtype == EEXW_F16 ? 1e-3f : q.scale * 0.5001f;
        for (int i = 0; i < 24; i++)
            cr_assert(fabsf(y[i] - ((float)i / 7.0f - 1.0f)) <= tol, "dtype %d value %d", dtype, i);
    }
}

Test(frames, header_errors)
{
    uint8_t frame[512];
    make_infer(frame, EEXW_F32);
    eexw_header h;
    frame[0] = 'X';
    cr_assert_eq(eexw_get_header(frame, &h), EEX_WIRE_ERR_MALFORMED);
    frame[0] = 'E';
    frame[4] = 2;
    cr_assert_eq(eexw_get_header(frame, &h), EEX_WIRE_ERR_VERSION);
    cr_assert_eq(h.version, 2);
}

Test(frames, every_flipped_bit_breaks_the_crc)
{
    uint8_t frame[512];
    const uint32_t body = (uint32_t)make_infer(frame, EEXW_F16);
    for (uint32_t i = 0; i < (EEXW_HEADER + body) * 8; i += 3) {
        frame[i / 8] ^= (uint8_t)(1u << (i % 8));
        cr_assert(!eexw_crc_ok(frame, body), "bit %u", i);
        frame[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    cr_assert(eexw_crc_ok(frame, body));
}

static int infer_err(const uint8_t *b, uint32_t len)
{
    eexw_infer q;
    char reason[256];
    return eexw_get_infer(b, len, &q, reason, sizeof reason);
}

Test(frames, infer_body_checks_every_length)
{
    uint8_t frame[512], b[512];
    const uint32_t len = (uint32_t)make_infer(frame, EEXW_F32);
    memcpy(b, frame + EEXW_HEADER, len);
    for (uint32_t n = 0; n < len; n++)  /* every truncation is refused */
        cr_assert_eq(infer_err(b, n), EEX_WIRE_ERR_REQUEST, "truncated to %u", n);
    cr_assert_eq(infer_err(b, len), 0);
    uint8_t c[512];
    memcpy(c, b, len);
    c[38] = 0;  /* rank 0 */
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    c[38] = 9;
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    memcpy(c, b, len);
    c[37] = 9;  /* dtype */
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    memcpy(c, b, len);
    c[36] = 5;  /* metric */
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    memcpy(c, b, len);
    eexw_put_u32(c + EEXW_INFER_FIXED, 0);  /* a zero dim */
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    memcpy(c, b, len);
    for (int d = 0; d < 4; d++)  /* dims whose product overflows */
        eexw_put_u32(c + EEXW_INFER_FIXED + 4 * d, 0xffffffffu);
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    memcpy(c, b, len);
    eexw_put_u32(c + EEXW_INFER_FIXED + 12, 5);  /* payload too short for the shape */
    cr_assert_eq(infer_err(c, len), EEX_WIRE_ERR_REQUEST);
    cr_assert_eq(infer_err(b, len - 1), EEX_WIRE_ERR_REQUEST);
    uint8_t i8[512];
    const uint32_t l8 = (uint32_t)make_infer(i8, EEXW_I8);
    eexw_put_f32(i8 + EEXW_HEADER + 44, -1.0f);  /* negative int8 scale */
    cr_assert_eq(infer_err(i8 + EEXW_HEADER, l8), EEX_WIRE_ERR_REQUEST);
    eexw_put_f32(i8 + EEXW_HEADER + 44, NAN);
    cr_assert_eq(infer_err(i8 + EEXW_HEADER, l8), EEX_WIRE_ERR_REQUEST);
}

Test(frames, result_and_error_round_trip)
{
    eex_cloud_answer a = {.exit = 3, .cls = 7, .confidence = 0.9f, .n = 2, .first_exit = 3, .server_ms = 1.5,
                          .classes = {7, 4}, .confidences = {0.9f, 0.6f}};
    uint8_t b[256];
    const uint32_t n = eexw_put_result(b, &a);
    cr_assert_eq(n, EEXW_RESULT_FIXED + 2 * EEXW_RESULT_ENTRY);
    eex_cloud_answer g;
    cr_assert_eq(eexw_get_result(b, n, &g), 0);
    cr_assert_eq(g.exit, 3);
    cr_assert_eq(g.cls, 7);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.classes[1], 4);
    cr_assert_float_eq(g.server_ms, 1.5, 1e-3);
    cr_assert_neq(eexw_get_result(b, n - 1, &g), 0);
    b[3] = 0;  /* no classifiers */
    cr_assert_neq(eexw_get_result(b, EEXW_RESULT_FIXED, &g), 0);
    b[3] = 2;
    b[2] = 9;  /* an exit it did not report */
    cr_assert_neq(eexw_get_result(b, n, &g), 0);

    uint8_t e[600];
    const uint32_t m = eexw_put_error(e, EEX_WIRE_ERR_DIGEST, "wrong\x01model");
    int code;
    char reason[64];
    cr_assert_eq(eexw_get_error(e, m, &code, reason, sizeof reason), 0);
    cr_assert_eq(code, EEX_WIRE_ERR_DIGEST);
    cr_assert_str_eq(reason, "wrong?model", "control bytes are not passed on");
    cr_assert_neq(eexw_get_error(e, m + 1, &code, reason, sizeof reason), 0);
    eexw_put_u16(e + 2, 60000);
    cr_assert_neq(eexw_get_error(e, m, &code, reason, sizeof reason), 0);
}

/* Random bodies: the parsers must refuse or accept without reading past the
 * end (the sanitizer build catches what a plain build would not). */
Test(frames, random_bodies_never_read_past_the_end)
{
    uint64_t st = 99;
    for (int it = 0; it < 20000; it++) {
        const uint32_t len = (uint32_t)(eex_splitmix64(&st) % 200);
        uint8_t *b = malloc(len ? len : 1);
        for (uint32_t i = 0; i < len; i++)
            b[i] = (uint8_t)eex_splitmix64(&st);
        if (len > 38 && it % 2)
            b[38] = (uint8_t)(1 + it % 8), b[37] = (uint8_t)(1 + it % 3), b[36] = 0;
        infer_err(b, len);
        eex_cloud_answer a;
        eexw_get_result(b, len, &a);
        int code;
        char reason[32];
        eexw_get_error(b, len, &code, reason, sizeof reason);
        free(b);
    }
}

/* Payload packing: lossless for every dtype and size, smaller than raw for
 * activation-like f16 data, and safe on hostile bytes. */
Test(pack, round_trips_and_shrinks_f16_activations)
{
    uint64_t st = 3;
    const size_t sizes[] = {1, 15, 16, 17, 384, 1024, 7840};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const size_t n = sizes[si];
        float *x = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {  /* roughly normal activations */
            double g = 0;
            for (int k = 0; k < 4; k++)
                g += (double)(eex_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.5;
            x[i] = (float)(g * 1.7);
        }
        for (int dtype = EEXW_F32; dtype <= EEXW_I8; dtype++) {
            const size_t es = eexw_dtype_size(dtype);
            uint8_t *raw = malloc(n * es), *packed = malloc(eexw_pack_bound(n, es)), *back = malloc(n * es);
            float scale;
            int32_t zp;
            cr_assert_eq(eexw_encode(x, n, dtype, raw, &scale, &zp), EEX_OK);
            const size_t len = eexw_pack(raw, n, es, packed);
            cr_assert(len <= eexw_pack_bound(n, es));
            cr_assert_eq(eexw_unpack(packed, len, n, es, back), 0, "n %zu dtype %d", n, dtype);
            cr_assert(!memcmp(raw, back, n * es), "n %zu dtype %d: packing is lossless", n, dtype);
            if (dtype == EEXW_F16 && n >= 384)
                cr_assert(len < n * es * 9 / 10, "f16 of %zu values packs to %zu bytes", n, len);
            cr_assert_neq(eexw_unpack(packed, len - 1, n, es, back), 0, "a byte short");
            free(raw), free(packed), free(back);
        }
        free(x);
    }
}

Test(pack, hostile_payloads_never_overrun)
{
    uint64_t st = 11;
    uint8_t out[4 * 64];
    for (int it = 0; it < 20000; it++) {
        const size_t len = (size_t)(eex_splitmix64(&st) % 300), es = (size_t)1 << (eex_splitmix64(&st) % 3);
        uint8_t *b = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)eex_splitmix64(&st);
        if (len > 6 && it % 2)
            b[0] = 1, b[1] = (uint8_t)(len / 2), b[2] = b[3] = b[4] = 0;  /* a plausible coded plane */
        eexw_unpack(b, len, 64, es, out);
        free(b);
    }
    uint8_t bad[8] = {7, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_neq(eexw_unpack(bad, 8, 2, 1, out), 0, "unknown plane mode");
    uint8_t huge[9] = {1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    cr_assert_neq(eexw_unpack(huge, 9, 2, 1, out), 0, "plane length past the payload");
}

/* ---- authentication ---- */

static void check_hmac(const void *key, size_t klen, const void *msg, size_t mlen, const char *want)
{
    eexw_key k;
    uint8_t tag[EEXW_TAG];
    char got[65];
    eexw_key_init(&k, key, klen);
    eexw_hmac(&k, msg, mlen, tag);
    hex(tag, got);
    cr_assert(!strncmp(got, want, strlen(want)), "HMAC-SHA256: %s, want %s", got, want);
}

/* RFC 4231, test cases 1-7 (case 5 is truncated to 128 bits) */
Test(hmac, rfc4231_vectors)
{
    uint8_t k[131], d[50];
    memset(k, 0x0b, 20);
    check_hmac(k, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k, 0xaa, 20);
    memset(d, 0xdd, 50);
    check_hmac(k, 20, d, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    for (int i = 0; i < 25; i++)
        k[i] = (uint8_t)(i + 1);
    memset(d, 0xcd, 50);
    check_hmac(k, 25, d, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    memset(k, 0x0c, 20);
    check_hmac(k, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b");
    memset(k, 0xaa, 131);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    check_hmac(k, 131, m6, strlen(m6), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    const char *m7 = "This is a test using a larger than block-size key and a larger than block-size data. The key needs "
                     "to be hashed before being used by the HMAC algorithm.";
    check_hmac(k, 131, m7, strlen(m7), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* the incremental SHA-256 equals the one-shot one however the input is split */
Test(sha256, incremental_equals_one_shot)
{
    uint8_t buf[1000], a[32], b[32];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 13 + 5);
    uint64_t st = 5;
    for (int it = 0; it < 300; it++) {
        const size_t n = (size_t)(eex_splitmix64(&st) % sizeof buf);
        eex_sha256(buf, n, a);
        eex_sha256_ctx c;
        eex_sha256_init(&c);
        for (size_t off = 0; off < n;) {
            const size_t k = (size_t)(eex_splitmix64(&st) % 130);
            const size_t take = k < n - off ? k : n - off;
            eex_sha256_update(&c, buf + off, take);
            off += take;
        }
        eex_sha256_final(&c, b);
        cr_assert(!memcmp(a, b, 32), "%zu bytes", n);
    }
}

Test(hmac, tag_compare)
{
    uint8_t a[EEXW_TAG], b[EEXW_TAG];
    memset(a, 7, sizeof a);
    memcpy(b, a, sizeof a);
    cr_assert(eexw_tag_equal(a, b));
    for (int i = 0; i < EEXW_TAG; i++) {
        b[i] ^= 0x80;
        cr_assert(!eexw_tag_equal(a, b), "byte %d", i);
        b[i] ^= 0x80;
    }
}

/* A tagged frame: accepted with the key; refused without a tag, with another
 * key, and after any change to header, body or tag. */
Test(frames, authenticated_frames)
{
    uint8_t frame[600];
    eexw_key k, other;
    eexw_key_init(&k, "0123456789abcdef0123", 20);
    eexw_key_init(&other, "0123456789abcdef0124", 20);
    const uint32_t body = (uint32_t)make_infer(frame, EEXW_F16);
    cr_assert(eexw_crc_ok(frame, body));
    cr_assert_eq(eexw_auth_check(frame, body, &k), 1, "an untagged frame has no tag");
    const size_t n = eexw_finish(frame, body, &k);
    cr_assert_eq(n, EEXW_HEADER + body + EEXW_TAG + EEXW_TRAILER);
    eexw_header h;
    cr_assert_eq(eexw_get_header(frame, &h), 0);
    cr_assert_eq(h.flags, EEXW_F_AUTH);
    cr_assert(eexw_crc_ok(frame, body));
    cr_assert_eq(eexw_auth_check(frame, body, &k), 0);
    cr_assert_eq(eexw_auth_check(frame, body, &other), 2, "another key");
    for (size_t i = 0; i < EEXW_HEADER + body + EEXW_TAG; i++) {
        if (i == 6)
            continue;  /* the flags byte: clearing the bit makes it untagged (1), checked above */
        frame[i] ^= 0x01;
        cr_assert_eq(eexw_auth_check(frame, body, &k), 2, "byte %zu changed", i);
        frame[i] ^= 0x01;
    }
    frame[6] ^= 0x01;
    cr_assert_eq(eexw_auth_check(frame, body, &k), 1);
    frame[6] ^= 0x01;
    /* unknown flags are refused by the header reader */
    frame[7] = 0x80;
    cr_assert_eq(eexw_get_header(frame, &h), EEX_WIRE_ERR_MALFORMED);
}

Test(key, file_rules)
{
    char dir[] = "/tmp/eex-key-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/k", dir);
    uint8_t key[EEX_KEY_MAX];
    size_t len;
    FILE *f = fopen(path, "wb");
    fputs("0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    chmod(path, 0600);
    cr_assert_eq(eex_key_read(path, key, sizeof key, &len), EEX_OK, "%s", eex_last_error());
    cr_assert_eq(len, 33u, "every byte is the key, the newline too");
    chmod(path, 0644);
    cr_assert_eq(eex_key_read(path, key, sizeof key, &len), EEX_ERR_ARGUMENT, "readable by others");
    cr_assert(strstr(eex_last_error(), "chmod"), "%s", eex_last_error());
    f = fopen(path, "wb");
    fputs("short", f);
    fclose(f);
    chmod(path, 0600);
    cr_assert_eq(eex_key_read(path, key, sizeof key, &len), EEX_ERR_ARGUMENT, "too short");
    snprintf(path, sizeof path, "%s/missing", dir);
    cr_assert_eq(eex_key_read(path, key, sizeof key, &len), EEX_ERR_IO);
    snprintf(path, sizeof path, "%s/k", dir);
    unlink(path);
    rmdir(dir);
}

/* A reply's tag covers its request's tag: it verifies against that request
 * only (docs/protocol.md, "Replies bound to requests"). */
Test(frames, replies_bound_to_requests)
{
    uint8_t frame[128], req1[EEXW_TAG], req2[EEXW_TAG];
    eexw_key k;
    eexw_key_init(&k, "0123456789abcdef0123", 20);
    memset(req1, 0x11, sizeof req1);
    memset(req2, 0x11, sizeof req2);
    req2[31] ^= 1;
    const uint32_t n = eexw_put_error(frame + EEXW_HEADER, EEX_WIRE_ERR_DIGEST, "x");
    eexw_put_header(frame, EEXW_ERROR, 5, n);
    eexw_finish_reply(frame, n, &k, req1);
    cr_assert_eq(eexw_auth_check_reply(frame, n, &k, req1), 0);
    cr_assert_eq(eexw_auth_check_reply(frame, n, &k, req2), 2, "another request's tag");
    cr_assert_eq(eexw_auth_check_reply(frame, n, &k, NULL), 2, "no request tag");
    cr_assert_eq(eexw_auth_check(frame, n, &k), 2, "the unbound form");
    eexw_finish_reply(frame, n, &k, NULL);
    cr_assert_eq(eexw_auth_check_reply(frame, n, &k, NULL), 0, "zeros stand for an unread request tag");
}

/* The replay window: a tag is refused while among the last n recorded, and
 * forgotten once n newer ones came; the index stays consistent over many
 * wraps. */
Test(replay, window)
{
    enum { N = 64 };
    eexw_replay *r = eexw_replay_new(N);
    cr_assert(r);
    uint8_t tag[EEXW_TAG] = {0};
    for (uint32_t i = 0; i < 10 * N; i++) {
        memset(tag, 0, sizeof tag);
        eexw_put_u32(tag, i * 2654435761u % 97);  /* many share a bucket */
        eexw_put_u32(tag + 4, i);
        cr_assert_eq(eexw_replay_seen(r, tag), 0, "new tag %u", i);
        cr_assert_eq(eexw_replay_seen(r, tag), 1, "tag %u again", i);
    }
    /* the last N are held, the one before them is not */
    const uint32_t last = 10 * N - 1;
    for (uint32_t j = last - N + 1; j <= last; j++) {
        memset(tag, 0, sizeof tag);
        eexw_put_u32(tag, j * 2654435761u % 97);
        eexw_put_u32(tag + 4, j);
        cr_assert_eq(eexw_replay_seen(r, tag), 1, "tag %u within the window", j);
    }
    memset(tag, 0, sizeof tag);
    eexw_put_u32(tag, (last - N) * 2654435761u % 97);
    eexw_put_u32(tag + 4, last - N);
    cr_assert_eq(eexw_replay_seen(r, tag), 0, "tag %u fell out of the window", last - N);
    eexw_replay_free(r);
    cr_assert_null(eexw_replay_new(0));
}
