"""The lecture's image filters with ``graphc.nn.conv2d``, and the 1-d example ``[1, 0, -1]``.

A convolution layer slides a small kernel over the image and takes the dot
product of the kernel with each window (cross-correlation, as in PyTorch).
Hand-made kernels do classic image processing:

* edge detection: ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]`` and the
  8-neighbour ``[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]`` (flat regions give 0)
* sharpen: ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]`` (the image plus its edges)
* box blur: the 3x3 mean; Gaussian blur: ``[[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16``
  and its 5x5 sibling

All six run as one ``conv2d`` call (six output channels) on a synthetic
image, checked against a plain NumPy sum over shifted copies and written to a
PNG (by a small writer below: no imaging library needed).  A network learns
its kernels instead of being given them: the last part fits a 3x3 kernel to
the edge detector's output by gradient descent and recovers it.

    python examples/filters.py [--out DIR]        # prints the checks, writes DIR/filters.png
    graphc trace  examples/filters.py:filter_loss
    graphc check  examples/filters.py:filter_loss
    graphc render examples/filters.py:filter_loss --grad -o filters.svg
"""
import argparse
import pathlib
import struct
import zlib

import numpy as np

import graphc
from graphc import nn, optim

# Every kernel as 5x5 (the 3x3 ones padded with zeros) so one conv2d applies them all.
KERNELS_3 = {
    "edges (4-neighbour)": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    "edges (8-neighbour)": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "box blur": np.ones((3, 3)) / 9,
    "Gaussian blur 3x3": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
}
GAUSS_5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256


def kernel_bank():
    """``(names, w)``: ``w`` is (6, 1, 5, 5), one output channel per filter."""
    names = list(KERNELS_3) + ["Gaussian blur 5x5"]
    w = np.zeros((len(names), 1, 5, 5))
    for i, k in enumerate(KERNELS_3.values()):
        w[i, 0, 1:4, 1:4] = k
    w[-1, 0] = GAUSS_5
    return names, w


def synthetic_image(size=64, seed=0):
    """A (size, size) test picture in [0, 1]: a disc, a square, a triangle, stripes, noise."""
    r, c = np.mgrid[0:size, 0:size] / size
    img = 0.25 + 0.15 * c                                        # a gentle left-right ramp
    img = np.where((r - 0.3) ** 2 + (c - 0.3) ** 2 < 0.2 ** 2, 0.9, img)     # disc
    img = np.where((r > 0.58) & (r < 0.9) & (c > 0.1) & (c < 0.42), 0.05, img)  # square
    img = np.where((r > 0.1) & (r < 0.45) & (c - 0.55 > 0.45 - r) & (c < 0.9), 0.7, img)
    stripes = 0.5 + 0.4 * np.sign(np.sin(2 * np.pi * 6 * (r + c)))
    img = np.where((r > 0.58) & (r < 0.9) & (c > 0.55) & (c < 0.9), stripes, img)
    img = img + 0.02 * np.random.default_rng(seed).normal(size=img.shape)
    return np.clip(img, 0.0, 1.0)


def apply_filters(image, w):
    """``conv2d`` of one (H, W) image with the (F, 1, K, K) kernels, same size out: (F, H, W)."""
    pad = w.shape[-1] // 2
    return nn.conv2d(image[None, None], w, padding=pad)[0]


