/* The early-exit executor on a real exported model (tests/ee/make_tiny.py,
 * path in EEX_TEST_MODEL): a policy run computes nothing past the exit it
 * takes, cut + resume equals a full run bit for bit, temperatures and the
 * strict > are honoured, bad numbers and unknown experts are errors.
 * White-box where it must be: it reads the session's executed-node flags. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../branches/bandit.h"
#include "../../engine/session.h"
#include "../../weights/metawrite.h"
#include "eex.h"

static eex_model *model;
static float image[3 * 28 * 28], spectrum[32 * 32];

static void setup(void)
{
    const char *path = getenv("EEX_TEST_MODEL");
    cr_assert(path, "set EEX_TEST_MODEL to the model from tests/ee/make_tiny.py");
    cr_assert_eq(eex_model_open(path, &model), EEX_OK, "%s", eex_last_error());
    cr_assert_eq(eex_model_exit_count(model), 3);
    cr_assert_eq(eex_model_expert_count(model), 3);
    uint64_t st = 42;
    for (size_t i = 0; i < sizeof image / sizeof *image; i++)
        image[i] = (float)(eex_splitmix64(&st) >> 40) / (1 << 24) * 4.0f - 2.0f;
    for (size_t i = 0; i < sizeof spectrum / sizeof *spectrum; i++)
        spectrum[i] = (float)(eex_splitmix64(&st) >> 40) / (1 << 24);
}

static void teardown(void) { eex_model_close(model); }

static eex_session *new_session(void)
{
    eex_session *s;
    cr_assert_eq(eex_session_new(model, NULL, &s), EEX_OK, "%s", eex_last_error());
    const int64_t ishape[4] = {1, 3, 28, 28}, dshape[4] = {1, 1, 32, 32};
    cr_assert_eq(eex_session_set_input(s, eex_model_image_input(model), image, ishape, 4), EEX_OK);
    cr_assert_eq(eex_session_set_input(s, eex_model_detector_input(model), spectrum, dshape, 4), EEX_OK);
    return s;
}

static eex_policy policy(float t, int expert) { return (eex_policy){.threshold = t, .expert = expert, .cut = EEX_NO_CUT}; }

/* Nodes a run to exit k (0-based, k = E: final) with expert e must execute. */
static void expected_nodes(int k, int e, int with_detector, unsigned char *want)
{
    const eex_ee *ee = &model->ee;
    memset(want, 0, (size_t)model->n_nodes);
    for (int j = 0; j <= k; j++) {
        for (int i = 0; i < ee->stage[j].n; i++)
            want[ee->stage[j].idx[i]] = 1;
        const eex_nodeset *h = &ee->head[j * ee->n_experts + e];
        for (int i = 0; i < h->n; i++)
            want[h->idx[i]] = 1;
    }
    for (int i = 0; with_detector && i < ee->detector.n; i++)
        want[ee->detector.idx[i]] = 1;
}

static void assert_executed(const eex_session *s, const unsigned char *want, const char *what)
{
    int n = 0;
    for (int i = 0; i < model->n_nodes; i++) {
        cr_assert_eq(!!s->done[i], want[i], "%s: node %d '%s' executed=%d, expected %d", what, i,
                     model->nodes[i].name, s->done[i], want[i]);
        n += want[i];
    }
    cr_assert_eq(s->nodes_executed, n, "%s: %d nodes executed, expected %d", what, s->nodes_executed, n);
    cr_assert_lt(n, model->n_nodes, "%s: a partial run must skip something", what);
}

TestSuite(ee, .init = setup, .fini = teardown);

