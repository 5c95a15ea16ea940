"""``graphc.checkpoint`` on LeNet (W4: batch 64, 1x28x28, float32) and a deep MLP: memory against FLOPs.

    python benchmarks/checkpoint.py         # prints a small table
    python benchmarks/run.py --only checkpoint

Each conv block (conv - relu - max-pool) of the W4 LeNet is either kept as it is or wrapped
in ``graphc.checkpoint``, so the backward pass recomputes it from its input instead of keeping
its values.  For each variant of ``graphc.value_and_grad``: the peak bytes allocated during one
call (tracemalloc: NumPy reports its buffers), the bytes of forward values the backward pass
reads (``graph.cost().saved_bytes``) and of the values recomputed instead
(``recomputed_bytes``), the FLOPs (forward, backward, of which recomputed) and the median time
per call.  All variants are checked to give the same gradients first.

LeNet's peak is set by the first conv block's own backward (its 5 MB im2col matrix and
activations are needed whether kept or recomputed), so checkpointing it lowers the bytes kept
between the passes but not the peak; a second table, a 16-layer tanh MLP checkpointed in
segments of 4 layers (the sqrt(n) scheme), shows the peak going down.
"""
from __future__ import annotations

import functools
import pathlib
import sys
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import graphc  # noqa: E402
from graphc import nn  # noqa: E402
from benchmarks import workloads as W  # noqa: E402


def conv1(x, w, b):
    return nn.max_pool2d(nn.relu(nn.conv2d(x, w, b, padding=2)), 2)      # (N, 6, 14, 14)


def conv2(h, w, b):
    return nn.max_pool2d(nn.relu(nn.conv2d(h, w, b)), 2)                 # (N, 16, 5, 5)


def make_loss(ck1, ck2):
    """W4's ``lenet_loss`` with the conv blocks checkpointed as asked."""
    b1 = graphc.checkpoint(conv1) if ck1 else conv1
    b2 = graphc.checkpoint(conv2) if ck2 else conv2

    def loss(p, x, y):
        h = b1(x, p["c1w"], p["c1b"])
        h = nn.flatten(b2(h, p["c2w"], p["c2b"]))
        h = nn.relu(h @ p["f1w"] + p["f1b"])
        h = nn.relu(h @ p["f2w"] + p["f2b"])
        return nn.cross_entropy(h @ p["f3w"] + p["f3b"], y)
    return loss


VARIANTS = (("no checkpoint", False, False), ("conv1 checkpointed", True, False),
            ("conv2 checkpointed", False, True), ("both checkpointed", True, True))


def peak_bytes(fn, reps=3):
    """Peak bytes allocated by one call above what was live before it (min of ``reps``)."""
    import tracemalloc
    fn()
    peaks = []
    for _ in range(reps):
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = fn()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            del out
        finally:
            tracemalloc.stop()
    return min(peaks)


def median_times(fns, repeats=11, target=0.05):
    """Median seconds per call of each callable, the repeats interleaved (repeat r of every
    callable, then r + 1), so load from elsewhere hits all of them alike."""
    numbers = {k: max(1, int(target / max(min(timeit.repeat(f, number=1, repeat=3)), 1e-6)))
               for k, f in fns.items()}
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            samples[k].append(timeit.timeit(f, number=numbers[k]) / numbers[k])
    return {k: float(np.median(v)) for k, v in samples.items()}


def deep_loss(segment):
    """A 16-layer tanh MLP (width 256) run as 4 segments of 4 layers: ``segment(h, *ws)``."""
    def loss(ws, x):
        h = x
        for i in range(0, DEEP_LAYERS, DEEP_SEGMENT):
            h = segment(h, *ws[i:i + DEEP_SEGMENT])
        return np.mean(h ** 2)
    return loss


def tanh_layers(h, *ws):
    for w in ws:
        h = np.tanh(h @ w)
    return h


