/* eex distort / eex spectrum: the evaluation distortions and the detector's
 * input, on image files, exactly as `eex eval` computes them. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "cli.h"
#include "image.h"

static const char distort_help[] =
    "usage: eex distort IN OUT.png (--blur SIGMA | --noise SIGMA) [--seed N]\n"
    "\n"
    "Writes IN distorted as docs/distortions.md defines: Gaussian blur (kernel\n"
    "2*ceil(2 sigma)+1, zero border) or additive Gaussian noise (sigma on the 0..255\n"
    "scale, clipped) from the splitmix64 generator seeded with N (default 0). Gray\n"
    "images stay gray. OUT is written as PNG (or BMP when it ends in .bmp).\n";

static const char spectrum_help[] =
    "usage: eex spectrum IN OUT.png\n"
    "\n"
    "Writes the spectrum the distortion detector sees (its input channel 0):\n"
    "fftshift(20 ln|DFT2(gray)|), clipped to 0..255, as an 8-bit gray image of IN's\n"
    "size; an image whose longer side exceeds 256 is first resized (bilinear) so\n"
    "that side is 256. A 2-channel detector also gets the gray image itself as\n"
    "channel 1 (docs/distortions.md, \"Detector input\").\n";

static int write_image(const char *cmd, const char *path, const unsigned char *px, int w, int h, int c)
{
    const size_t n = strlen(path);
    const int ok = n > 4 && !strcmp(path + n - 4, ".bmp") ? stbi_write_bmp(path, w, h, c, px)
                                                          : stbi_write_png(path, w, h, c, px, w * c);
    return ok ? CLI_OK : cli_error(cmd, "cannot write '%s'", path);
}

int cmd_distort(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    double blur = 0, noise = -1;
    long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(distort_help, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--blur") && has_val) {
            if (cli_parse_float(argv[++i], 0.0, 100.0, &blur) || !(blur > 0))
                return cli_usage("distort", "--blur takes a sigma in (0, 100], not '%s'", argv[i]);
        } else if (!strcmp(a, "--noise") && has_val) {
            if (cli_parse_float(argv[++i], 0.0, 1000.0, &noise))
                return cli_usage("distort", "--noise takes a sigma in [0, 1000], not '%s'", argv[i]);
        } else if (!strcmp(a, "--seed") && has_val) {
            uint64_t v;
            if (cli_parse_u64(argv[++i], &v) || v > (uint64_t)LLONG_MAX)
                return cli_usage("distort", "--seed takes a non-negative integer, not '%s'", argv[i]);
            seed = (long long)v;
        } else if (a[0] == '-' && a[1])
            return cli_usage("distort", "unknown option '%s'", a);
        else if (!in)
            in = a;
        else if (!out)
            out = a;
        else
            return cli_usage("distort", "unexpected argument '%s'", a);
    }
    if (!in || !out)
        return cli_usage("distort", "give IN and OUT");
    if ((blur > 0) == (noise >= 0))
        return cli_usage("distort", "give exactly one of --blur and --noise");
    eex_image img;
    char err[256];
    if (eex_image_load(in, 0, &img, err, sizeof err))
        return cli_error("distort", "%s: %s", in, err);
    unsigned char *dst = malloc((size_t)img.w * img.h * img.c);
    eex_status st = EEX_ERR_NOMEM;
    if (dst)
        st = blur > 0 ? eex_blur_u8(img.px, dst, img.h, img.w, img.c, blur)
                      : eex_noise_u8(img.px, dst, img.h, img.w, img.c, noise, (uint64_t)seed);
    int rc = st ? cli_status("distort", st) : write_image("distort", out, dst, img.w, img.h, img.c);
    free(dst);
    eex_image_free(&img);
    return rc;
}

int cmd_spectrum(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(spectrum_help, stdout);
            return CLI_OK;
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage("spectrum", "unknown option '%s'", argv[i]);
        else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else
            return cli_usage("spectrum", "unexpected argument '%s'", argv[i]);
    }
    if (!in || !out)
        return cli_usage("spectrum", "give IN and OUT");
    eex_image img;
    char err[256];
    if (eex_image_load(in, 0, &img, err, sizeof err))
        return cli_error("spectrum", "%s: %s", in, err);
    int sh, sw;
    eex_spectrum_size(img.h, img.w, &sh, &sw);
    unsigned char *dst = malloc((size_t)sh * sw);
    eex_status st = dst ? eex_detector_spectrum_u8(img.px, img.h, img.w, img.c, dst, &sh, &sw) : EEX_ERR_NOMEM;
    int rc = st ? cli_status("spectrum", st) : write_image("spectrum", out, dst, sw, sh, 1);
    free(dst);
    eex_image_free(&img);
    return rc;
}