Test(ee, policy_computes_no_node_past_the_exit_taken)
{
    unsigned char want[512];
    cr_assert_lt(model->n_nodes, 512);
    eex_session *s = new_session();
    eex_exit_result r;
    for (int e = 0; e < 3; e++) {
        eex_policy p = policy(-1.0f, e);  /* any confidence is > -1: exit 1 answers */
        cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK, "%s", eex_last_error());
        cr_assert_eq(r.where, EEX_WHERE_EDGE);
        cr_assert_eq(r.exit, 1);
        cr_assert_eq(r.n_computed, 1);
        expected_nodes(0, e, 0, want);
        assert_executed(s, want, "exit 1");
        cr_assert_eq(r.nodes_executed, s->nodes_executed);
    }
    /* nothing above 1.0: every exit, then the final classifier */
    eex_policy p = policy(1.0f, 1);
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_eq(r.where, EEX_WHERE_LOCAL);
    cr_assert_eq(r.n_computed, 4);
    expected_nodes(3, 1, 0, want);
    assert_executed(s, want, "final, expert blur");
    /* with the detector choosing */
    p = policy(-1.0f, EEX_EXPERT_AUTO);
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_geq(r.detector_class, 0);
    cr_assert_eq(r.expert, r.detector_class, "detector classes are the expert sets in order");
    expected_nodes(0, r.expert, 1, want);
    assert_executed(s, want, "exit 1 with the detector");
    eex_session_free(s);
}

Test(ee, stop_at_cut_runs_exactly_the_nodes_before_it)
{
    eex_session *s = new_session();
    unsigned char want[512];
    for (int c = 0; c < eex_model_cut_count(model); c++) {
        eex_policy p = policy(1.0f, 0);
        p.cut = c;
        eex_exit_result r;
        cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
        cr_assert_eq(r.where, EEX_WHERE_CUT);
        cr_assert_eq(r.cut, c);
        cr_assert_eq(r.exit, 0);
        const int before = eex_model_cut_exit(model, c);
        cr_assert_eq(r.n_computed, before, "exits before cut %d", c);
        expected_nodes(before ? before - 1 : 0, 0, 0, want);
        if (!before)
            memset(want, 0, (size_t)model->n_nodes);
        const eex_nodeset *tc = &model->ee.to_cut[c];
        for (int i = 0; i < tc->n; i++)
            want[tc->idx[i]] = 1;
        assert_executed(s, want, "cut");
    }
    eex_session_free(s);
}

Test(ee, cut_then_resume_equals_a_full_run_bit_for_bit)
{
    const int E = eex_model_exit_count(model), C = eex_model_class_count(model);
    for (int threads = 1; threads <= 2; threads++)
        for (int e = 0; e < 3; e++)
            for (int c = 0; c < eex_model_cut_count(model); c++) {
                eex_session *full = new_session();
                cr_assert_eq(eex_session_run_all(full), EEX_OK);
                float want[64], got[64], cut[16 * 28 * 28];
                cr_assert_eq(eex_session_exit_probs(full, E + 1, e, want, 64), EEX_OK);

                eex_session *edge = new_session();
                eex_policy p = policy(1.0f, e);
                p.cut = c;
                eex_exit_result r;
                cr_assert_eq(eex_session_run_policy(edge, &p, &r), EEX_OK);
                int64_t shape[EEX_MAX_RANK];
                int rank;
                cr_assert_eq(eex_session_cut_tensor(edge, c, cut, sizeof cut / sizeof *cut, shape, &rank), EEX_OK,
                             "%s", eex_last_error());
                eex_session *cloud;
                eex_session_opts so = {.threads = threads};
                cr_assert_eq(eex_session_new(model, &so, &cloud), EEX_OK);
                cr_assert_eq(eex_session_resume(cloud, c, cut, shape, rank, e, EEX_METRIC_MAXPROB, &r), EEX_OK, "%s",
                             eex_last_error());
                cr_assert_eq(r.exit, E + 1);
                cr_assert_eq(eex_session_exit_probs(cloud, E + 1, e, got, 64), EEX_OK);
                if (threads == 1)
                    cr_assert(!memcmp(want, got, sizeof(float) * (size_t)C), "cut %d expert %d: resume differs", c, e);
                else
                    for (int i = 0; i < C; i++)
                        cr_assert_float_eq(got[i], want[i], 1e-6);
                /* the cloud ran only what follows the cut */
                cr_assert_eq(r.nodes_executed, model->ee.after_cut[c * 3 + e].n);
                eex_session_free(full), eex_session_free(edge), eex_session_free(cloud);
            }
}

