"""The ``"array-api"`` target against the NumPy target (``run.py --only xp``), and a GPU section.

CPU: the W2 (MLP) and W4 (LeNet) value_and_grad compiled for each target, on the same
NumPy arrays, timed interleaved (one call of each per repeat, many repeats); the ratio
is the array-API target's time over the NumPy target's (issue 17's goal: <= 1.1).

GPU (only when CuPy and a CUDA device are present): graphc's array-API module on CuPy
arrays and on torch CUDA tensors, against torch's own autograd on CUDA, W2 at batch
128 and 4,096.

    .venv/bin/python benchmarks/array_api.py        # this section alone
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import graphc  # noqa: E402
from benchmarks import workloads as W  # noqa: E402

CASES = (("W2", "MLP 784-256-128-10 b128", W.mlp_params, W.mlp_data, W.mlp_loss_np),
         ("W4", "LeNet b64", W.lenet_params, W.lenet_data, W.lenet_loss))


def _pairs(fa, fb, pairs, inner):
    """Interleaved timings: per repeat, ``inner`` calls of fa then of fb."""
    ta, tb = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        for _ in range(inner):
            fa()
        t1 = time.perf_counter()
        for _ in range(inner):
            fb()
        t2 = time.perf_counter()
        ta.append((t1 - t0) / inner)
        tb.append((t2 - t1) / inner)
    return ta, tb


def cpu_rows(quick=False, log=print):
    """``(rows, raw)``: per workload the NumPy and array-API targets' times and their ratio."""
    rng = np.random.default_rng(0)
    rows, raw = [], {}
    for key, label, params, data, loss in CASES:
        p, (x, y) = params(rng), data(rng)
        a = graphc.value_and_grad(loss)
        b = graphc.value_and_grad(loss, target="array-api")
        (va, ga), (vb, gb) = a(p, x, y), b(p, x, y)
        if float(va) != float(vb) or any(not np.allclose(ga[k], gb[k], rtol=1e-5, atol=1e-6)
                                         for k in ga):
            raise AssertionError(f"{key}: the array-API target disagrees with the NumPy target")
        log(f"  array-api {key} ...")
        ta, tb = _pairs(lambda: a(p, x, y), lambda: b(p, x, y), 10 if quick else 40,
                        5 if key == "W2" else 2)
        ma, mb = statistics.median(ta), statistics.median(tb)
        ratio_min = min(tb) / min(ta)
        ratio_med = statistics.median([y / x for x, y in zip(ta, tb)])
        raw[key] = {"numpy_s": ma, "array_api_s": mb, "ratio_min": ratio_min,
                    "ratio_median_pair": ratio_med}
        rows.append([f"{key} {label}", f"{ma * 1e3:.2f} ms", f"{mb * 1e3:.2f} ms",
                     f"{ratio_min:.2f}x", f"{ratio_med:.2f}x"])
    return rows, raw


def gpu_available():
    """CuPy importable and a CUDA device present."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def gpu_rows(log=print):
    """W2 on the GPU: graphc-on-CuPy, graphc-on-torch-CUDA, torch autograd on CUDA."""
    import cupy
    rows, raw = [], {}
    try:
        import torch
        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    for n in (128, 4096):
        rng = np.random.default_rng(0)
        p, (x, y) = W.mlp_params(rng), W.mlp_data(rng, n)
        vg = graphc.value_and_grad(W.mlp_loss_np, target="array-api")
        cp_args = ({k: cupy.asarray(v) for k, v in p.items()}, cupy.asarray(x), cupy.asarray(y))

        def on_cupy():
            out = vg(*cp_args)
            cupy.cuda.Device().synchronize()
            return out
        times = {"graphc on CuPy": _best(on_cupy)}
        if has_torch:
            tp = {k: torch.asarray(v, device="cuda") for k, v in p.items()}
            tx, ty = torch.asarray(x, device="cuda"), torch.asarray(y, device="cuda")

            def on_torch():
                out = vg(tp, tx, ty)
                torch.cuda.synchronize()
                return out
            leaves = {k: v.clone().requires_grad_(True) for k, v in tp.items()}

            def torch_autograd():
                for t in leaves.values():
                    t.grad = None
                h1 = torch.relu(tx @ leaves["W1"] + leaves["b1"])
                h2 = torch.relu(h1 @ leaves["W2"] + leaves["b2"])
                loss = torch.nn.functional.cross_entropy(h2 @ leaves["W3"] + leaves["b3"], ty)
                loss.backward()
                torch.cuda.synchronize()
                return loss
            times["graphc on torch CUDA"] = _best(on_torch)
            times["torch autograd CUDA"] = _best(torch_autograd)
        raw[n] = times
        rows.append([f"W2 MLP b{n}"] + [f"{times[k] * 1e3:.3f} ms" if k in times else "n/a"
                                        for k in ("graphc on CuPy", "graphc on torch CUDA",
                                                  "torch autograd CUDA")])
        log(f"  gpu W2 b{n}: {times}")
    return rows, raw


def _best(fn, repeats=30):
    for _ in range(3):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def section(quick=False, log=print):
    """``(markdown lines, raw)`` for run.py's report."""
    from benchmarks.run import md_table
    rows, raw = cpu_rows(quick, log)
    lines = ["## Array-API target on NumPy (issue 17)", "",
             "value_and_grad compiled with `target=\"array-api\"` against the NumPy target, on "
             "the same NumPy arrays, interleaved; ratio of the minimum times and median of the "
             "per-repeat ratios (goal: <= 1.1x).", "",
             md_table(["workload", "NumPy target", "array-API target", "ratio (min)",
                       "ratio (median pair)"], rows), ""]
    if gpu_available():
        grows, raw["gpu"] = gpu_rows(log)
        lines += ["## GPU", "", "Median time per call (synchronized).", "",
                  md_table(["workload", "graphc on CuPy", "graphc on torch CUDA",
                            "torch autograd CUDA"], grows), ""]
    else:
        lines += ["GPU section skipped: no CuPy or no CUDA device.", ""]
    return lines, raw


if __name__ == "__main__":
    out, _ = section(quick="--quick" in sys.argv, log=lambda m: print(m, file=sys.stderr))
    print("\n".join(out))
