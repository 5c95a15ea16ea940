"""Property-based fuzzing: random well-typed programs through graphc.

Each program is a short list of steps over a pool of values (the inputs, then
each step's result): elementwise unary and binary ops with broadcasting,
reductions with axis/keepdims, reshape / transpose / getitem / concatenate /
stack, matmul, where / maximum / clip, graphc.nn activations, the softmax
family and losses.  The same program runs

* as plain NumPy on ndarrays (the reference value and, through float64
  central differences, the reference gradient: tests/_fd.py),
* through graphc (``graphc.compile`` for values and dtypes, in float64 and
  float32; ``graphc.grad`` for gradients, which in float32 must stay float32
  and agree with float64 to float32 accuracy; ``graphc.grad`` of a
  ``graphc.grad`` for Hessian-vector products),
* through graphc's graph interpreter (graphc.interpret: the unoptimized IR
  evaluated node by node, so a wrong optimization pass shows up), and
* through PyTorch's autograd (a second, independent gradient) where torch is
  installed.

Programs are generated *with their concrete values in hand*, so every step
can keep away from kinks and ties (``maximum`` only of well-separated values,
``log`` only of values above 0.05, ...) and from overflow: a step whose
result would not be smooth at the drawn inputs is redrawn.  Finite
differences are then meaningful, and a mismatch is a bug, not noise.

Also: convolution and pooling layers with random small shapes, strides,
padding and dilation (values and gradients vs finite differences and torch),
and every graphc.nn function called eagerly on arrays vs inside a compiled
function.

Programs are drawn from one seed each (hypothesis draws the seed; see
:class:`Draw`); a failure message prints the program.

Profiles: the quick one (30-100 programs per property, derandomized so CI is
deterministic; about 10 s) runs in ``make test``; ``make fuzz`` runs the ``fuzz``
marked tests with ``GRAPHC_FUZZ_EXAMPLES`` programs per property (default
2000).  Every bug found here becomes a plain test in test_regressions.py.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import graphc
from _fd import fd_grad_args

try:   # the graph interpreter: the IR's own semantics, before any optimization pass
    from graphc.interpret import evaluate as interpret
except ImportError:
    interpret = None

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the torch comparison is optional
    torch = None

QUICK = 100
LONG = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "2000"))
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
quick = settings(max_examples=QUICK, deadline=None, derandomize=True, database=None,
                 suppress_health_check=_HEALTH, phases=[Phase.explicit, Phase.generate])
# No shrinking: hypothesis would shrink the seed, which only draws unrelated programs.
# A failure prints its seed; the program is in the assertion message.
long = settings(max_examples=LONG, deadline=None, suppress_health_check=_HEALTH,
                phases=[Phase.explicit, Phase.reuse, Phase.generate])

MARGIN = 1e-2      # distance kept from kinks, ties and domain edges
BOUND = 1e4        # largest |value| a step may produce


# --- the op table ------------------------------------------------------------------------
# Every op: (arity, numpy implementation, torch implementation, static-param drawer).
# The drawer gets (data, *concrete float64 operands) and returns the static params,
# or None when the op is not smooth / not defined at these operands.
def _gap(a, b):
    return np.all(np.abs(np.asarray(a) - np.asarray(b)) > MARGIN)


def _top2_gap(x, axes, largest=True):
    """Do the extremes over ``axes`` win by MARGIN (no ties)?"""
    x = np.asarray(x)
    if x.ndim == 0:
        return True
    axes = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    flat = np.transpose(x, rest + list(axes)).reshape([x.shape[a] for a in rest] + [-1])
    if flat.shape[-1] < 2:
        return True
    s = np.sort(flat, axis=-1)
    d = s[..., -1] - s[..., -2] if largest else s[..., 1] - s[..., 0]
    return bool(np.all(d > MARGIN))


def _axes(data, ndim, allow_none=True):
    """A random axis argument: None, an int (maybe negative) or a tuple."""
    if ndim == 0:
        return None
    kind = data.choice(["none", "int", "tuple"] if allow_none else ["int", "tuple"])
    if kind == "none":
        return None
    if kind == "int":
        return data.int(-ndim, ndim - 1)
    axes = data.subset(ndim)
    return tuple(axes)


def _tuple_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return (axis % ndim,) if isinstance(axis, int) else tuple(axis)


def _unary(np_fn, torch_fn, ok=lambda x: True):
    def draw(data, x):
        return {} if ok(x) else None
    return (1, lambda x: np_fn(x), lambda x: torch_fn(x), draw)


def _binary(np_fn, torch_fn, ok=lambda x, y: True):
    def draw(data, x, y):
        try:
            np.broadcast_shapes(np.shape(x), np.shape(y))
        except ValueError:
            return None
        return {} if ok(x, y) else None
    return (2, lambda x, y: np_fn(x, y), lambda x, y: torch_fn(x, y), draw)


def _reduce(name):
    def draw(data, x):
        axis = _axes(data, np.ndim(x))
        keepdims = data.bool()
        if name in ("max", "min") and not _top2_gap(x, None if axis is None else
                                                    _tuple_axes(axis, np.ndim(x)), name == "max"):
            return None
        return {"axis": axis, "keepdims": keepdims}

    def np_fn(x, axis, keepdims):
        return getattr(np, name)(x, axis=axis, keepdims=keepdims)

    def torch_fn(x, axis, keepdims):
        dims = _tuple_axes(axis, x.ndim)
        if x.ndim == 0:
            return x
        if name == "sum":
            return torch.sum(x, dim=dims, keepdim=keepdims)
        if name == "mean":
            return torch.mean(x, dim=dims, keepdim=keepdims)
        return (torch.amax if name == "max" else torch.amin)(x, dim=dims, keepdim=keepdims)
    return (1, np_fn, torch_fn, draw)


def _draw_reshape(data, x):
    shape = np.shape(x)
    size = int(np.prod(shape))
    # the shape reversed, flattened, or split into factors, with -1 sometimes
    options = [shape[::-1], (size,), (1,) + tuple(shape), tuple(d for d in shape if d != 1)]
    for f in (2, 3):
        if size % f == 0 and size > f:
            options.append((f, size // f))
    new = data.choice(options)
    if new and data.bool():
        i = data.int(0, len(new) - 1)
        new = new[:i] + (-1,) + new[i + 1:]
    return {"shape": tuple(new)}


def _draw_transpose(data, x):
    nd = np.ndim(x)
    perm = data.perm(nd) if nd else []
    return {"perm": tuple(perm)}


def _draw_getitem(data, x):
    shape = np.shape(x)
    if not shape:
        return {"key": (None,)} if data.bool() else {"key": ()}
    key = []
    for d in shape[:data.int(1, len(shape))]:
        kind = data.choice(["int", "slice", "all", "none"])
        if kind == "int":
            key.append(data.int(-d, d - 1))
        elif kind == "slice":
            start = data.int(0, d - 1)
            stop = data.int(start + 1, d)
            key.append(slice(start, stop, data.int(1, 2)))
        elif kind == "none":
            key.extend([None, slice(None)])
        else:
            key.append(slice(None))
    if data.bool():
        key.insert(0, Ellipsis)   # the key then indexes the trailing axes
    return {"key": tuple(key)}


def _permute(x, perm):
    return x.permute(*perm) if perm else x   # torch's permute() rejects 0-d


def _np_getitem(x, key):
    return x[key]


def _torch_getitem(x, key):
    return x[key]


def _draw_concat(data, x, y):
    sx, sy = np.shape(x), np.shape(y)
    if len(sx) != len(sy) or not sx:
        return None
    axis = data.int(-len(sx), len(sx) - 1)
    a = axis % len(sx)
    if any(p != q for i, (p, q) in enumerate(zip(sx, sy)) if i != a):
        return None
    return {"axis": axis}


def _draw_stack(data, x, y):
    if np.shape(x) != np.shape(y):
        return None
    return {"axis": data.int(-np.ndim(x) - 1, np.ndim(x))}


def _draw_matmul(data, x, y):
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return None
    # multiply by y with its last two axes swapped, so any two values with a
    # common last dimension meet: (..., m, k) @ (..., k, n)
    swap = np.ndim(y) >= 2
    try:
        np.matmul(x, np.swapaxes(y, -1, -2) if swap else y)
    except ValueError:
        return None
    return {"swap": swap}


def _np_matmul(x, y, swap):
    return x @ (np.swapaxes(y, -1, -2) if swap else y)


def _torch_matmul(x, y, swap):
    return x @ (y.transpose(-1, -2) if swap else y)


def _draw_where(data, x, y):
    try:
        np.broadcast_shapes(np.shape(x), np.shape(y))
    except ValueError:
        return None
    return {} if _gap(x, y) else None


def _draw_axis_op(data, x, ok=lambda x, axis: True):
    if np.ndim(x) == 0:
        return None
    axis = data.int(-np.ndim(x), np.ndim(x) - 1)
    return {"axis": axis} if ok(x, axis) else None


def _draw_maxout(data, x):
    if np.ndim(x) == 0:
        return None
    axis = data.int(-np.ndim(x), np.ndim(x) - 1)
    n = np.shape(x)[axis]
    pieces = [p for p in (2, 3) if n % p == 0]
    if not pieces:
        return None
    p = data.choice(pieces)
    a = axis % np.ndim(x)
    grouped = np.reshape(x, np.shape(x)[:a] + (n // p, p) + np.shape(x)[a + 1:])
    return {"pieces": p, "axis": axis} if _top2_gap(grouped, (a + 1,)) else None


def _torch_maxout(x, pieces, axis):
    a = axis % x.ndim
    shape = tuple(x.shape)
    return torch.amax(x.reshape(shape[:a] + (shape[a] // pieces, pieces) + shape[a + 1:]), dim=a + 1)


def _draw_clip(data, x):
    lo = data.choice([-1.0, -0.5, 0.0])
    hi = data.choice([0.5, 1.0, 2.0])
    return {"lo": lo, "hi": hi} if _gap(x, lo) and _gap(x, hi) else None


def _draw_ce(data, x, y):
    if np.ndim(x) != 2 or np.shape(x)[1] < 2:
        return None
    n, k = np.shape(x)
    if data.bool():
        labels = np.array(data.ints(0, k - 1, n))
        return {"labels": labels}
    return {"labels": None}   # probabilities: softmax of the other operand, if it fits


def _np_ce(x, y, labels):
    if labels is not None:
        return graphc.nn.cross_entropy(x, labels)
    p = graphc.nn.softmax(np.broadcast_to(y, np.shape(x)) * 1.0, axis=1)
    return graphc.nn.cross_entropy(x, p)


def _torch_ce(x, y, labels):
    if labels is not None:
        return F.cross_entropy(x, torch.as_tensor(labels))
    p = torch.softmax(torch.broadcast_to(y, x.shape) * 1.0, dim=1)
    return F.cross_entropy(x, p)


def _draw_ce_pair(data, x, y):
    out = _draw_ce(data, x, y)
    if out is None:
        return None
    if out["labels"] is None:
        try:
            if np.broadcast_shapes(np.shape(x), np.shape(y)) != np.shape(x):
                return None
        except ValueError:
            return None
    return out


def _draw_pick(data, x):
    """``x[np.arange(n), idx]``: integer-array indexing (the cross-entropy pick)."""
    if np.ndim(x) != 2:
        return None
    n, k = np.shape(x)
    idx = np.array(data.ints(0, k - 1, n))
    return {"idx": idx}


def _draw_pow_const(data, x):
    p = data.choice([2, 3, 0.5, -1.0, 1.5, 2.0])
    if isinstance(p, float) and p != 2.0 and not np.all(np.asarray(x) > 0.05):
        return None
    if p == -1.0 and not np.all(np.abs(np.asarray(x)) > 0.1):
        return None
    return {"p": p}


def _draw_scalar(data, x):
    return {"c": data.choice([2.0, -0.5, 3.0, 1.0, 0.0])}


def _iadd(x, y):
    z = x * 1.5
    z += y          # rebinds z (allowed): NumPy's in-place add on a fresh array
    return z


def _np_dot(x, y):
    return np.dot(x, y)


def _torch_dot(x, y):
    if x.ndim == 0 or y.ndim == 0:
        return x * y
    if x.ndim == 1 and y.ndim == 1:
        return torch.dot(x, y)
    return torch.matmul(x, y)


def _draw_dot(data, x, y):
    # np.dot is matmul for <= 2-d operands (and a product for 0-d ones)
    if np.ndim(x) > 2 or np.ndim(y) > 2:
        return None
    try:
        np.dot(x, y)
    except ValueError:
        return None
    return {}


def _draw_tensordot(data, x, y):
    if np.ndim(x) == 0 or np.ndim(y) == 0 or np.shape(x)[-1] != np.shape(y)[0]:
        return None
    return {}


def _draw_swapaxes(data, x):
    nd = np.ndim(x)
    if nd == 0:
        return None
    return {"a": data.int(-nd, nd - 1), "b": data.int(0, nd - 1)}


def _draw_squeeze(data, x):
    ones = [i for i, d in enumerate(np.shape(x)) if d == 1]
    return {"axis": data.choice(ones)} if ones else None


def _draw_gather(data, x):
    if np.ndim(x) == 0:
        return None
    n = np.shape(x)[0]
    idx = data.ints(-n, n - 1, data.int(1, 4))     # repeats allowed
    # -1 and n-1 name the same element: drawn on purpose (the unique-scatter rule of
    # passes/simplify.py once took them for distinct; test_regressions.py).
    return {"idx": np.array(idx)}


def _leaky_ok(x):
    return np.all(np.abs(np.asarray(x)) > MARGIN)


def _ops():
    nn = graphc.nn
    pos = lambda x: np.all(np.asarray(x) > 0.05)   # noqa: E731
    nonzero = lambda x: np.all(np.abs(np.asarray(x)) > 0.1)   # noqa: E731
    ops = {
        # elementwise unary
        "neg": _unary(lambda x: -x, lambda x: -x),
        "exp": _unary(np.exp, torch.exp if torch else None, lambda x: np.all(np.asarray(x) < 8)),
        "log": _unary(np.log, torch.log if torch else None, pos),
        "log_sq": _unary(lambda x: np.log(x * x + 1.0), lambda x: torch.log(x * x + 1.0)),
        "log1p": _unary(np.log1p, torch.log1p if torch else None,
                        lambda x: np.all(np.asarray(x) > -0.9)),
        "expm1": _unary(np.expm1, torch.expm1 if torch else None, lambda x: np.all(np.asarray(x) < 8)),
        "sin": _unary(np.sin, torch.sin if torch else None),
        "cos": _unary(np.cos, torch.cos if torch else None),
        "tan": _unary(np.tan, torch.tan if torch else None,
                      lambda x: np.all(np.abs(np.cos(np.asarray(x))) > 0.3)),
        "tanh": _unary(np.tanh, torch.tanh if torch else None),
        "sqrt": _unary(np.sqrt, torch.sqrt if torch else None, pos),
        "square": _unary(np.square, torch.square if torch else None),
        "abs": _unary(np.abs, torch.abs if torch else None, _leaky_ok),
        "abs_op": _unary(lambda x: abs(x), lambda x: abs(x), _leaky_ok),
        "reciprocal": _unary(lambda x: 1 / x, lambda x: 1 / x, nonzero),
        "sigmoid": _unary(nn.sigmoid, torch.sigmoid if torch else None),
        "relu": _unary(nn.relu, torch.relu if torch else None, _leaky_ok),
        "leaky_relu": _unary(lambda x: nn.leaky_relu(x, 0.1),
                             lambda x: F.leaky_relu(x, 0.1), _leaky_ok),
        "elu": _unary(lambda x: nn.elu(x, 0.7), lambda x: F.elu(x, 0.7), _leaky_ok),
        "softplus": _unary(nn.softplus, F.softplus if torch else None),
        "hand_softplus": _unary(lambda x: np.log(1 + np.exp(x)), F.softplus if torch else None),
        "T": _unary(lambda x: x.T, lambda x: _permute(x, tuple(reversed(range(x.ndim))))),
        "pow_const": (1, lambda x, p: x ** p, lambda x, p: x ** p, _draw_pow_const),
        "scale": (1, lambda x, c: x * c, lambda x, c: x * c, _draw_scalar),
        "shift": (1, lambda x, c: c - x, lambda x, c: c - x, _draw_scalar),
        # elementwise binary, with broadcasting
        "add": _binary(lambda x, y: x + y, lambda x, y: x + y),
        "sub": _binary(lambda x, y: x - y, lambda x, y: x - y),
        "mul": _binary(lambda x, y: x * y, lambda x, y: x * y),
        "div": _binary(lambda x, y: x / y, lambda x, y: x / y, lambda x, y: nonzero(y)),
        "pow": _binary(lambda x, y: x ** y, lambda x, y: x ** y,
                       lambda x, y: pos(x) and np.all(np.abs(np.asarray(y) * np.log(x)) < 8)),
        "maximum": _binary(np.maximum, torch.maximum if torch else None, _gap),
        "minimum": _binary(np.minimum, torch.minimum if torch else None, _gap),
        "where": (2, lambda x, y: np.where(x > y, x * y, x - y),
                  lambda x, y: torch.where(x > y, x * y, x - y), _draw_where),
        "mse": _binary(nn.mse, lambda x, y: torch.mean((x - y) ** 2),
                       lambda x, y: np.broadcast_shapes(np.shape(x), np.shape(y)) == np.shape(x)),
        "logistic": _binary(lambda s, y: nn.logistic_loss(s, np.tanh(y)),
                            lambda s, y: torch.mean(F.softplus(-(torch.tanh(y) * s)))),
        # reductions
        "sum": _reduce("sum"), "mean": _reduce("mean"), "max": _reduce("max"), "min": _reduce("min"),
        "method_sum": (1, lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
                       _reduce("sum")[2], _reduce("sum")[3]),
        # shapes and indexing
        "reshape": (1, lambda x, shape: np.reshape(x, shape), lambda x, shape: x.reshape(shape),
                    _draw_reshape),
        "transpose": (1, lambda x, perm: np.transpose(x, perm), _permute,
                      _draw_transpose),
        "getitem": (1, _np_getitem, _torch_getitem, _draw_getitem),
        "expand_dims": (1, lambda x, axis: np.expand_dims(x, axis), lambda x, axis: x.unsqueeze(axis),
                        lambda data, x: {"axis": data.int(-np.ndim(x) - 1, np.ndim(x))}),
        "broadcast_to": (1, lambda x, shape: np.broadcast_to(x, shape),
                         lambda x, shape: torch.broadcast_to(x, shape),
                         lambda data, x: {"shape": (data.int(1, 3),) + np.shape(x)}),
        "concatenate": (2, lambda x, y, axis: np.concatenate([x, y], axis=axis),
                        lambda x, y, axis: torch.cat([x, y], dim=axis), _draw_concat),
        "stack": (2, lambda x, y, axis: np.stack([x, y], axis=axis),
                  lambda x, y, axis: torch.stack([x, y], dim=axis), _draw_stack),
        "matmul": (2, _np_matmul, _torch_matmul, _draw_matmul),
        "clip": (1, lambda x, lo, hi: np.clip(x, lo, hi), lambda x, lo, hi: torch.clamp(x, lo, hi),
                 _draw_clip),
        "pick": (1, lambda x, idx: x[np.arange(x.shape[0]), idx],
                 lambda x, idx: x[torch.arange(x.shape[0]), torch.as_tensor(idx)], _draw_pick),
        "rpow": _unary(lambda x: 2.0 ** x, lambda x: 2.0 ** x, lambda x: np.all(np.asarray(x) < 10)),
        "rdiv": _unary(lambda x: 3.0 / x, lambda x: 3.0 / x, nonzero),
        "where_scalar": _unary(lambda x: np.where(x > 0.5, x, 0.25), lambda x: torch.where(
            x > 0.5, x, torch.tensor(0.25, dtype=x.dtype)), lambda x: _gap(x, 0.5)),
        "positive": _unary(lambda x: +x, lambda x: +x),
        "iadd": _binary(_iadd, lambda x, y: x * 1.5 + y),
        "dot": (2, _np_dot, _torch_dot, _draw_dot),
        "tensordot": (2, lambda x, y: np.tensordot(x, y, axes=1), lambda x, y: torch.tensordot(
            x, y, dims=1), _draw_tensordot),
        "swapaxes": (1, lambda x, a, b: np.swapaxes(x, a, b), lambda x, a, b: torch.swapaxes(x, a, b),
                     _draw_swapaxes),
        "squeeze": (1, lambda x, axis: np.squeeze(x, axis), lambda x, axis: x.squeeze(axis),
                    _draw_squeeze),
        "ravel": _unary(np.ravel, lambda x: x.reshape(-1)),
        "gather": (1, lambda x, idx: x[idx], lambda x, idx: x[torch.as_tensor(idx)], _draw_gather),
        "iterate": (1, lambda x: np.stack([r * (i + 1.0) for i, r in enumerate(x)]),
                    lambda x: torch.stack([r * (i + 1.0) for i, r in enumerate(x)]),
                    lambda data, x: {} if np.ndim(x) else None),
        "method_mean": (1, lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims),
                        _reduce("mean")[2], _reduce("mean")[3]),
        "method_max": (1, lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims),
                       _reduce("max")[2], _reduce("max")[3]),
        # softmax family and losses
        "softmax": (1, lambda x, axis: nn.softmax(x, axis=axis),
                    lambda x, axis: torch.softmax(x, dim=axis), _draw_axis_op),
        "log_softmax": (1, lambda x, axis: nn.log_softmax(x, axis=axis),
                        lambda x, axis: torch.log_softmax(x, dim=axis), _draw_axis_op),
        "log_of_softmax": (1, lambda x, axis: np.log(nn.softmax(x, axis=axis)),
                           lambda x, axis: torch.log_softmax(x, dim=axis), _draw_axis_op),
        "logsumexp": (1, lambda x, axis: nn.logsumexp(x, axis=axis),
                      lambda x, axis: torch.logsumexp(x, dim=axis),
                      lambda data, x: _draw_axis_op(data, x, lambda x, a: np.shape(x)[a] > 0)),
        "maxout": (1, lambda x, pieces, axis: nn.maxout(x, pieces, axis=axis), _torch_maxout,
                   _draw_maxout),
        "cross_entropy": (2, _np_ce, _torch_ce, _draw_ce_pair),
    }
    return ops


OPS = _ops()
OP_NAMES = sorted(OPS)
SEEDS = st.integers(0, 2**63 - 1)


# --- programs -------------------------------------------------------------------------
class Program:
    """Steps ``(op, operand indices, params)`` over a pool: inputs, then results."""

    def __init__(self, inputs):
        self.inputs = inputs          # concrete float64 arrays
        self.steps = []
        self.sinks = []               # pool indices summed (with weights) into the loss
        self.weights = []

    def __repr__(self):
        lines = [f"inputs: {[np.shape(x) for x in self.inputs]}"]
        n = len(self.inputs)
        for i, (op, args, params) in enumerate(self.steps):
            shown = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in params.items()}
            lines.append(f"v{n + i} = {op}({', '.join(f'v{a}' for a in args)}, {shown})")
        lines.append(f"loss = sum(w * v) over {self.sinks}")
        return "\n".join(lines)

    def run(self, xs, backend="np"):
        """All pool values (NumPy on ndarrays or tracers; or torch tensors)."""
        pool = list(xs)
        for op, args, params in self.steps:
            fn = OPS[op][1] if backend == "np" else OPS[op][2]
            pool.append(fn(*[pool[a] for a in args], **params))
        return pool

    def outputs(self, xs, backend="np"):
        pool = self.run(xs, backend)
        return [pool[i] for i in self.sinks]

    def loss(self, xs, backend="np"):
        pool = self.run(xs, backend)
        total = 0.0
        for i, w in zip(self.sinks, self.weights):
            v = pool[i]
            total = total + ((v * (w if backend == "np" else torch.as_tensor(w))).sum())
        return total


def _shapes(data, n):
    """``n`` mutually broadcastable shapes: suffixes of one base shape with some dims 1."""
    rank = data.choice([0, 1, 1, 2, 2, 2, 3, 3])
    base = tuple(data.ints(1, 4, rank))
    shapes = []
    for _ in range(n):
        r = data.int(0, rank)
        s = list(base[rank - r:])
        for j in range(r):
            if data.int(0, 3) == 0:
                s[j] = 1
        shapes.append(tuple(s))
    return shapes


class Draw:
    """Random choices for one program, all from one seed.

    Hypothesis draws only the seed: its own integer and list strategies lean
    towards small values and first options (for shrinking), which would make
    most programs rank-0 chains of the alphabetically first op.  A failing
    seed is printed by hypothesis and replays the same program.
    """

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def bool(self):
        return bool(self.rng.integers(2))

    def choice(self, options):
        return options[int(self.rng.integers(len(options)))]

    def ints(self, lo, hi, n):
        return [self.int(lo, hi) for _ in range(n)]

    def subset(self, n):
        return tuple(int(a) for a in self.rng.permutation(n)[:self.int(1, n)])

    def some(self, options, k):
        options = list(options)
        return [options[i] for i in self.rng.permutation(len(options))[:self.int(0, min(k, len(options)))]]

    def perm(self, n):
        return tuple(int(a) for a in self.rng.permutation(n))


def draw_program(seed, max_steps=6, ops=OP_NAMES, n_inputs=3):
    data = Draw(seed)
    shapes = _shapes(data, n_inputs)
    rng = data.rng
    inputs = [rng.uniform(-2, 2, size=s) for s in shapes]
    prog = Program(inputs)
    pool = list(inputs)
    for _ in range(data.int(1, max_steps)):
        for _attempt in range(12):
            op = data.choice(ops)
            arity = OPS[op][0]
            args = [data.int(0, len(pool) - 1) for _ in range(arity)]
            # prefer recent values, so programs are chains rather than bags of one-liners
            if data.bool():
                args[0] = len(pool) - 1
            params = OPS[op][3](data, *[pool[a] for a in args])
            if params is None:
                continue
            with np.errstate(all="ignore"):
                try:
                    value = np.asarray(OPS[op][1](*[pool[a] for a in args], **params))
                except (ValueError, IndexError):
                    continue
            if value.size == 0 or not np.all(np.isfinite(value)) or np.max(np.abs(value)) > BOUND:
                continue
            prog.steps.append((op, args, params))
            pool.append(value)
            break
    n = len(pool)
    extra = data.some(range(n_inputs, n), 2) \
        if n > n_inputs else []
    prog.sinks = sorted(set(extra) | {n - 1})
    prog.weights = [rng.uniform(0.5, 1.5, size=np.shape(pool[i])) for i in prog.sinks]
    return prog


def _as_fn(prog, what):
    """A named Python function of three arguments (graphc traces its signature)."""
    if what == "loss":
        def program(x0, x1, x2):
            return prog.loss([x0, x1, x2])
    else:
        def program(x0, x1, x2):
            return tuple(prog.outputs([x0, x1, x2]))
    return program


def _close(a, b, tol):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol * scale))


# --- properties ------------------------------------------------------------------------
def check_values(prog, dtype=np.float64):
    xs = [x.astype(dtype) for x in prog.inputs]
    fn = graphc.compile(_as_fn(prog, "outputs"))
    got = fn(*xs)
    with np.errstate(all="ignore"):
        want = prog.outputs(xs)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w), f"shape {np.shape(g)} != NumPy's {np.shape(w)}\n{prog}"
        assert np.asarray(g).dtype == np.asarray(w).dtype, \
            f"dtype {np.asarray(g).dtype} != NumPy's {np.asarray(w).dtype}\n{prog}"
        assert _close(g, w, tol), f"value mismatch: {g} vs NumPy {w}\n{prog}"


def check_grads(prog):
    f = _as_fn(prog, "loss")
    xs = prog.inputs
    value, grads = graphc.value_and_grad(f, argnums=(0, 1, 2))(*xs)
    want = prog.loss(xs)
    assert _close(value, want, 1e-10), f"loss {value} vs NumPy {want}\n{prog}"
    fd = fd_grad_args(lambda *a: prog.loss(list(a)), xs, (0, 1, 2), eps=1e-6)
    # FD's own error, estimated from a second step size (truncation error grows as
    # eps**2, round-off as 1/eps): exp(exp(x)) has third derivatives in the 1e5s
    fd2 = fd_grad_args(lambda *a: prog.loss(list(a)), xs, (0, 1, 2), eps=2e-6)
    scale = 1e-10 * max(1.0, abs(float(want)))  # FD round-off grows with |loss|
    for i, (g, d, d2) in enumerate(zip(grads, fd, fd2)):
        assert g.shape == np.shape(xs[i]) and g.dtype == np.float64, f"grad {i}: {g.shape}\n{prog}"
        err = np.abs(g - d)
        bound = 1e-5 * max(1.0, float(np.max(np.abs(d), initial=0.0))) + 1e4 * scale \
            + 4 * np.abs(d - d2)
        assert np.all(err <= bound), f"grad of x{i} vs finite differences: max error " \
            f"{np.max(err)}\n{g}\nvs\n{d}\n{prog}"
    if interpret is not None:
        # the unoptimized forward + backward graph (grad inlined into a trace), node by node
        g = graphc.trace(lambda x0, x1, x2: graphc.grad(f, argnums=(0, 1, 2))(x0, x1, x2), *xs)
        values = interpret(g, list(xs))
        for i, (got, o) in enumerate(zip(grads, g.outputs)):
            want = np.asarray(values[o])
            assert got.shape == want.shape and _close(got, want, 1e-12), \
                f"grad of x{i}: generated code {got} vs graph interpreter {want}\n{prog}"
    if torch is not None:
        ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
        loss = prog.loss(ts, backend="torch")
        tg = torch.autograd.grad(loss, ts, allow_unused=True)
        for i, (g, t) in enumerate(zip(grads, tg)):
            t = np.zeros_like(xs[i]) if t is None else t.detach().numpy()
            assert _close(g, t, 1e-9), f"grad of x{i} vs torch:\n{g}\nvs\n{t}\n{prog}"


def check_grads_float32(prog):
    """float32 inputs: gradients keep float32 (no silent promotion) and agree with
    the float64 gradients to float32 accuracy (relative to the largest entry)."""
    f = _as_fn(prog, "loss")
    g64 = graphc.grad(f, argnums=(0, 1, 2))(*prog.inputs)
    g32 = graphc.grad(f, argnums=(0, 1, 2))(*[x.astype(np.float32) for x in prog.inputs])
    scale = max(1.0, max(float(np.max(np.abs(g), initial=0.0)) for g in g64))
    for i, (a, b) in enumerate(zip(g32, g64)):
        assert a.dtype == np.float32, f"grad of float32 x{i} is {a.dtype}\n{prog}"
        err = float(np.max(np.abs(a - b), initial=0.0))
        assert err <= 2e-3 * scale, f"float32 grad of x{i} off by {err}:\n{a}\nvs\n{b}\n{prog}"


def check_hvp(prog, v):
    """``d/dx <grad f(x), v>`` (grad of grad) vs central differences of grad f along v."""
    f = _as_fn(prog, "loss")
    g = graphc.grad(f)

    def gv(x0, x1, x2):
        return np.sum(g(x0, x1, x2) * v)

    hv = graphc.grad(gv)(*prog.inputs)
    eps = 1e-5
    x1, x2 = prog.inputs[1], prog.inputs[2]
    fd = (g(prog.inputs[0] + eps * v, x1, x2) - g(prog.inputs[0] - eps * v, x1, x2)) / (2 * eps)
    scale = max(1.0, float(np.max(np.abs(fd), initial=0.0)))
    err = float(np.max(np.abs(hv - fd), initial=0.0))
    assert err <= 1e-5 * scale, f"Hessian-vector product: max error {err}\n{hv}\nvs\n{fd}\n{prog}"


# Ops whose second derivative is smooth at the drawn points (the kinked ones have
# a zero second derivative graphc and FD agree on anyway, but keep HVP programs smooth).
SMOOTH = [op for op in OP_NAMES if op not in ("pick", "cross_entropy")]


def _hvp_case(seed):
    prog = draw_program(seed, max_steps=4, ops=SMOOTH)
    v = np.random.default_rng(1).uniform(-1, 1, size=np.shape(prog.inputs[0]))
    return prog, v


# --- convolution and pooling (small shapes) vs torch ----------------------------------------
def draw_conv_case(seed):
    """A random conv/pool layer call: ``(name, graphc fn, torch fn, inputs)``."""
    d = Draw(seed)
    rng = d.rng
    one_d = d.bool()
    nd = 1 if one_d else 2
    kind = d.choice(["conv", "conv", "max_pool", "avg_pool"] + ([] if one_d else ["lp_pool"]))
    k = tuple(d.int(1, 3) for _ in range(nd))
    s = tuple(d.int(1, 2) for _ in range(nd))
    dil = tuple(d.int(1, 2) for _ in range(nd)) if kind == "conv" else (1,) * nd
    pad = tuple(d.int(0, (kk // 2) if kind != "conv" else 2) for kk in k)
    span = tuple(dd * (kk - 1) + 1 for dd, kk in zip(dil, k))
    size = tuple(d.int(max(1, sp - 2 * p), sp + 3) for sp, p in zip(span, pad))
    n, c, f = d.int(1, 2), d.int(1, 3), d.int(1, 3)
    x = rng.uniform(-2, 2, size=(n, c) + size)
    if kind == "lp_pool":
        x = np.abs(x) + 0.5     # x ** p with p = 2 on positive values: smooth
    F1 = (lambda a: a[0]) if one_d else (lambda a: a)   # int-or-pair arguments
    if kind == "conv":
        w = rng.uniform(-1, 1, size=(f, c) + k)
        b = rng.uniform(-1, 1, size=(f,)) if d.bool() else None
        conv = graphc.nn.conv1d if one_d else graphc.nn.conv2d
        tconv = F.conv1d if torch and one_d else (F.conv2d if torch else None)

        def fn(x, w, b):
            return conv(x, w, b, stride=F1(s), padding=F1(pad), dilation=F1(dil))

        def tfn(x, w, b):
            return tconv(x, w, b, stride=s, padding=pad, dilation=dil)
        return f"conv{nd}d k={k} s={s} p={pad} d={dil}", fn, tfn, [x, w, b]
    if kind == "max_pool":
        # well-separated values: no ties inside any window
        x = rng.permutation(x.size).reshape(x.shape) * 0.1
        pool = graphc.nn.max_pool1d if one_d else graphc.nn.max_pool2d
        tpool = (F.max_pool1d if one_d else F.max_pool2d) if torch else None
    elif kind == "avg_pool":
        pool = graphc.nn.avg_pool1d if one_d else graphc.nn.avg_pool2d
        tpool = (F.avg_pool1d if one_d else F.avg_pool2d) if torch else None
    else:
        def fn(x):
            return graphc.nn.lp_pool2d(x, 2, F1(k), F1(s))

        def tfn(x):
            return F.lp_pool2d(x, 2, k, s)
        if any(sz < kk for sz, kk in zip(size, k)):
            size = k
            x = rng.uniform(0.5, 2, size=(n, c) + size)
        return f"lp_pool2d k={k} s={s}", fn, tfn, [x]

    def fn(x):
        return pool(x, F1(k), F1(s), F1(pad))

    def tfn(x):
        return tpool(x, k, s, pad)
    if any(sz + 2 * p < kk for sz, p, kk in zip(size, pad, k)):
        return draw_conv_case(seed + 1)
    return f"{kind}{nd}d k={k} s={s} p={pad}", fn, tfn, [x]


def check_conv(seed):
    name, fn, tfn, xs = draw_conv_case(seed)
    wsum = np.random.default_rng(seed).uniform(0.5, 1.5, size=np.shape(fn(*xs)))
    loss = lambda *a: (fn(*a) * wsum).sum()   # noqa: E731
    eager = fn(*xs)
    compiled = graphc.compile(fn)(*xs)
    assert _close(compiled, eager, 1e-12), f"{name}: compiled value differs from eager"
    argnums = tuple(i for i, a in enumerate(xs) if a is not None)
    grads = graphc.grad(loss, argnums=argnums)(*xs)
    fd = fd_grad_args(loss, xs, argnums, eps=1e-6)
    for i, g, dd in zip(argnums, grads, fd):
        assert _close(g, dd, 1e-6), f"{name}: grad of input {i} vs finite differences"
    if torch is not None:
        ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in xs]
        out = tfn(*ts)
        assert _close(eager, out.detach().numpy(), 1e-12), f"{name}: value differs from torch"
        tg = torch.autograd.grad((out * torch.as_tensor(wsum)).sum(), [ts[i] for i in argnums])
        for i, g, t in zip(argnums, grads, tg):
            assert _close(g, t.numpy(), 1e-10), f"{name}: grad of input {i} differs from torch"


# --- graphc.nn on plain arrays (eager) vs inside a compiled function --------------------------
def draw_nn_call(seed):
    d = Draw(seed)
    rng = d.rng
    nn = graphc.nn
    dtype = d.choice([np.float64, np.float32])
    shape = tuple(d.ints(1, 4, d.int(1, 3)))
    x = rng.uniform(-3, 3, size=shape).astype(dtype)
    axis = d.int(-len(shape), len(shape) - 1)
    n = shape[0]
    calls = {
        "sigmoid": (nn.sigmoid, [x], {}),
        "relu": (nn.relu, [x], {}),
        "leaky_relu": (nn.leaky_relu, [x], {"negative_slope": d.choice([0.01, 0.2])}),
        "elu": (nn.elu, [x], {"alpha": d.choice([1.0, 0.5])}),
        "softplus": (nn.softplus, [x], {}),
        "tanh": (nn.tanh, [x], {}),
        "softmax": (nn.softmax, [x], {"axis": axis}),
        "log_softmax": (nn.log_softmax, [x], {"axis": axis}),
        "logsumexp": (nn.logsumexp, [x], {"axis": axis}),
        "mse": (nn.mse, [x, rng.uniform(-1, 1, size=shape).astype(dtype)], {}),
        "logistic_loss": (nn.logistic_loss, [x, np.sign(rng.uniform(-1, 1, size=shape)).astype(dtype)], {}),
        "flatten": (nn.flatten, [x], {"start_axis": d.int(0, len(shape) - 1)}),
        "dropout": (nn.dropout, [x], {"rate": d.choice([0.0, 0.3, 0.5]), "key": np.int64(d.int(0, 9))}),
    }
    if shape[-1] % 2 == 0:
        calls["maxout"] = (nn.maxout, [x], {"pieces": 2})
    if len(shape) == 2:
        calls["cross_entropy"] = (nn.cross_entropy, [x, rng.integers(0, shape[1], size=n)], {})
        p = rng.uniform(0, 1, size=shape).astype(dtype)
        calls["cross_entropy_p"] = (nn.cross_entropy, [x, p / p.sum(1, keepdims=True)], {})
    name = d.choice(sorted(calls))
    return (name,) + calls[name]


def check_nn_eager(seed):
    name, fn, args, kwargs = draw_nn_call(seed)
    eager = fn(*args, **kwargs)
    compiled = graphc.compile(lambda *a: fn(*a, **kwargs))(*args)
    assert isinstance(eager, (np.ndarray, np.generic)), f"{name}: eager result is {type(eager)}"
    assert np.asarray(eager).dtype == np.asarray(compiled).dtype, \
        f"{name}: eager dtype {np.asarray(eager).dtype} vs compiled {np.asarray(compiled).dtype}"
    tol = 1e-12 if np.asarray(eager).dtype == np.float64 else 1e-5
    assert _close(compiled, eager, tol), f"{name}{kwargs}: eager {eager} vs compiled {compiled}"


# --- the quick profile (make test) --------------------------------------------------------
@quick
@given(SEEDS)
def test_fuzz_values_match_numpy(seed):
    check_values(draw_program(seed))


@quick
@given(SEEDS)
def test_fuzz_float32_values_and_dtypes_match_numpy(seed):
    check_values(draw_program(seed, max_steps=4), dtype=np.float32)


@quick
@given(SEEDS)
def test_fuzz_gradients_match_fd_and_torch(seed):
    check_grads(draw_program(seed))


@settings(quick, max_examples=50)
@given(SEEDS)
def test_fuzz_float32_gradients_stay_float32(seed):
    check_grads_float32(draw_program(seed, max_steps=6))


@settings(quick, max_examples=40)
@given(SEEDS)
def test_fuzz_grad_of_grad_matches_fd(seed):
    check_hvp(*_hvp_case(seed))


@settings(quick, max_examples=30)
@given(SEEDS)
def test_fuzz_conv_and_pool_match_fd_and_torch(seed):
    check_conv(seed)


@quick
@given(SEEDS)
def test_fuzz_nn_eager_matches_compiled(seed):
    check_nn_eager(seed)


# --- the long profile (make fuzz) ------------------------------------------------------------
@pytest.mark.fuzz
@long
@given(SEEDS)
def test_fuzz_long_values(seed):
    check_values(draw_program(seed, max_steps=8))


@pytest.mark.fuzz
@long
@given(SEEDS)
def test_fuzz_long_float32_values(seed):
    check_values(draw_program(seed, max_steps=6), dtype=np.float32)


@pytest.mark.fuzz
@long
@given(SEEDS)
def test_fuzz_long_gradients(seed):
    check_grads(draw_program(seed, max_steps=8))


@pytest.mark.fuzz
@long
@given(SEEDS)
def test_fuzz_long_float32_gradients(seed):
    check_grads_float32(draw_program(seed, max_steps=6))


@pytest.mark.fuzz
@settings(long, max_examples=max(1, LONG // 4))
@given(SEEDS)
def test_fuzz_long_grad_of_grad(seed):
    check_hvp(*_hvp_case(seed))


@pytest.mark.fuzz
@settings(long, max_examples=max(1, LONG // 4))
@given(SEEDS)
def test_fuzz_long_conv_and_pool(seed):
    check_conv(seed)


@pytest.mark.fuzz
@long
@given(SEEDS)
def test_fuzz_long_nn_eager_vs_compiled(seed):
    check_nn_eager(seed)