Test(ee, temperature_is_applied)
{
    eex_session *s = new_session();
    cr_assert_eq(eex_session_run_all(s), EEX_OK);
    float logits[10];
    int idx = -1;
    for (int i = 0; i < eex_model_output_count(model); i++)
        if (!strcmp(eex_model_output_name(model, i), "exit2.blur"))
            idx = i;
    cr_assert_geq(idx, 0);
    cr_assert_eq(eex_session_output(s, idx, logits, 10, NULL, NULL), EEX_OK);
    const float t = eex_model_temperature(model, 2, 1);
    cr_assert_float_eq(t, 2.0f, 1e-6, "make_tiny sets exit 2 / blur to T = 2");
    float with_t, without_t;
    eex_confidence(logits, 10, t, EEX_METRIC_MAXPROB, &with_t, NULL);
    eex_confidence(logits, 10, 1.0f, EEX_METRIC_MAXPROB, &without_t, NULL);
    cr_assert_neq(with_t, without_t);
    eex_policy p = policy(1.0f, 1);
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_eq(r.confidences[1], with_t, "policy confidence %g, expected %g with T", r.confidences[1], with_t);
    float conf[1];
    int cls[1];
    cr_assert_eq(eex_session_run_all(s), EEX_OK);
    cr_assert_eq(eex_session_exit_confidence(s, 2, 1, EEX_METRIC_MAXPROB, conf, cls, 1), EEX_OK);
    cr_assert_eq(conf[0], with_t, "evaluation and policy agree exactly");
    eex_session_free(s);
}

Test(ee, threshold_is_strict)
{
    eex_session *s = new_session();
    eex_policy p = policy(1.0f, 0);
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    const float c1 = r.confidences[0];
    p.threshold = c1;  /* equal is not enough */
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_neq(r.exit, 1, "confidence == threshold must not exit");
    p.threshold = nextafterf(c1, 0.0f);
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_eq(r.exit, 1, "confidence just above the threshold exits");
    eex_session_free(s);
}

Test(ee, entropy_metric_in_the_policy)
{
    eex_session *s = new_session();
    cr_assert_eq(eex_session_run_all(s), EEX_OK);
    float conf[1];
    int cls[1];
    cr_assert_eq(eex_session_exit_confidence(s, 1, 0, EEX_METRIC_ENTROPY, conf, cls, 1), EEX_OK);
    eex_policy p = policy(1.0f, 0);
    p.metric = EEX_METRIC_ENTROPY;
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_eq(r.confidences[0], conf[0]);
    cr_assert(r.confidences[0] >= 0.0f && r.confidences[0] <= 1.0f);
    eex_session_free(s);
}

Test(ee, nan_input_gives_a_numeric_error)
{
    eex_session *s = new_session();
    float bad[3 * 28 * 28];
    memcpy(bad, image, sizeof bad);
    bad[5] = NAN;
    const int64_t shape[4] = {1, 3, 28, 28};
    cr_assert_eq(eex_session_set_input(s, 0, bad, shape, 4), EEX_OK);
    eex_policy p = policy(0.5f, 0);
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_NUMERIC);
    cr_assert(strstr(eex_last_error(), "exit 1"), "%s", eex_last_error());
    /* (an infinite pixel is not tested here: ReLU6 clamps it to 6, in PyTorch
     * too; infinite logits are tested on eex_confidence) */
    for (int k = 0; k < 2; k++) {  /* the reference kernels propagate NaN too */
        eex_session *r2;
        eex_session_opts so = {.kernels = k ? EEX_KERNELS_REF : EEX_KERNELS_AUTO, .threads = 2};
        cr_assert_eq(eex_session_new(model, &so, &r2), EEX_OK);
        cr_assert_eq(eex_session_set_input(r2, 0, bad, shape, 4), EEX_OK);
        cr_assert_eq(eex_session_run_policy(r2, &p, &r), EEX_ERR_NUMERIC, "kernels %d", k);
        eex_session_free(r2);
    }
    eex_session_free(s);
}

