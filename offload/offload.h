/* Internals of the partition executor: the v1 wire layout (docs/protocol.md
 * is the authority), the tensor codecs, socket helpers and the cloud-side
 * resume. Shared by the client, the server and the unit tests. What the CLI
 * and other programs use is public: include/eex_offload.h. */
#ifndef EEX_OFFLOAD_H
#define EEX_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../base/half.h"
#include "eex_offload.h"

/* ---- frames ---- */
#define EEXW_MAGIC "EEXW"
#define EEXW_VERSION 1
#define EEXW_HEADER 20         /* magic 4, version 1, type 1, flags 2, request id 8, body length 4 */
#define EEXW_TRAILER 4         /* CRC-32 of header + body (+ tag) */
#define EEXW_TAG 32            /* HMAC-SHA256 tag after the body of an authenticated frame */
#define EEXW_F_AUTH 0x0001u    /* flags: the frame carries a tag (docs/protocol.md, "Authentication") */
#define EEXW_F_KNOWN EEXW_F_AUTH
#define EEXW_MAX_BODY (64u << 20)  /* absolute cap; receivers use tighter limits */

enum eexw_type { EEXW_INFER = 1, EEXW_RESULT = 2, EEXW_ERROR = 3, EEXW_PING = 4, EEXW_PONG = 5 };

enum eexw_dtype { EEXW_F32 = 1, EEXW_F16 = 2, EEXW_I8 = 3, EEXW_Q4 = 4 };

/* Error codes of an ERROR frame: the public eex_wire_error (include/eex_offload.h),
 * EEX_WIRE_ERR_*. */
const char *eexw_error_name(int code);
/* The one pair between statuses and error codes: the code a server's
 * failure is sent as (EEX_WIRE_ERR_INTERNAL for a status without its own code)
 * and the status an edge reports for a code (EEX_ERR_IO for one without). */
int eexw_error_of_status(eex_status st);
eex_status eexw_status_of_error(int code);
/* 1 when the server keeps the connection open after this error code. */
int eexw_error_keeps_open(int code);
/* A client's first request id: random per process, below 2^62. */
uint64_t eexw_random_id_base(void);

#define EEXW_INFER_FIXED 52    /* INFER body before the dims */
#define EEXW_RESULT_FIXED 16   /* RESULT body before the per-classifier entries */
#define EEXW_RESULT_ENTRY 12
#define EEXW_MAX_REASON 512

typedef struct eexw_header {
    int version, type, flags;
    uint64_t request_id;
    uint32_t body_len;
} eexw_header;

/* ---- SHA-256 and HMAC-SHA256 (sha256.c, hmac.c) ---- */
typedef struct eex_sha256_ctx {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} eex_sha256_ctx;
void eex_sha256_init(eex_sha256_ctx *c);
void eex_sha256_update(eex_sha256_ctx *c, const void *data, size_t size);
void eex_sha256_final(eex_sha256_ctx *c, uint8_t digest[EEX_DIGEST_BYTES]);

/* A frame key: the SHA-256 states after the key's inner and outer pads. */
typedef struct eexw_key {
    eex_sha256_ctx inner, outer;
} eexw_key;
void eexw_key_init(eexw_key *k, const void *key, size_t len);
void eexw_hmac(const eexw_key *k, const void *msg, size_t len, uint8_t tag[EEXW_TAG]);
/* 1 when equal; the time taken does not depend on where they differ. */
int eexw_tag_equal(const uint8_t *a, const uint8_t *b);
/* HMAC of msg followed by more (a reply's bytes and its request's tag). */
void eexw_hmac2(const eexw_key *k, const void *msg, size_t len, const void *more, size_t more_len,
                uint8_t tag[EEXW_TAG]);

/* Recent request tags (replay.c): eexw_replay_seen returns 1 when the tag
 * is among the last n recorded, else records it and returns 0. */
#define EEXW_REPLAY_BYTES 16
#define EEXW_REPLAY_MAX (1u << 24)
typedef struct eexw_replay eexw_replay;
eexw_replay *eexw_replay_new(uint32_t n);
void eexw_replay_free(eexw_replay *r);
int eexw_replay_seen(eexw_replay *r, const uint8_t tag[EEXW_TAG]);

/* Bytes after the body: the tag when flags has EEXW_F_AUTH, then the CRC. */
static inline size_t eexw_trailer(int flags) { return ((unsigned)flags & EEXW_F_AUTH ? EEXW_TAG : 0) + EEXW_TRAILER; }