DEEP_LAYERS, DEEP_SEGMENT, DEEP_WIDTH, DEEP_BATCH = 16, 4, 256, 1024


def cases():
    """``[(table, label, value_and_grad, args)]``: LeNet's variants, then the deep MLP's."""
    rng = np.random.default_rng(0)
    p, (x, y) = W.lenet_params(rng), W.lenet_data(rng)
    out = [("lenet", label, graphc.value_and_grad(make_loss(ck1, ck2)), (p, x, y))
           for label, ck1, ck2 in VARIANTS]
    ws = [(rng.normal(size=(DEEP_WIDTH,) * 2) / np.sqrt(DEEP_WIDTH)).astype(np.float32)
          for _ in range(DEEP_LAYERS)]
    h = rng.normal(size=(DEEP_BATCH, DEEP_WIDTH)).astype(np.float32)
    out.append(("deep", "no checkpoint", graphc.value_and_grad(deep_loss(tanh_layers)), (ws, h)))
    out.append(("deep", "each 4-layer segment checkpointed",
                graphc.value_and_grad(deep_loss(graphc.checkpoint(tanh_layers))), (ws, h)))
    return out


def _same(a, b, label):
    if isinstance(a, dict):
        a, b = list(a.values()), list(b.values())
    if isinstance(a, (list, tuple)):
        for u, v in zip(a, b):
            _same(u, v, label)
        return
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()), err_msg=label)


def measure(quick=False, log=print):
    """``{(table, label): numbers}``, after checking each table's variants agree."""
    out, calls, refs = {}, {}, {}
    for table, label, vg, args in cases():
        got = vg(*args)
        _same(got, refs.setdefault(table, got), f"{table}: {label}")
        c = vg.graph(*args).cost()
        calls[table, label] = functools.partial(vg, *args)
        out[table, label] = {"peak_bytes": peak_bytes(calls[table, label]),
                             "saved_bytes": c.saved_bytes, "recomputed_bytes": c.recomputed_bytes,
                             "forward_flops": c.forward_flops, "backward_flops": c.backward_flops,
                             "recomputed_flops": c.recomputed_flops}
    for key, t in median_times(calls, 5 if quick else 11).items():
        out[key]["time_s"] = t
        log(f"  checkpoint {key[0]} {key[1]}: peak {out[key]['peak_bytes'] / 1e6:.2f} MB, "
            f"{t * 1e3:.2f} ms")
    return out


HEADER = ["value_and_grad", "peak memory", "kept for backward", "recomputed values",
          "forward FLOPs", "backward FLOPs (recomputed)", "time"]
TITLES = {"lenet": "W4 LeNet b64", "deep": f"{DEEP_LAYERS}-layer tanh MLP {DEEP_WIDTH} wide b{DEEP_BATCH}"}


def section(quick=False, log=print):
    """``(rows, raw)`` for benchmarks/run.py's "checkpoint" section."""
    measured = measure(quick, log)
    rows = []
    for (table, label), n in measured.items():
        base = next(v for (t, _), v in measured.items() if t == table)
        rows.append([f"{TITLES[table]}, {label}",
                     f"{n['peak_bytes'] / 1e6:.2f} MB ({n['peak_bytes'] / base['peak_bytes']:.2f}x)",
                     f"{n['saved_bytes'] / 1e6:.2f} MB", f"{n['recomputed_bytes'] / 1e6:.2f} MB",
                     f"{n['forward_flops'] / 1e6:.1f} M",
                     f"{n['backward_flops'] / 1e6:.1f} M ({n['recomputed_flops'] / 1e6:.1f} M)",
                     f"{n['time_s'] * 1e3:.2f} ms ({n['time_s'] / base['time_s']:.2f}x)"])
    return rows, {f"{t}: {label}": n for (t, label), n in measured.items()}


def main():
    rows, _ = section(log=lambda m: print(m, file=sys.stderr))
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
