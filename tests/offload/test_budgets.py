#!/usr/bin/python3
"""Input budgets decided before work (issue 18, items 5, 6 and 8): every
hostile input here is refused in under 1 s with a peak RSS under 100 MB,
under an address-space guard (RLIMIT_AS, as `ulimit -v` sets it), with a
one-line error that says what was wrong (and, for a limit, which flag raises
it).

    test_budgets.py [--write-corpus]

--write-corpus also copies the small inputs into tests/fuzz/corpus/.
BUILD selects the build folder; the model is build/ee/tiny.eex.
"""
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402  (tests/checks.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD", "build")
EEX = os.path.join(ROOT, BUILD, "eex")
MODEL = os.path.join(ROOT, "build", "ee", "tiny.eex")
TMP = tempfile.mkdtemp(prefix="eex-budgets-")
SAN = "asan" in BUILD or "tsan" in BUILD
GUARD = 4 << 30 if SAN else 1536 << 20     # RLIMIT_AS: sanitizers reserve shadow memory
RSS_MB = 100
SECONDS = 1.0 if not SAN else 5.0



def guarded(*args, timeout=60, stdin=None):
    """(rc, stderr, seconds, peak RSS in MB) of one command under RLIMIT_AS."""
    def limit():
        if not SAN:
            resource.setrlimit(resource.RLIMIT_AS, (GUARD, GUARD))
    errf = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen([EEX, *args], stdout=subprocess.DEVNULL, stderr=errf, preexec_fn=limit, stdin=stdin)
    rc = ru = None
    while time.monotonic() - t0 < timeout:  # wait4: this child's own peak RSS
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            rc, ru = os.waitstatus_to_exitcode(status), usage
            break
        time.sleep(0.005)
    if rc is None:
        p.kill()
        _, status, ru = os.wait4(p.pid, 0)
        rc = os.waitstatus_to_exitcode(status)
    p.returncode = rc
    secs = time.monotonic() - t0
    errf.seek(0)
    err = errf.read()
    errf.close()
    return rc, err.decode(errors="replace"), secs, ru.ru_maxrss / 1024


# ---- hostile inputs ----------------------------------------------------------------

def gif_bomb():
    """43 bytes: a 16384x16384 screen and image, one LZW code."""
    lsd = struct.pack("<HHBBB", 16384, 16384, 0, 0, 0)
    img = b"\x2c" + struct.pack("<HHHHB", 0, 0, 16384, 16384, 0)
    return b"GIF89a" + lsd + img + b"\x02\x02\x4c\x01\x00" + b"\x3b"


def bmp_bomb():
    """102 bytes: a 16384x16384 24-bit BMP with 48 bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, 16384, 16384, 1, 24, 0, 0, 2835, 2835, 0, 0)
    body = info + b"\x80" * 48
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, 54) + body


def psd_bomb():
    """140 bytes: a 16384x16384 4-channel PSD, RLE, nothing in it."""
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, 4, 16384, 16384, 8, 3)
    return head + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 1) + b"\x00" * (140 - 26 - 12 - 2)


def jpeg_bomb():
    """35 bytes: SOI and a 16384x16384 SOF0, 3 components, nothing else."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 16384, 16384, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xfe\x00\x0c" + b"eex budgets"[:10] + b"\xff"[:0]


def png_16bit_rgba(w=8, h=8):
    raw = b"".join(b"\x00" + bytes((x * 37 + y) % 256 for x in range(w * 8)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def npy(header, data=b""):
    h = header.encode()
    pad = (64 - (10 + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def idx_gz_bomb(declared=(3000000, 28, 28), actual=100 << 20, lie=None):
    """A gzip member of an IDX file declaring `declared` images whose stream
    inflates to `actual` bytes (zeros); lie: the ISIZE field to write instead."""
    header = struct.pack(">BBBB", 0, 0, 8, len(declared)) + b"".join(struct.pack(">I", d) for d in declared)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc = zlib.crc32(header)
    out = [co.compress(header)]
    chunk = b"\0" * (1 << 20)
    left = actual - len(header)
    while left > 0:
        c = chunk[:min(left, len(chunk))]
        crc = zlib.crc32(c, crc)
        out.append(co.compress(c))
        left -= len(c)
    out.append(co.flush())
    isize = actual if lie is None else lie
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + b"".join(out) +
            struct.pack("<II", crc & 0xffffffff, isize & 0xffffffff))


def arena_model(path):
    """192 bytes: one relu over a [1,4,16384,16384] input: an 8 GB arena."""
    sys.path.insert(0, os.path.join(ROOT, "converter"))
    from eexfile import EexWriter
    w = EexWriter()
    w.set_inputs([("x", [1, 4, 16384, 16384])])
    w.set_outputs(["y"])
    w.add_node("relu", "r", ["x"], ["y"])
    w.write(path)


ESC_MODEL = r"""
import sys; sys.path.insert(0, sys.argv[2]); import numpy as np
from eexfile import EexWriter
w = EexWriter(); w.add_metadata('labels', ['\x1b[31mred\x1b]0;pwned\x07', 'plain\u009b2J'])
w.add_tensor('w', np.ones((2, 3), np.float32)); w.add_tensor('b', np.array([1, 0], np.float32))
w.set_inputs([('x', [1, 3, 4, 4])]); w.set_outputs(['y'])
w.add_node('globalavgpool', 'g', ['x'], ['p']); w.add_node('flatten', 'f', ['p'], ['q'])
w.add_node('dense', 'd', ['q', 'w', 'b'], ['y'])
w.write(sys.argv[1])
"""


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def real_images():
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(18)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    paths = {}
    for ext, fmt in (("png", "PNG"), ("jpg", "JPEG"), ("gif", "GIF"), ("bmp", "BMP")):
        p = os.path.join(TMP, f"real.{ext}")
        Image.fromarray(a).save(p, fmt)
        paths[ext] = p
    return paths


def main():
    if not os.path.exists(MODEL):
        print(f"missing {MODEL}: run tests/ee/make_tiny.py first")
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    corpus = {}
    cases = []  # (label, args, must contain in stderr)

    def case(label, args, *needles, corpus_as=None, data=None):
        cases.append((label, args, needles))
        if corpus_as and data is not None:
            corpus[corpus_as] = data

    g, b, p, j = gif_bomb(), bmp_bomb(), psd_bomb(), jpeg_bomb()
    gif, bmp, psd, jpg = write("bomb.gif", g), write("bomb.bmp", b), write("bomb.psd", p), write("bomb.jpg", j)
    print(f"      bombs: GIF {len(g)} bytes, BMP {len(b)}, PSD {len(p)}, JPEG header {len(j)}")
    # 5. decompression bombs and budgets
    case(f"a {len(g)}-byte GIF of 16384x16384", ["run", MODEL, gif], "--max-input-mb",
         corpus_as="fuzz_image/bomb-16384.gif", data=g)
    case("eex distort --blur 100 on that GIF", ["distort", gif, os.path.join(TMP, "o.png"), "--blur", "100"],
         "--max-input-mb")
    case("a 102-byte BMP of 16384x16384", ["run", MODEL, bmp], "truncated BMP",
         corpus_as="fuzz_image/bomb-16384.bmp", data=b)
    case("a 140-byte PSD of 16384x16384", ["run", MODEL, psd], "not a format eex reads",
         corpus_as="fuzz_image/bomb-16384.psd", data=p)
    case("a 35-byte JPEG header of 16384x16384", ["run", MODEL, jpg], "truncated JPEG",
         corpus_as="fuzz_image/bomb-16384.jpg", data=j)
    big_ok = write("big-complete.gif", g)  # complete: refused by the budget, not as truncated
    case("the GIF with --max-input-mb 8", ["run", MODEL, big_ok, "--max-input-mb", "8"], "the limit is 8 MB")
    case("/dev/zero as an image", ["run", MODEL, "/dev/zero"], "character device")
    case("/dev/zero as --input", ["run", MODEL, "--input", "/dev/zero", "--output", os.path.join(TMP, "o.npy")],
         "character device")
    huge = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }")
    case("a .npy declaring 40 GB", ["run", MODEL, "--input", write("huge.npy", huge), "--output",
                                    os.path.join(TMP, "o.npy")], "--max-input-mb",
         corpus_as="fuzz_npy/declares-40GB.npy", data=huge)
    # IDX: a gzip bomb as the test split, with --limit 10
    for label, lie in (("a gzip IDX bomb (100 MB inflated, 2.4 GB declared)", None),
                       ("the same bomb lying about its inflated size (ISIZE 1000)", 1000)):
        d = os.path.join(TMP, f"ds-{lie}")
        os.makedirs(d, exist_ok=True)
        bomb = idx_gz_bomb(lie=lie)
        open(os.path.join(d, "t10k-images-idx3-ubyte.gz"), "wb").write(bomb)
        labels = struct.pack(">BBBBI", 0, 0, 8, 1, 3000000)
        open(os.path.join(d, "t10k-labels-idx1-ubyte"), "wb").write(labels + b"\0" * 16)
        case(label, ["eval", MODEL, "--dataset", d, "--limit", "10", "--quiet"],
             "--max-input-mb" if lie is None else "does not inflate",
             corpus_as=f"fuzz_idx/bomb-{'isize' if lie is None else 'lying'}.idx.gz", data=bomb)
        print(f"      IDX bomb: {len(bomb)} bytes of gzip")
    # 6. resources taken on request
    am = os.path.join(TMP, "arena.eex")
    arena_model(am)
    case("a 192-byte model planning an 8 GB arena: eex info", ["info", am], "--max-arena-mb",
         corpus_as="fuzz_eex/arena-8GB.eex", data=open(am, "rb").read())
    imgs = real_images()
    case("the same model: eex run", ["run", am, imgs["png"]], "--max-arena-mb")
    case("serve --threads 100000", ["serve", MODEL, "--listen", "127.0.0.1:0", "--threads", "100000"], "1..256")
    case("serve --max-conns 100000000", ["serve", MODEL, "--listen", "127.0.0.1:0", "--max-conns", "100000000"],
         "1..65536")
    # truncated images decode no more
    for ext, path in imgs.items():
        data = open(path, "rb").read()
        cut = write(f"cut.{ext}", data[:len(data) * 2 // 3])
        case(f"a truncated {ext.upper()} (2/3 of a real one)", ["run", MODEL, cut], "truncated",
             corpus_as=f"fuzz_image/truncated.{ext}", data=data[:len(data) * 2 // 3])
    # 8. what the low items say
    fifo = os.path.join(TMP, "fifo")
    os.mkfifo(fifo)
    case("a FIFO as the image (no hang)", ["run", MODEL, fifo], "FIFO")
    case("a FIFO as the model (no hang)", ["run", fifo, imgs["png"]], "FIFO")
    case("a directory as the image", ["run", MODEL, TMP], "directory")
    case("a missing image: the reason is given", ["run", MODEL, os.path.join(TMP, "nope.png")],
         "No such file or directory")
    png = open(imgs["png"], "rb").read()
    case("a PNG cut inside its header", ["run", MODEL, write("hdr.png", png[:20])], "IHDR",
         corpus_as="fuzz_image/cut-header.png", data=png[:20])

    for label, args, needles in cases:
        rc, err, secs, rss = guarded(*args)
        line = err.strip().splitlines()
        ok = rc not in (0, None) and rc > 0 and all(n in err for n in needles) and len(line) <= 2
        check(ok and secs < SECONDS and rss < RSS_MB,
              f"{label}: refused in {secs:.2f} s, peak RSS {rss:.0f} MB: {line[0] if line else ''}",
              f"rc {rc}, wanted {needles}; stderr: {err[-400:]}")

    # accepted, and the same as before: a 16-bit RGBA PNG, complete images
    p16 = write("rgba16.png", png_16bit_rgba())
    rc, err, secs, rss = guarded("run", MODEL, p16)
    check(rc == 0, "a 16-bit RGBA PNG is read", err[-300:])
    corpus["fuzz_image/rgba16.png"] = open(p16, "rb").read()
    for ext, path in imgs.items():
        rc, err, _, _ = guarded("run", MODEL, path)
        check(rc == 0, f"a complete {ext.upper()} is read", err[-300:])
    # the .npy header: 'descr' inside another value is not the descr
    tricky = npy("{'fortran_order': False, 'shape': (1, 3, 28, 28), 'x': \"'descr': '<f4'\", 'descr': '>f8', }",
                 b"\0" * (3 * 28 * 28 * 8))
    rc, err, _, _ = guarded("run", MODEL, "--input", write("tricky.npy", tricky), "--output",
                            os.path.join(TMP, "o.npy"))
    check(rc != 0 and "float32" in err, "a .npy whose 'descr' appears inside another value: the real descr decides",
          err[-300:])
    corpus["fuzz_npy/descr-in-value.npy"] = tricky

    # 8. option values that meant 0 or wrapped, a FIFO as the key, escape sequences in labels
    ds = "/usr/share/datasets/fashion-mnist"
    out_png = os.path.join(TMP, "o.png")
    for label, args in (
            ("run --threshold ''", ["run", MODEL, imgs["png"], "--threshold", ""]),
            ("eval --threshold ''", ["eval", MODEL, "--dataset", ds, "--limit", "1", "--threshold", ""]),
            ("eval --seed ''", ["eval", MODEL, "--dataset", ds, "--limit", "1", "--seed", ""]),
            ("eval --seed 18446744073709551616", ["eval", MODEL, "--dataset", ds, "--limit", "1", "--seed",
                                                  "18446744073709551616"]),
            ("distort --noise ''", ["distort", imgs["png"], out_png, "--noise", ""]),
            ("distort --seed 18446744073709551616", ["distort", imgs["png"], out_png, "--noise", "1", "--seed",
                                                     "18446744073709551616"]),
            ("distort --seed ''", ["distort", imgs["png"], out_png, "--noise", "1", "--seed", ""])):
        rc, err, secs, _ = guarded(*args)
        check(rc == 2 and "takes" in err, f"{label}: a usage error", (rc, err[-200:]))
    rc, err, secs, _ = guarded("serve", MODEL, "--listen", "127.0.0.1:0", "--key", fifo, timeout=10)
    check(rc == 1 and "FIFO" in err and secs < SECONDS, f"a FIFO as the key file: refused in {secs:.2f} s", err[-200:])
    esc = os.path.join(TMP, "esc.eex")
    subprocess.run([sys.executable, "-c", ESC_MODEL, esc, os.path.join(ROOT, "converter")], check=True)
    p = subprocess.run([EEX, "run", esc, imgs["png"]], capture_output=True)
    check(p.returncode == 0 and b"\x1b" not in p.stdout and b"\xc2\x9b" not in p.stdout and b"?[31mred" in p.stdout,
          "labels with ESC/CSI sequences print as '?' in text mode", p.stdout[-200:])
    corpus["fuzz_eex/escape-labels.eex"] = open(esc, "rb").read()

    if "--write-corpus" in sys.argv:
        for name, data in corpus.items():
            path = os.path.join(ROOT, "tests", "fuzz", "corpus", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        print(f"      wrote {len(corpus)} inputs to tests/fuzz/corpus")
    shutil.rmtree(TMP, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