/* Writes the 20-byte header (flags 0; eexw_finish sets EEXW_F_AUTH). */
void eexw_put_header(uint8_t *p, int type, uint64_t request_id, uint32_t body_len);
/* Reads a header: 0, or the error code it deserves (MALFORMED for bad magic
 * or unknown flags, VERSION). The body length is NOT checked here; the
 * caller bounds it before allocating. */
int eexw_get_header(const uint8_t *p, eexw_header *h);
/* Completes a frame whose header and body are written: with a key, sets
 * EEXW_F_AUTH and appends the tag over frame[0, EEXW_HEADER + body_len);
 * then the CRC over everything before it. Returns the frame's length. */
size_t eexw_finish(uint8_t *frame, uint32_t body_len, const eexw_key *key);
/* The same for a reply: with a key, the tag covers frame[0, EEXW_HEADER +
 * body_len) followed by the 32-byte tag of the request it answers (`bind`;
 * zeros when the request's tag was never read), so a reply verifies only
 * against its own request (docs/protocol.md, "Replies bound to requests"). */
size_t eexw_finish_reply(uint8_t *frame, uint32_t body_len, const eexw_key *key, const uint8_t bind[EEXW_TAG]);
/* eexw_finish without a key. */
void eexw_seal(uint8_t *frame, uint32_t body_len);
/* 1 when the CRC at the end of a whole frame matches (the header's flags say
 * where it is). */
int eexw_crc_ok(const uint8_t *frame, uint32_t body_len);
/* A whole frame against a key: 0 when it carries a tag and the tag is right;
 * 1 when it carries none; 2 when the tag is wrong. */
int eexw_auth_check(const uint8_t *frame, uint32_t body_len, const eexw_key *key);
/* eexw_auth_check for a reply to the request whose tag is `bind`. */
int eexw_auth_check_reply(const uint8_t *frame, uint32_t body_len, const eexw_key *key, const uint8_t bind[EEXW_TAG]);

/* An INFER request as parsed (payload points into the frame). */
typedef struct eexw_infer {
    uint8_t digest[EEX_DIGEST_BYTES];
    int cut, expert, metric, dtype, rank, packing;
    float threshold, scale;
    int32_t zero_point;
    int64_t dims[EEX_MAX_RANK];
    size_t elems;
    const uint8_t *payload;
    size_t payload_len;
} eexw_infer;

/* Bytes of the INFER body for a tensor sent raw (packing 0). */
size_t eexw_infer_body_len(int rank, size_t elems, int dtype);
/* The largest INFER body for a tensor, raw or packed. */
size_t eexw_infer_body_max(int rank, size_t elems, int dtype);

/* Payload packing 1 (pack.c): byte planes, the top one range-coded. raw is
 * elems x size bytes as eexw_encode writes them; dst holds at least
 * eexw_pack_bound bytes. eexw_unpack: 0, or -1 for a malformed payload
 * (it never reads outside src nor writes outside raw). */
size_t eexw_pack_bound(size_t elems, size_t size);
size_t eexw_pack(const uint8_t *raw, size_t elems, size_t size, uint8_t *dst);
int eexw_unpack(const uint8_t *src, size_t len, size_t elems, size_t size, uint8_t *raw);
/* Writes the INFER body fields (not the payload) into body; returns the
 * offset where the payload goes. */
size_t eexw_put_infer(uint8_t *body, const eexw_infer *q);
/* Parses and checks an INFER body of body_len bytes: 0, or EEX_WIRE_ERR_REQUEST
 * with a reason. Every count is checked before it is used. */
int eexw_get_infer(const uint8_t *body, uint32_t body_len, eexw_infer *q, char *reason, size_t cap);

/* RESULT body: the cloud's choice, then its classifiers. */
uint32_t eexw_put_result(uint8_t *body, const eex_cloud_answer *a);
int eexw_get_result(const uint8_t *body, uint32_t body_len, eex_cloud_answer *a);
/* ERROR body: code and reason (truncated to EEXW_MAX_REASON). */
uint32_t eexw_put_error(uint8_t *body, int code, const char *reason);
int eexw_get_error(const uint8_t *body, uint32_t body_len, int *code, char *reason, size_t cap);

/* Little-endian scalars. */
static inline void eexw_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static inline void eexw_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void eexw_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t eexw_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t eexw_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t eexw_u64(const uint8_t *p) { return (uint64_t)eexw_u32(p) | (uint64_t)eexw_u32(p + 4) << 32; }
void eexw_put_f32(uint8_t *p, float v);
float eexw_f32(const uint8_t *p);

/* ---- codecs ---- */
/* IEEE binary16 <-> binary32: base/half.h */
/* int8 parameters for a tensor: range [min(x, 0), max(x, 0)] over 256 steps,
 * so 0 is exact. EEX_ERR_NUMERIC for a non-finite value. */
