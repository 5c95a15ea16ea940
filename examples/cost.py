"""The time-complexity slides: FLOPs of a forward pass from the graph, and the cost of its gradient.

The lecture's cost model counts one unit per scalar arithmetic operation or
function evaluation, and 2·m·k·n for an (m, k) x (k, n) matmul (a multiply
and an add per term).  For an MLP with layer widths d0, d1, ..., dL a forward
pass on one example then costs

    2·d0·d1 + d1 + 2·d1·d2 + d2 + ... + 2·d(L-1)·dL + dL

(the matmul, then the bias).  ``graph.cost()`` counts the same thing on the
traced graph, node by node, so the two can be compared.  The graph also
counts what the formula leaves out: the activations (one unit per element).

The gradient: reverse mode costs a small constant times the function (the
Baur–Strassen theorem: at most 5 times, whatever the function).  Here the
ratio is measured twice: backward/forward FLOPs from the gradient's graph,
and the run time of the compiled ``value_and_grad`` over the compiled forward.

    python examples/cost.py
    graphc trace  examples/cost.py:loss
    graphc render examples/cost.py:loss --grad --flops -o mlp_cost.svg
    graphc check  examples/cost.py:loss
"""
import contextlib
import os
import timeit

import numpy as np

import graphc
from graphc import nn

SIZES = (784, 256, 128, 10)     # d0 (an MNIST image), two hidden layers, 10 classes
BATCH = 64
BAUR_STRASSEN = 5               # gradient cost <= 5 x function cost


def init_params(rng, sizes=SIZES):
    return [{"W": nn.init.glorot_uniform(rng, (n_in, n_out)), "b": np.zeros(n_out)}
            for n_in, n_out in zip(sizes, sizes[1:])]


def mlp(params, x):
    """relu hidden layers, a linear output layer: ``x @ W + b`` each."""
    h = x
    for layer in params[:-1]:
        h = nn.relu(h @ layer["W"] + layer["b"])
    return h @ params[-1]["W"] + params[-1]["b"]


_rng = np.random.default_rng(0)


@graphc.example(init_params(np.random.default_rng(0), (4, 3, 3, 2)), _rng.normal(size=(2, 4)),
                np.array([0, 1]))
def loss(params, x, y):
    """Mean cross-entropy of the MLP's scores against integer labels."""
    return nn.cross_entropy(mlp(params, x), y)


def formula_flops(sizes, batch=1):
    """The lecture's forward count: ``batch * sum(2 * d_in * d_out + d_out)``."""
    return batch * sum(2 * a * b + b for a, b in zip(sizes, sizes[1:]))


def flops_by_op(graph, cost, section=None):
    """``{op: FLOPs}`` over the graph's nodes (only ``section``'s when given)."""
    totals = {}
    for nid, flops in cost.by_node.items():
        node = graph.nx.nodes[nid]
        backward = node.get("section") == "backward"
        if flops and (section is None or backward == (section == "backward")):
            totals[node["op"]] = totals.get(node["op"], 0) + flops
    return totals


def best_times(fns, args, repeat=5, number=20):
    """Seconds per call of each of ``fns``: the best of ``repeat`` rounds of ``number`` calls.

    The functions take turns within each round, so a busy machine slows them alike.
    """
    for fn in fns:
        fn(*args)                                       # compile outside the timing
    best = [float("inf")] * len(fns)
    with _one_blas_thread():
        for _ in range(repeat):
            for i, fn in enumerate(fns):
                best[i] = min(best[i], timeit.timeit(lambda: fn(*args), number=number) / number)
    return best