Test(ee, unknown_expert_names_the_known_ones)
{
    int e;
    cr_assert_eq(eex_model_find_expert(model, "fog", &e), EEX_ERR_NOT_FOUND);
    cr_assert(strstr(eex_last_error(), "'fog'") && strstr(eex_last_error(), "pristine, blur, noise"), "%s",
              eex_last_error());
    cr_assert_eq(eex_model_find_expert(model, "noise", &e), EEX_OK);
    cr_assert_eq(e, 2);
    eex_session *s = new_session();
    eex_policy p = policy(0.5f, 7);
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_ARGUMENT);
    eex_session_free(s);
}

Test(ee, misuse_is_refused)
{
    eex_session *s = new_session();
    float buf[16 * 28 * 28];
    cr_assert_eq(eex_session_cut_tensor(s, 0, buf, sizeof buf / sizeof *buf, NULL, NULL), EEX_ERR_STATE);
    cr_assert_eq(eex_session_exit_probs(s, 1, 0, buf, 64), EEX_ERR_STATE);
    eex_policy p = policy(0.5f, 0);
    p.cut = 9;
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_ARGUMENT);
    const int64_t wrong[4] = {1, 5, 7, 7};
    cr_assert_eq(eex_session_resume(s, 0, buf, wrong, 4, 0, EEX_METRIC_MAXPROB, &r), EEX_ERR_SHAPE);
    eex_session_free(s);
}

Test(ee, forced_exit_stops_there_whatever_the_confidence)
{
    unsigned char want[512];
    eex_session *s = new_session();
    for (int k = 1; k <= 3; k++) {
        eex_policy p = policy(2.0f, 2);  /* nothing could pass 2.0 */
        p.force_exit = k;
        eex_exit_result r;
        cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK, "%s", eex_last_error());
        cr_assert_eq(r.exit, k);
        cr_assert_eq(r.where, EEX_WHERE_EDGE);
        expected_nodes(k - 1, 2, 0, want);
        assert_executed(s, want, "forced exit");
    }
    eex_policy p = policy(0.5f, 0);
    p.force_exit = 9;
    eex_exit_result r;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_ARGUMENT);
    eex_session_free(s);
}

Test(ee, per_exit_thresholds_pick_the_exit_each_allows)
{
    unsigned char want[512];
    eex_session *s = new_session();
    eex_exit_result r;
    /* exit 1 can never pass 2.0; exit 2 passes anything: exit 2 answers,
       though the single threshold (2.0) would let nothing through */
    const float t[3] = {2.0f, -1.0f, 2.0f};
    eex_policy p = policy(2.0f, 0);
    p.thresholds = t, p.n_thresholds = 3;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK, "%s", eex_last_error());
    cr_assert_eq(r.where, EEX_WHERE_EDGE);
    cr_assert_eq(r.exit, 2);
    expected_nodes(1, 0, 0, want);
    assert_executed(s, want, "exit 2 by per-exit thresholds");
    /* the final without its own entry uses `threshold` */
    const float t2[3] = {2.0f, 2.0f, 2.0f};
    p.thresholds = t2;
    p.threshold = -1.0f;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK);
    cr_assert_eq(r.where, EEX_WHERE_LOCAL);
    cr_assert_eq(r.exit, 4, "the final is above -1 and answers");
    cr_assert_float_eq(eex_policy_threshold(&p, 3), -1.0f, 0);
    cr_assert_float_eq(eex_policy_threshold(&p, 0), 2.0f, 0);
    /* bad vectors are errors, not guesses */
    p.n_thresholds = 5;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_ARGUMENT);
    const float tn[3] = {0.5f, NAN, 0.5f};
    p.thresholds = tn, p.n_thresholds = 3;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_NUMERIC);
    eex_session_free(s);
}