eex_status eex_i8_params(const float *x, size_t n, float *scale, int32_t *zero_point);
static inline int8_t eex_i8_quantize(float x, float scale, int32_t zp);
float eex_i8_dequantize(int8_t q, float scale, int32_t zp);
/* Encodes n floats as dtype into dst (n * size bytes); decodes back. */
eex_status eexw_encode(const float *x, size_t n, int dtype, uint8_t *dst, float *scale, int32_t *zp);
void eexw_decode(const uint8_t *src, size_t n, int dtype, float scale, int32_t zp, float *x);
size_t eexw_dtype_size(int dtype);  /* bytes an element; q4: 1 (its payload is counted in bytes) */
const char *eexw_dtype_name(int dtype);
/* Per-channel forms for every dtype (codec4.c): groups = dims[1] of a
 * [1,C,...] tensor (1 for rank 1). eexw_raw_bytes: the encoded bytes before
 * packing (q4: 4 x groups + ceil(elems / 2)); eexw_decode_ch returns -1 for
 * q4 parameters that are not finite (a hostile frame). Other dtypes ignore
 * groups. */
size_t eexw_raw_bytes(int dtype, size_t elems, size_t groups);
eex_status eexw_encode_ch(const float *x, size_t elems, size_t groups, int dtype, uint8_t *dst, float *scale,
                          int32_t *zp);
int eexw_decode_ch(const uint8_t *src, size_t elems, size_t groups, int dtype, float scale, int32_t zp, float *x);

#include <math.h>
static inline int8_t eex_i8_quantize(float x, float scale, int32_t zp)
{
    float q = nearbyintf(x / scale) + (float)zp;  /* the default rounding mode: ties to even */
    q = q < -128.0f ? -128.0f : q > 127.0f ? 127.0f : q;
    return (int8_t)q;
}

/* ---- time and sockets (net.c) ---- */
double eex_now_ms(void);     /* CLOCK_MONOTONIC */
int eex_set_nonblock(int fd);  /* 0, or -1 */
/* Sets O_NONBLOCK and, for TCP, TCP_NODELAY. */
int eex_sock_prepare(int fd);
/* The congestion control both ends use unless told otherwise: cubic, else
 * reno (a pacing one, BBR, delays a reply behind a PONG; see net.c). */
void eex_sock_default_cc(int fd);
/* The congestion control fd has ("" when unknown). */
void eex_sock_cc_name(int fd, char *name, size_t cap);
/* The kernel's smoothed RTT of a TCP socket in ms (0 when unknown). */
double eex_sock_rtt_ms(int fd);
/* A non-blocking listening TCP socket on host:port (SO_REUSEADDR, the
 * default congestion control, which accepted sockets inherit); *bound is the
 * port it got (port 0: any). On failure *fd may be open: the caller closes. */
eex_status eex_listen(const char *host, int port, int *fd, int *bound);
/* Loops on a non-blocking socket, every wait bounded by the absolute
 * deadline (ms, eex_now_ms): 0 done, 1 the deadline came first, -1 failed
 * with errno (0 when the peer closed or a send wrote nothing). eex_recv_all
 * adds what arrived to *got. */
int eex_connect_by(int fd, const struct sockaddr *addr, socklen_t len, double deadline);
int eex_send_all(int fd, const uint8_t *p, size_t n, double deadline);
int eex_recv_all(int fd, uint8_t *p, size_t n, double deadline, size_t *got);

/* ---- the cloud half ---- */
/* Finishes the network from a cut tensor (NCHW, batch 1): every side exit
 * after the cut and the final, for one expert; fills a with each
 * classifier's calibrated confidence and the rule's choice at `threshold`. */
eex_status eex_offload_resume(eex_session *s, int cut, const float *data, const int64_t *shape, int rank, int expert,
                              eex_metric metric, float threshold, eex_cloud_answer *a);
/* The same for n cut tensors of one cut and expert at once (data: n tensors
 * of the cut's shape back to back, i.e. NCHW with N = n), as one run of the
 * remaining layers at batch n (the session is re-planned when its batch
 * differs). Each image has its own metric and threshold; each[i] is its
 * status (EEX_ERR_NUMERIC for non-finite logits) and a[i] its answer. The
 * return value is EEX_OK when the run itself happened (then look at each[]).
 * Every image's answer equals eex_offload_resume on it alone, bit for bit
 * (tests/offload/test_batch.c), as long as the kernels compute an image's
 * values independently of the batch (docs/architecture.md). */
eex_status eex_offload_resume_batch(eex_session *s, int cut, const float *data, int n, int expert,
                                    const eex_metric *metric, const float *threshold, eex_cloud_answer *a,
                                    eex_status *each);

#endif
