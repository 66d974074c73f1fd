"""Image distortions and the detector's spectrum, exactly as docs/distortions.md says.

Two kinds of functions live here:

* Exact ones (`SplitMix64`, `normals`, `add_noise`, `blur`, `spectrum_u8`,
  `resize_bilinear`, `gray_u8`, `detector_input`). They follow docs/distortions.md operation by
  operation so that the C side (branches/distort.c, branches/spectrum.c) gives the same
  bytes. Where a libm function decides the result (log, cos, sqrt, exp) they call
  Python's `math`, which calls the C library, never numpy's vectorised versions (those
  may differ in the last bit). Plain IEEE operations (+, -, *, /, floor) are the same in
  numpy and C, so they are vectorised.
  Exceptions the doc cannot pin down: the DFT in `spectrum_u8` is numpy's pocketfft; a
  C DFT will differ in the last bits of |F|, which changes the truncated uint8 only when
  20 ln|F| lies within rounding distance of an integer (rare, and at most by 1).

* Batch and fast ones (`add_noise_batch`, `add_noise_fast`, `blur_batch`,
  `spectrum_u8_batch`) work on whole batches [N, H, W]:
  `add_noise_batch(exact=True)` is exact (vectorised splitmix64, libm per value);
  `blur_batch` is exact too (the same IEEE double operations in the same order, only
  vectorised over images; elementwise numpy +,* are correctly rounded like C's).
  The fast ones for training-time augmentation need NOT be bit-exact:
  `add_noise_fast` draws its normals with numpy's vectorised log/cos (may differ from
  libm in the last bit, so a pixel can very rarely round the other way);
  `spectrum_u8_batch` uses numpy's log (and numpy's DFT, as `spectrum_u8`).
  Never use the fast ones to produce reference data for the C engine.

Images are uint8 numpy arrays, HW (one channel) or HWC, row-major.
"""

import math

import numpy as np

GAMMA = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
TWO_POW_M53 = 2.0 ** -53

_U64 = np.uint64


# ----------------------------------------------------------------------------- splitmix64

def _mix(z):
    """The splitmix64 output function on a uint64 numpy array (wrapping arithmetic)."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def splitmix64_block(seed, start, count):
    """Outputs of the calls start+1 .. start+count of next() for `seed`, as uint64.

    The k-th call (k = 1, 2, ...) returns mix(seed + k * GAMMA mod 2^64), so a whole
    block is computed at once."""
    k = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        state = _U64(seed & MASK64) + k * _U64(GAMMA)
        return _mix(state)


def uniforms(seed, count, start=0):
    """uniform() for the calls start+1 .. start+count: (next() >> 11) * 2^-53, float64."""
    z = splitmix64_block(seed, start, count) >> _U64(11)
    return z.astype(np.float64) * TWO_POW_M53   # exact: z < 2^53


class SplitMix64:
    """The scalar generator of docs/distortions.md (for tests and small uses)."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + GAMMA) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * TWO_POW_M53

    def normal(self):
        u1 = self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)


def normals(seed, count):
    """The first `count` normal() values for `seed`, bit-exact (libm log/cos/sqrt via
    `math`, one value at a time). normal() number i uses the uniforms 2i+1 and 2i+2."""
    u = uniforms(seed, 2 * count)
    log, cos, sqrt, two_pi = math.log, math.cos, math.sqrt, 2 * math.pi
    u1 = u[0::2].tolist()
    u2 = u[1::2].tolist()
    return np.array([sqrt(-2 * log(1 - a)) * cos(two_pi * b) for a, b in zip(u1, u2)],
                    dtype=np.float64)


# ----------------------------------------------------------------------------- noise

def _round_clip_u8(v):
    return np.clip(np.floor(v + 0.5), 0, 255).astype(np.uint8)


def add_noise(img_u8, sigma, seed):
    """Additive Gaussian noise, sigma on the 0..255 scale, bit-exact.

    One normal() per pixel value in row-major HWC order from splitmix64(seed);
    out = min(255, max(0, floor(p + sigma * normal() + 0.5))). For image i of an
    evaluation with seed s, pass seed = s + i (the mod 2^64 is done here)."""
    img = np.asarray(img_u8, dtype=np.uint8)
    n = normals(seed & MASK64, img.size).reshape(img.shape)
    v = img.astype(np.float64) + float(sigma) * n
    return _round_clip_u8(v)