Test(ee, bandit_plays_every_arm_then_the_best_and_resets)
{
    const float arms[3] = {0.5f, 0.7f, 0.9f};
    const eex_adaptive_opts o = {.candidates = arms, .n_candidates = 3, .offload_cost = 0.1, .exploration = 0.5};
    eex_bandit *b;
    cr_assert_eq(eex_bandit_new(&o, 2, &b), EEX_OK, "%s", eex_last_error());
    for (int a = 0; a < 3; a++) {
        cr_assert_eq(eex_bandit_choose(b, 0), a, "unplayed arms first, lowest first");
        eex_bandit_update(b, 0, a, 0.0);
    }
    /* arm 1 pays 1, the others 0: after enough plays it dominates context 0 */
    for (int i = 0; i < 500; i++) {
        const int a = eex_bandit_choose(b, 0);
        eex_bandit_update(b, 0, a, a == 1 ? 1.0 : 0.0);
    }
    cr_assert_gt(eex_bandit_plays(b, 0, 1), 450, "arm 1 played %ld times", eex_bandit_plays(b, 0, 1));
    cr_assert_eq(eex_bandit_plays(b, 1, 0), 0, "contexts are independent");
    cr_assert_float_eq(eex_bandit_threshold(b, 2), 0.9f, 0);
    eex_bandit_reset(b);
    cr_assert_eq(eex_bandit_plays(b, 0, 1), 0);
    cr_assert_eq(eex_bandit_choose(b, 0), 0);
    eex_bandit_free(b);
    /* reward: 0 on the edge; offloaded, the confidence gained minus the cost */
    const float c[4] = {0.3f, 0.4f, 0.5f, 0.9f};
    cr_assert_float_eq(eex_adaptive_reward(c, 2, 3, 0, 0.1), 0.0, 1e-12);
    cr_assert_float_eq(eex_adaptive_reward(c, 2, 3, 1, 0.1), 0.4f - 0.1, 1e-6);
    cr_assert_float_eq(eex_adaptive_reward(c, 3, 3, 1, 0.1), -0.1, 1e-6);
    const eex_adaptive_opts bad = {.candidates = arms, .n_candidates = 0};
    cr_assert_eq(eex_bandit_new(&bad, 1, &b), EEX_ERR_ARGUMENT);
}

Test(ee, adaptive_policy_learns_in_the_session_without_labels)
{
    eex_session *s = new_session();
    eex_exit_result r;
    eex_policy p = policy(0.5f, 0);
    p.adaptive = 1;
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_STATE, "no bandit yet");
    const float arms[2] = {-1.0f, 2.0f};  /* always exit 1 / never exit */
    /* offloading costs 10: exiting at once (reward 0) is the better arm */
    const eex_adaptive_opts o = {.candidates = arms, .n_candidates = 2, .offload_cost = 10.0};
    cr_assert_eq(eex_session_set_adaptive(s, &o), EEX_OK, "%s", eex_last_error());
    for (int i = 0; i < 20; i++)
        cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK, "%s", eex_last_error());
    cr_assert_eq(s->bandit->plays[1], 1, "the costly arm was tried once: %ld", s->bandit->plays[1]);
    cr_assert_eq(s->bandit->plays[0], 19);
    cr_assert_eq(r.exit, 1);
    eex_session_reset_adaptive(s);
    cr_assert_eq(s->bandit->plays[0] + s->bandit->plays[1], 0);
    cr_assert_eq(eex_session_set_adaptive(s, NULL), EEX_OK);
    cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_ERR_STATE);
    eex_session_free(s);
}