def _have_threadpoolctl():
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def _one_blas_thread():
    """Pin BLAS to one thread while timing (with threadpoolctl, if installed): a
    multi-threaded BLAS on a busy machine makes matmul times swing tenfold, and
    the question here is the arithmetic, not the scheduler."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def forward_report(sizes=SIZES, batch=BATCH, out=print):
    """Compare ``graph.cost()`` of the MLP's forward pass with the formula; return both."""
    params = [{"W": graphc.Spec((a, b)), "b": graphc.Spec((b,))} for a, b in zip(sizes, sizes[1:])]
    graph = graphc.trace(mlp, params, graphc.Spec((batch, sizes[0])))
    cost = graph.cost()
    formula = formula_flops(sizes, batch)
    activations = batch * sum(sizes[1:-1])
    widths = "-".join(map(str, sizes))
    out(f"Forward pass of a {widths} relu MLP on a batch of {batch}, node by node "
        "(graph.cost().by_node):")
    for nid, flops in cost.by_node.items():
        node = graph.nx.nodes[nid]
        if flops:
            shape = "x".join(map(str, node["shape"]))
            out(f"    {node['op']:8} {shape:>8}  {flops:>12,}")
    terms = " + ".join(f"2·{a}·{b} + {b}" for a, b in zip(sizes, sizes[1:]))
    out(f"  graph.cost().forward_flops           {cost.forward_flops:>12,}")
    out(f"  formula {batch}·({terms})")
    out(f"                                       {formula:>12,}")
    out(f"  difference                           {cost.forward_flops - formula:>12,}"
        f"  = {batch}·({' + '.join(map(str, sizes[1:-1]))}): one unit per relu, which the "
        "formula leaves out")
    return {"graph": cost.forward_flops, "formula": formula, "activations": activations}


def gradient_report(sizes=SIZES, batch=BATCH, out=print, repeat=5):
    """Backward/forward FLOP and time ratios of ``value_and_grad(loss)``; return them."""
    rng = np.random.default_rng(0)
    params = init_params(rng, sizes)
    x = rng.random((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    results = {}
    out(f"\nThe gradient of the loss (cross-entropy over the {batch} examples):")
    for argnums, what in ((0, "params"), ((0, 1), "params and x")):
        vg = graphc.value_and_grad(loss, argnums=argnums)
        graph = vg.graph(params, x, y)
        cost = graph.cost()
        ratio = cost.backward_flops / cost.forward_flops
        by_op = flops_by_op(graph, cost, "backward")
        matmuls = by_op.get("matmul", 0)
        out(f"  d loss / d {what}: forward {cost.forward_flops:,} FLOPs, backward "
            f"{cost.backward_flops:,} ({matmuls / cost.backward_flops:.1%} in matmuls)")
        out(f"    backward / forward = {ratio:.2f};  (forward + backward) / forward = "
            f"{1 + ratio:.2f}  <= {BAUR_STRASSEN} (Baur–Strassen)")
        results[what] = ratio
    out("  Each matmul's backward is two matmuls of its size (dW = h.T @ dz and dh = dz @ W.T),"
        "\n  so the ratio nears 2; without d x the first layer's dh is never computed.")

    forward = graphc.compile(loss)
    vg = graphc.value_and_grad(loss)
    t_forward, t_grad = best_times([forward, vg], (params, x, y), repeat=repeat)
    results["time"] = t_grad / t_forward
    pinned = ", one BLAS thread" if _have_threadpoolctl() else ""
    out(f"\n  measured (compiled NumPy{pinned}, best of {repeat}): "
        f"forward {t_forward * 1e3:.3f} ms, value_and_grad {t_grad * 1e3:.3f} ms")
    out(f"    time ratio value_and_grad / forward = {t_grad / t_forward:.2f}  "
        f"<= {BAUR_STRASSEN} (Baur–Strassen)")
    return results


def lecture_report(out=print):
    """The same ratio for the lecture's scalar f(w1, w2): FLOPs of its gradient's graph."""
    def f(w1, w2):
        z1 = w1 / w2
        z2 = np.sin(2 * np.pi * z1)
        z3 = np.exp(2 * w2)
        z4 = 3 * z1 - z3
        z5 = z2 + z4
        return z4 * z5
    cost = graphc.value_and_grad(f, argnums=(0, 1)).graph(1.5, 0.5).cost()
    ratio = cost.backward_flops / cost.forward_flops
    out(f"\nThe lecture's f(w1, w2): forward {cost.forward_flops} FLOPs, backward "
        f"{cost.backward_flops}: (forward + backward) / forward = {1 + ratio:.2f} <= "
        f"{BAUR_STRASSEN}")
    return ratio


def main():
    """Print the three reports (``GRAPHC_EXAMPLES_FAST=1``: fewer timing repeats)."""
    repeat = 2 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 5
    results = {"forward": forward_report()}
    results["gradient"] = gradient_report(repeat=repeat)
    results["lecture"] = lecture_report()
    return results


if __name__ == "__main__":
    main()