def _batch_uniforms(n_img, per, seed):
    """uniform() calls 1..2*per for the seeds seed + j, j = 0..n_img-1: [n_img, 2*per]."""
    k = np.arange(1, 2 * per + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        seeds = (np.arange(n_img, dtype=np.uint64) + _U64(seed & MASK64))[:, None]
        z = _mix(seeds + k[None, :] * _U64(GAMMA)) >> _U64(11)
    return z.astype(np.float64) * TWO_POW_M53


def add_noise_batch(imgs_u8, sigma, seed, exact=True):
    """`add_noise` over a batch [N, ...] where image j uses seed + j (the evaluation
    convention: image i of a split with seed s uses s + i, so pass seed = s + first
    index). exact=True: libm log/cos/sqrt per value via `math` (bit-exact, ~0.5 us per
    pixel); exact=False: numpy's vectorised log/cos (fast, NOT guaranteed bit-exact).
    `sigma` may be a scalar or one value per image."""
    imgs = np.asarray(imgs_u8, dtype=np.uint8)
    n_img = imgs.shape[0]
    per = int(np.prod(imgs.shape[1:]))
    u = _batch_uniforms(n_img, per, seed)
    u1, u2 = u[:, 0::2], u[:, 1::2]
    if exact:
        log, cos, sqrt, two_pi = math.log, math.cos, math.sqrt, 2 * math.pi
        nrm = np.array([sqrt(-2 * log(1 - a)) * cos(two_pi * b)
                        for a, b in zip(u1.ravel().tolist(), u2.ravel().tolist())],
                       dtype=np.float64)
    else:
        nrm = np.sqrt(-2 * np.log(1 - u1)) * np.cos(2 * np.pi * u2)
    sig = np.asarray(sigma, dtype=np.float64).reshape(-1, *([1] * (imgs.ndim - 1)))
    v = imgs.astype(np.float64) + sig * nrm.reshape(imgs.shape)
    return _round_clip_u8(v)


def add_noise_fast(imgs_u8, sigma, seed):
    """Training-time noise for a batch [N, ...]: add_noise_batch(exact=False). The same
    splitmix64 Box-Muller stream (image j gets seed + j) but numpy's vectorised log/cos,
    so NOT guaranteed bit-exact (a pixel may, very rarely, round the other way)."""
    return add_noise_batch(imgs_u8, sigma, seed, exact=False)


# ----------------------------------------------------------------------------- blur

def gaussian_kernel(sigma):
    """Normalised 1-D weights for j = -r..r, r = ceil(2 sigma): exp(-j^2 / (2 sigma^2))
    (libm exp), each divided by the sum accumulated left to right in double."""
    sigma = float(sigma)
    r = int(math.ceil(2 * sigma))
    w = [math.exp(-(j * j) / (2 * sigma * sigma)) for j in range(-r, r + 1)]
    s = 0.0
    for x in w:
        s += x
    return np.array([x / s for x in w], dtype=np.float64), r


def _sep_pass(x, w, r, axis):
    """acc = sum_{j=-r..r} w[j] * x[i + j] along `axis` (zero outside), accumulated in
    the order j = -r..r starting from 0.0 - the order a plain C loop uses. Adding a
    zero-border term (w * 0.0 = 0.0) leaves the sum unchanged, so it does not matter
    whether the C loop skips those terms or adds them."""
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.pad(x, pad)
    acc = np.zeros_like(x)
    for jj in range(2 * r + 1):
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(jj, jj + n)
        acc = acc + w[jj] * xp[tuple(sl)]
    return acc


def _blur_f64(x, sigma, h_axis, w_axis):
    w, r = gaussian_kernel(sigma)
    x = _sep_pass(x, w, r, w_axis)    # horizontal pass first
    return _sep_pass(x, w, r, h_axis)  # then vertical


def blur(img_u8, sigma):
    """Gaussian blur, bit-exact with docs/distortions.md: radius ceil(2 sigma), separable
    (horizontal then vertical) in double, constant zero border, channels independent,
    result min(255, max(0, floor(v + 0.5)))."""
    img = np.asarray(img_u8, dtype=np.uint8)
    return _round_clip_u8(_blur_f64(img.astype(np.float64), sigma, 0, 1))


def blur_batch(imgs_u8, sigma):
    """`blur` over a batch [N, H, W] (or [N, H, W, C]); the same arithmetic in the same
    order, vectorised over images. One sigma for the whole batch."""
    imgs = np.asarray(imgs_u8, dtype=np.uint8)
    return _round_clip_u8(_blur_f64(imgs.astype(np.float64), sigma, 1, 2))


# ----------------------------------------------------------------------------- spectrum

def grayscale(img_u8):
    """HW or HWC uint8 -> HW float64. One channel as is; three: 0.299 R + 0.587 G +
    0.114 B, summed left to right."""
    img = np.asarray(img_u8)
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.shape[2] == 1:
        return img[:, :, 0].astype(np.float64)
    if img.shape[2] == 3:
        f = img.astype(np.float64)
        return 0.299 * f[:, :, 0] + 0.587 * f[:, :, 1] + 0.114 * f[:, :, 2]
    raise ValueError(f"grayscale: {img.shape[2]} channels (need 1 or 3)")


def _log_spectrum_to_u8(mag, log):
    s = np.zeros(mag.shape, dtype=np.float64)
    nz = mag != 0
    s[nz] = [20 * log(m) for m in mag[nz].tolist()] if log is math.log else 20 * log(mag[nz])
    return np.trunc(np.clip(s, 0, 255)).astype(np.uint8)


def spectrum_u8(img_u8):
    """The detector's spectrum image (uint8, H x W, before any resize): grayscale ->
    unnormalised 2-D DFT (numpy.fft.fft2) -> |F| -> fftshift (zero frequency at
    (H//2, W//2)) -> 20 ln|F| (|F| = 0 gives 0; libm log) -> clip 0..255 -> trunc."""
    gray = grayscale(img_u8)
    mag = np.fft.fftshift(np.abs(np.fft.fft2(gray)))
    return _log_spectrum_to_u8(mag, math.log)


def spectrum_u8_batch(imgs_u8):
    """`spectrum_u8` for a one-channel batch [N, H, W], vectorised (numpy log: not
    guaranteed bit-exact, see the module docstring)."""
    g = np.asarray(imgs_u8).astype(np.float64)
    mag = np.fft.fftshift(np.abs(np.fft.fft2(g, axes=(-2, -1))), axes=(-2, -1))
    return _log_spectrum_to_u8(mag, np.log)


# ----------------------------------------------------------------------------- resize

def resize_bilinear(img_u8, oh, ow):
    """Bilinear resize with half-pixel centres, exactly as `eex run` resizes images
    (tools/image.c, eex_image_to_tensor): all arithmetic in float32, source coordinate
    fy = (y + 0.5) * (H / oh) - 0.5 clamped at 0, y0 = trunc(fy) clamped to H-1,
    y1 = min(y0 + 1, H - 1), wy = fy - y0 (same for x), and
    v = (1-wy) * ((1-wx) p00 + wx p01) + wy * ((1-wx) p10 + wx p11).
    Returns float32 values on the 0..255 scale, shape [C, oh, ow] for HWC input or
    [oh, ow] for HW input (no rounding; the caller divides by 255)."""
    img = np.asarray(img_u8, dtype=np.uint8)
    hw = img.ndim == 2
    if hw:
        img = img[:, :, None]
    h, w, c = img.shape
    f32 = np.float32
    sy = f32(h) / f32(oh)
    sx = f32(w) / f32(ow)

    def coords(n_out, s, n_in):
        f = (np.arange(n_out).astype(f32) + f32(0.5)) * s - f32(0.5)
        f = np.where(f < 0, f32(0), f).astype(f32)
        i0 = np.minimum(f.astype(np.int64), n_in - 1)
        i1 = np.where(i0 + 1 < n_in, i0 + 1, i0)
        return i0, i1, (f - i0.astype(f32)).astype(f32)

    y0, y1, wy = coords(oh, sy, h)
    x0, x1, wx = coords(ow, sx, w)
    p = img.astype(f32)
    wy = wy[:, None, None]
    wx = wx[None, :, None]
    one = f32(1)
    top = (one - wx) * p[y0][:, x0] + wx * p[y0][:, x1]
    bot = (one - wx) * p[y1][:, x0] + wx * p[y1][:, x1]
    v = ((one - wy) * top + wy * bot).astype(f32)
    v = np.transpose(v, (2, 0, 1))
    return v[0] if hw else v


# An image whose longer side exceeds this is shrunk before its spectrum is taken
# (docs/distortions.md, step 0): the DFT costs H * W * (H + W).
SPECTRUM_MAX_SIDE = 256


def spectrum_size(h, w):
    """(H, W) of the image the detector's spectrum is taken of."""
    longer = max(h, w)
    if longer <= SPECTRUM_MAX_SIDE:
        return h, w
    side = lambda n: SPECTRUM_MAX_SIDE if n == longer else \
        max(1, (n * SPECTRUM_MAX_SIDE + longer // 2) // longer)  # noqa: E731
    return side(h), side(w)


def resize_u8(img_u8, oh, ow):
    """resize_bilinear rounded to uint8: floor(v + 0.5) in float32."""
    v = resize_bilinear(img_u8, oh, ow)
    if v.ndim == 3:
        v = np.transpose(v, (1, 2, 0))
    return np.floor(v + np.float32(0.5)).astype(np.uint8)


def detector_spectrum_u8(img_u8):
    """The detector's spectrum image: spectrum_u8 of the image, shrunk first with
    resize_u8 to spectrum_size when its longer side exceeds SPECTRUM_MAX_SIDE."""
    img = np.asarray(img_u8, dtype=np.uint8)
    sh, sw = spectrum_size(img.shape[0], img.shape[1])
    if (sh, sw) != img.shape[:2]:
        img = resize_u8(img, sh, sw)
    return spectrum_u8(img)


def gray_u8(img_u8):
    """HW or HWC uint8 -> HW uint8: one channel as is; three: the luma of grayscale()
    plus 0.5, truncated (as the engine converts an RGB image for a 1-channel input)."""
    img = np.asarray(img_u8, dtype=np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        return img.reshape(img.shape[:2]).copy()
    return np.minimum(grayscale(img) + 0.5, 255.0).astype(np.uint8)


def _plane_input(u8, size):
    if size is None or tuple(size) == u8.shape:
        v = u8.astype(np.float32)
    else:
        v = resize_bilinear(u8, size[0], size[1])
    return (v / np.float32(255.0)).astype(np.float32)


def residual_plane(u8):
    """The detector's channel 2 (docs/distortions.md, "Detector input"): the 2x2
    diagonal second difference r = x[i,j] - x[i,j+1] - x[i+1,j] + x[i+1,j+1] of a
    uint8 plane (0 on the last row and column), as 0.5 + r / 64 clipped to [0, 1].
    r cancels smooth backgrounds and gratings far more than pixel noise (which it
    doubles in standard deviation), so it shows noise on any background. Integer r,
    then exact float32 operations: C computes the same bits."""
    x = np.asarray(u8, dtype=np.int32)
    r = np.zeros(x.shape, np.int32)
    r[:-1, :-1] = x[:-1, :-1] - x[:-1, 1:] - x[1:, :-1] + x[1:, 1:]
    return np.clip(np.float32(0.5) + r.astype(np.float32) / np.float32(64.0), 0, 1).astype(np.float32)


def detector_input(img_u8, size=None, channels=1):
    """The detector's float input [channels, H, W] (docs/distortions.md): channel 0 is
    detector_spectrum_u8, channel 1 (channels = 2) the image's gray_u8; each resized to
    size = (H, W) when it differs (float32 bilinear as above), divided by 255."""
    if channels not in (1, 2, 3):
        raise ValueError(f"detector_input: {channels} channels (1, 2 or 3)")
    planes = [_plane_input(detector_spectrum_u8(img_u8), size)]
    if channels >= 2:
        g = gray_u8(img_u8)
        planes.append(_plane_input(g, size or planes[0].shape))
    if channels == 3:
        # the residual of the image at the detector's size, rounded to uint8 first
        if size is not None and tuple(size) != g.shape:
            g = resize_u8(g, size[0], size[1])
        planes.append(residual_plane(g))
    return np.stack(planes)