Test(ee, saved_thresholds_and_temperatures_round_trip_and_bad_ones_are_refused)
{
    char path[] = "/tmp/eex_test_thrXXXXXX";
    const int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    const int E = 3, X = eex_model_expert_count(model);
    float temps[4 * 3];
    for (int i = 0; i < (E + 1) * X; i++)
        temps[i] = 0.5f + 0.1f * (float)i;
    const float th[3] = {0.9f, 0.8f, 0.25f};
    cr_assert_eq(eex_model_save_calibrated(model, temps, th, 3, path), EEX_OK, "%s", eex_last_error());
    eex_model *m2;
    cr_assert_eq(eex_model_open(path, &m2), EEX_OK, "%s", eex_last_error());
    float got[EEX_MAX_EXITS + 1];
    cr_assert_eq(eex_model_default_thresholds(m2, got, EEX_MAX_EXITS + 1), 3);
    for (int k = 0; k < 3; k++)
        cr_assert_float_eq(got[k], th[k], 1e-7);
    for (int k = 1; k <= E + 1; k++)
        for (int e = 0; e < X; e++)
            cr_assert_float_eq(eex_model_temperature(m2, k, e), temps[(k - 1) * X + e], 1e-7);
    cr_assert_eq(m2->n_nodes, model->n_nodes, "the graph is copied whole");
    eex_model_close(m2);
    /* a file whose ee.thresholds has the wrong count, or a value outside [0, 1] */
    const double two[2] = {0.5, 0.5}, big[3] = {0.5, 1.5, 0.5};
    const eex_meta_set bad[2] = {{.key = "ee.thresholds", .type = EEX_V_F64S, .fs = two, .count = 2},
                                 {.key = "ee.thresholds", .type = EEX_V_F64S, .fs = big, .count = 3}};
    for (int b = 0; b < 2; b++) {
        cr_assert_eq(eex_file_write_meta(&model->file, &bad[b], 1, path), EEX_OK, "%s", eex_last_error());
        cr_assert_eq(eex_model_open(path, &m2), EEX_ERR_FORMAT);
        cr_assert(strstr(eex_last_error(), "ee.thresholds"), "%s", eex_last_error());
    }
    const float bad_t[12] = {0};
    cr_assert_eq(eex_model_save_calibrated(model, bad_t, NULL, 0, path), EEX_ERR_NUMERIC);
    unlink(path);
}

/* eex eval --adaptive decides from recorded confidences with eex_bandit; a
 * session with policy.adaptive runs image by image. Both must make the same
 * choices on the same stream. */
Test(ee, session_adaptive_equals_the_bandit_on_recorded_confidences)
{
    eex_session *s = new_session(), *all = new_session();
    const float arms[5] = {0.0f, 0.12f, 0.15f, 0.2f, 1.0f};
    const eex_adaptive_opts o = {.candidates = arms, .n_candidates = 5, .offload_cost = 0.01, .exploration = 0.05};
    cr_assert_eq(eex_session_set_adaptive(s, &o), EEX_OK);
    eex_bandit *b;
    cr_assert_eq(eex_bandit_new(&o, 1, &b), EEX_OK);
    const int E = 3;
    uint64_t st = 7;
    int offloads = 0;
    for (int n = 0; n < 60; n++) {
        for (size_t i = 0; i < sizeof image / sizeof *image; i++)
            image[i] = (float)(eex_splitmix64(&st) >> 40) / (1 << 24) * 4.0f - 2.0f;
        const int64_t ishape[4] = {1, 3, 28, 28};
        cr_assert_eq(eex_session_set_input(s, eex_model_image_input(model), image, ishape, 4), EEX_OK);
        cr_assert_eq(eex_session_set_input(all, eex_model_image_input(model), image, ishape, 4), EEX_OK);
        eex_policy p = policy(0.5f, 0);
        p.adaptive = 1;
        eex_exit_result r;
        cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK, "%s", eex_last_error());
        cr_assert_eq(eex_session_run_all(all), EEX_OK);
        float conf[4];
        int cls;
        for (int k = 0; k < 4; k++)
            cr_assert_eq(eex_session_exit_confidence(all, k + 1, 0, EEX_METRIC_MAXPROB, &conf[k], &cls, 1), EEX_OK);
        const int arm = eex_bandit_choose(b, 0);
        cr_assert_eq(s->bandit_arm, arm, "image %d: session arm %d, bandit arm %d", n, s->bandit_arm, arm);
        int k = 0;
        while (k < E && !(conf[k] > arms[arm]))
            k++;
        cr_assert_eq(r.where == EEX_WHERE_EDGE, k < E, "image %d", n);
        offloads += k == E;
        eex_bandit_update(b, 0, arm, eex_adaptive_reward(conf, E - 1, E, k == E, o.offload_cost));
    }
    for (int a = 0; a < 5; a++)
        cr_assert_eq(eex_bandit_plays(s->bandit, 0, a), eex_bandit_plays(b, 0, a), "arm %d", a);
    cr_assert_gt(offloads, 0, "the stream must exercise offloaded images too");
    cr_assert_lt(offloads, 60, "and edge answers");
    eex_bandit_free(b);
    eex_session_free(s);
    eex_session_free(all);
}