def correlate_numpy(image, kernel):
    """The same cross-correlation, written out: a sum of shifted copies of the zero-padded image."""
    k = kernel.shape[0]
    padded = np.pad(image, k // 2)
    h, w = image.shape
    return sum(kernel[i, j] * padded[i:i + h, j:j + w] for i in range(k) for j in range(k))


# --- learning a kernel ------------------------------------------------------------------
_rng = np.random.default_rng(0)


# Tiny example images keep `graphc check`'s SymPy proof quick; the kernel is the real size.
@graphc.example(_rng.normal(size=(1, 1, 3, 3)), _rng.random((2, 1, 2, 2)),
                _rng.random((2, 1, 2, 2)))
def filter_loss(kernel, images, target):
    """Mean squared error between ``conv2d(images, kernel)`` (same size) and ``target``."""
    filtered = nn.conv2d(images, kernel, padding=1)
    return nn.mse(filtered, target)


def learn_kernel(images, target, steps=300, lr=0.05):
    """Fit a (1, 1, 3, 3) kernel from zeros by Adam on :func:`filter_loss`."""
    opt = optim.adam(lr)
    kernel = np.zeros((1, 1, 3, 3))
    state = opt.init(kernel)
    step = graphc.value_and_grad(filter_loss)
    value = None
    for _ in range(steps):
        value, g = step(kernel, images, target)
        kernel, state = opt.update(g, state, kernel)
    return kernel, float(value)


# --- a small PNG writer (no imaging library needed) -------------------------------------
def write_png(path, pixels):
    """Write a uint8 array (H, W) grey or (H, W, 3) RGB as a PNG file."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    color_type = 2 if pixels.ndim == 3 else 0

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    # every scanline starts with filter type 0 (none)
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    path = pathlib.Path(path)
    path.write_bytes(png)
    return path


def to_grey(panel, signed):
    """Values to 0..255: clipped to [0, 1], or for edge maps (``signed``) |v| scaled so
    that the brightest 1% saturate (the stripes' edges would otherwise dim all others)."""
    if signed:
        panel = np.abs(panel) / max(np.percentile(np.abs(panel), 99), 1e-12)
    return np.round(255 * np.clip(panel, 0.0, 1.0)).astype(np.uint8)


def grid(panels, cols, scale=3, gap=6):
    """Tile (H, W) uint8 panels, each enlarged ``scale`` times, on a white background."""
    h, w = panels[0].shape
    rows = -(-len(panels) // cols)
    out = np.full((rows * (h * scale + gap) + gap, cols * (w * scale + gap) + gap), 255, np.uint8)
    for i, p in enumerate(panels):
        y, x = gap + (i // cols) * (h * scale + gap), gap + (i % cols) * (w * scale + gap)
        out[y:y + h * scale, x:x + w * scale] = np.kron(p, np.ones((scale, scale), np.uint8))
    return out


# --- the 1-d example --------------------------------------------------------------------
def conv1d_example():
    """``conv1d`` with ``[1, 0, -1]`` on a step signal, against NumPy; returns the three rows."""
    x = np.array([0.0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    k = np.array([1.0, 0, -1])
    y = nn.conv1d(x[None, None], k[None, None])[0, 0]          # (N, C, L) and (F, C, K)
    return x, k, y


def main(out="graphc-examples"):
    """Run the checks, print them, write ``filters.png``; return a dict of results."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}

    x, k, y = conv1d_example()
    corr, conv = np.correlate(x, k, mode="valid"), np.convolve(x, k, mode="valid")
    print("1-d: graphc.nn.conv1d(x, [1, 0, -1]) (no padding: y[i] = x[i] - x[i+2])")
    print(f"    x                     = {x.astype(int).tolist()}")
    print(f"    conv1d                = {y.astype(int).tolist()}")
    print(f"    np.correlate(x, k)    = {corr.astype(int).tolist()}   (the same)")
    print(f"    np.convolve(x, k)     = {conv.astype(int).tolist()}   (flips k: the negative)")
    print("    the output is nonzero only where the signal steps up (-1) or down (+1)")
    results["conv1d_vs_correlate"] = float(np.abs(y - corr).max())
    flipped = np.convolve(x, k[::-1], mode="valid")            # convolution flips its kernel
    results["conv1d_vs_convolve_flipped"] = float(np.abs(y - flipped).max())

    image = synthetic_image()
    names, w = kernel_bank()
    filtered = apply_filters(image, w)                          # (6, 64, 64)
    print(f"\n2-d: one graphc.nn.conv2d call, a 64x64 image, {len(names)} kernels as 6 output "
          "channels\n(padding 2, so each output is 64x64), against a NumPy sum of shifted "
          "copies:")
    errors = []
    for name, kernel, f in zip(names, w[:, 0], filtered):
        err = float(np.abs(f - correlate_numpy(image, kernel)).max())
        errors.append(err)
        print(f"    {name:22} max |difference| {err:.1e}   output range "
              f"[{f.min():6.2f}, {f.max():5.2f}]")
    results["max_error"] = max(errors)

    # Learning: recover the 4-neighbour edge kernel from (image, filtered image) pairs.
    images = np.stack([synthetic_image(32, seed=s) for s in range(4)])[:, None]
    target = nn.conv2d(images, w[:1, :, 1:4, 1:4], padding=1)
    learned, value = learn_kernel(images, target)
    results["learned_kernel"] = learned[0, 0]
    results["learned_error"] = float(np.abs(learned[0, 0] - w[0, 0, 1:4, 1:4]).max())
    print("\nA network learns its kernels: Adam on filter_loss (mean squared error of\n"
          "conv2d(images, kernel) against the edge detector's output), from a zero kernel,\n"
          f"300 steps (final loss {value:.1e}):")
    for row in learned[0, 0]:
        print("    [" + "  ".join(f"{v:6.3f}" for v in row) + "]")
    print(f"    max |learned - [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]| = "
          f"{results['learned_error']:.1e}")

    edge_like = [abs(kk.sum()) < 1e-12 for kk in w[:, 0]]
    learned_out = apply_filters(image, learned)[0]
    panels = ([to_grey(image, False)]
              + [to_grey(f, signed) for f, signed in zip(filtered, edge_like)]
              + [to_grey(learned_out, True)])
    path = write_png(out / "filters.png", grid(panels, cols=4))
    results["png"] = path
    order = ["original"] + names + ["learned kernel"]
    print(f"\nwrote {path}: left to right, top to bottom:\n    " + ", ".join(order))
    print("    (edge maps show |output|; the zero padding darkens the blurred images' borders)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="graphc-examples", metavar="DIR",
                        help="folder for filters.png (default: ./graphc-examples/)")
    main(parser.parse_args().out)
