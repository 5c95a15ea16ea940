"""Sample calls of the reductions in :mod:`graphc.ops.statistics` and :mod:`graphc.ops.norms`
(``tests/test_numpy_functions.py`` runs each against NumPy itself)."""
from __future__ import annotations

import numpy as np

from ._numpy_table import Call

F32 = np.float32


def _mask(d, *shape):
    m = d.bools(*shape)
    m[..., 0] = True      # no empty row: the reductions along axis 1 see something
    return m


def sum_samples(d):
    x = d.rnd(3, 4)
    return [Call((x,), {}, "f64(3,4)"), Call((x, 1), {}, "axis-positional"),
            Call((x,), {"axis": -1, "keepdims": True}, "axis-1-keepdims"),
            Call((d.rnd(2, 3, 4),), {"axis": (0, 2)}, "axis-tuple"),
            Call((x, 0, None, None, True), {}, "numpy-positional-order"),
            Call((d.rnd(3, 4, dtype=F32),), {"axis": 0}, "f32"),
            Call((x,), {"dtype": np.float32}, "dtype-f32", grad=False),
            Call((d.ints(3, 4),), {"axis": 1}, "int"),
            Call((d.ints(3, 4).astype(np.int8) * 40,), {}, "int8-platform-int"),
            Call((d.ints(3, 4).astype(np.uint8) * 60,), {"dtype": np.uint8}, "uint8-wraps"),
            Call((d.bools(3, 4),), {"axis": 0}, "bool"),
            Call((x,), {"initial": 1.5}, "initial"),
            Call((x,), {"axis": 1, "where": _mask(d, 3, 4)}, "where"),
            Call((x,), {"axis": 0, "where": _mask(d, 4), "initial": -2.0}, "where-bcast-initial"),
            Call((np.asarray(d.rnd(1)[0]),), {}, "0-d"), Call((d.rnd(1, 3),), {"axis": 0}, "size-1")]


def mean_samples(d):
    x = d.rnd(3, 4)
    return [Call((x,), {}, "f64"), Call((x, 1), {}, "axis"),
            Call((x,), {"axis": (0, 1), "keepdims": True}, "tuple-keepdims"),
            Call((x, -1, np.float32), {}, "dtype-positional", grad=False),
            Call((d.rnd(3, 4, dtype=F32),), {"axis": 1}, "f32"),
            Call((d.ints(3, 4),), {"axis": 0}, "int-to-f64"),
            Call((d.bools(5),), {}, "bool"),
            Call((x,), {"axis": 1, "where": _mask(d, 3, 4)}, "where"),
            Call((x,), {"where": _mask(d, 4), "keepdims": True}, "where-bcast"),
            Call((np.asarray(d.rnd(1)[0]),), {}, "0-d")]


def extreme_samples(np_fn):
    def samples(d):
        x = d.rnd(3, 4)
        return [Call((x,), {}, "f64"), Call((x, 1), {}, "axis"),
                Call((x,), {"axis": -1, "keepdims": True}, "keepdims"),
                Call((d.rnd(2, 3, 4),), {"axis": (0, 2)}, "axis-tuple"),
                Call((d.rnd(5, dtype=F32),), {}, "f32"), Call((d.ints(3, 4),), {"axis": 0}, "int"),
                Call((x,), {"initial": 0.25, "axis": 0}, "initial"),
                Call((x,), {"axis": 1, "initial": -5.0 if np_fn is np.max else 5.0,
                            "where": _mask(d, 3, 4)}, "where-initial"),
                Call((np.zeros((2, 0)),), {"axis": 1, "initial": 3.0}, "empty-initial"),
                Call((d.ints(4, 2),), {"axis": 0, "where": np.array([True, False]),
                                       "initial": 2}, "int-where"),
                Call((np.asarray(d.rnd(1)[0]),), {}, "0-d")]
    return samples


def prod_samples(d):
    x = d.uniform(3, 4, lo=0.5, hi=1.5)
    z = x.copy()
    z[1, 2] = 0.0
    z[2, :2] = 0.0
    return [Call((x,), {}, "f64"), Call((x, 1), {}, "axis"),
            Call((z,), {"axis": 1}, "zeros-exact-gradient"), Call((z,), {}, "zeros-all"),
            Call((d.rnd(2, 3, 5),), {"axis": (0, 2), "keepdims": True}, "tuple-keepdims"),
            Call((d.rnd(4, dtype=F32),), {}, "f32"),
            Call((d.ints(3, 4).astype(np.int16),), {"axis": 0}, "int16-platform-int"),
            Call((d.bools(3, 4),), {"axis": 0}, "bool"),
            Call((x,), {"initial": 2.0, "where": _mask(d, 3, 4)}, "where-initial"),
            Call((np.zeros((0, 3)),), {"axis": 0}, "empty"),
            Call((x,), {"dtype": np.float32}, "dtype", grad=False)]


def var_samples(d):
    x = d.rnd(3, 4)
    return [Call((x,), {}, "f64"), Call((x, 1), {}, "axis"),
            Call((x,), {"axis": 0, "ddof": 1}, "ddof"), Call((x, None, None, None, 1), {}, "ddof-pos"),
            Call((x,), {"axis": -1, "keepdims": True, "correction": 1}, "correction"),
            Call((d.rnd(2, 3, 4),), {"axis": (0, 2)}, "axis-tuple"),
            Call((d.rnd(3, 4, dtype=F32),), {"axis": 1}, "f32"),
            Call((d.ints(3, 4),), {"axis": 1}, "int-to-f64"),
            Call((x,), {"dtype": np.float32}, "dtype", grad=False),
            Call((x,), {"axis": 1, "where": _mask(d, 3, 4)}, "where"),
            Call((np.full((2, 3), 1.5),), {"axis": 1}, "zero-variance"),
            Call((np.asarray(d.rnd(1)[0]),), {}, "0-d")]


def var_method_samples(d):
    return [c for c in var_samples(d) if "correction" not in c.kwargs]


def average_samples(d):
    x = d.rnd(3, 4)
    return [Call((x,), {}, "unweighted"), Call((x, 1), {}, "axis"),
            Call((x,), {"weights": d.pos(3, 4)}, "weights-same-shape"),
            Call((x, 1, d.pos(4)), {}, "weights-along-axis"),
            Call((d.rnd(2, 3, 4),), {"axis": (2, 0), "weights": d.pos(4, 2)}, "weights-2-axes"),
            Call((x,), {"axis": 0, "weights": d.pos(3), "returned": True}, "returned",
                 grad=False),
            Call((x,), {"returned": True}, "returned-unweighted", grad=False),
            Call((x,), {"axis": 1, "weights": d.pos(4), "keepdims": True}, "keepdims"),
            Call((d.ints(3, 4),), {"axis": 0, "weights": d.pos(3, dtype=F32)}, "int-f32-weights"),
            Call((d.rnd(3, 4, dtype=F32),), {"axis": 1}, "f32")]


def any_samples(np_fn):
    def samples(d):
        x = d.rnd(3, 4)
        x[0] = 0.0
        return [Call((x,), {}, "f64"), Call((x, 1), {}, "axis"),
                Call((d.bools(3, 4),), {"axis": 0, "keepdims": True}, "bool-keepdims"),
                Call((d.ints(2, 3, hi=2),), {"axis": (0, 1)}, "int-tuple"),
                Call((np.array([np.nan, 0.0]),), {}, "nan-is-true"),
                Call((np.zeros((2, 0)),), {"axis": 1}, "empty"),
                Call((x,), {"axis": 1, "where": _mask(d, 3, 4)}, "where")]
    return samples


def arg_samples(np_fn):
    def samples(d):
        ties = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, -1.0, 2.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
        return [Call((ties,), {}, "ties-flat"), Call((ties, 1), {}, "ties-axis1"),
                Call((ties,), {"axis": 0, "keepdims": True}, "keepdims"),
                Call((ties,), {"keepdims": True}, "flat-keepdims"),
                Call((d.rnd(2, 3, 4),), {"axis": -1}, "axis-1"),
                Call((d.ints(3, 4),), {"axis": 1}, "int"),
                Call((np.array([3, -2**63, 2**63 - 1, -2**63]),), {}, "int-extremes"),
                Call((np.array([2, 0, 255, 0], np.uint8),), {}, "uint8"),
                Call((np.array([1.0, np.nan, 0.0, np.nan]),), {}, "nan-first"),
                Call((d.rnd(5, dtype=F32),), {}, "f32")]
    return samples


def nan_samples(np_fn):
    def samples(d):
        x = d.rnd(3, 4)
        x[0, 1] = x[2, 3] = np.nan
        allnan = np.array([[np.nan, np.nan], [1.0, np.nan]])
        return [Call((x,), {}, "f64"), Call((x, 1), {}, "axis"),
                Call((x,), {"axis": 0, "keepdims": True}, "keepdims"),
                Call((x.astype(F32),), {"axis": 1}, "f32"),
                Call((d.ints(3, 4),), {"axis": 0}, "int"),
                Call((allnan,), {"axis": 1} if np_fn is np.nansum else {"axis": 0}, "nan-rows",
                     grad=np_fn is np.nansum),
                Call((x,), {"axis": 1, "where": _mask(d, 3, 4)}, "where"),
                Call((x, None, np.float32), {}, "dtype", grad=False)]
    return samples


def norm_samples(d):
    v, m = d.rnd(5), d.rnd(3, 4)
    out = [Call((v,), {}, "vector"), Call((m,), {}, "matrix-default"),
           Call((d.rnd(2, 3, 4),), {}, "3d-flat")]
    for o in (None, 1, 2, np.inf, -np.inf, 0, 3, 0.5, -1.5):
        out.append(Call((v + np.sign(v),), {"ord": o}, f"vector-ord-{o}", grad=o != 0))
    for o in ("fro", 1, -1, np.inf, -np.inf):
        out.append(Call((m,), {"ord": o}, f"matrix-ord-{o}"))
    out += [Call((m, None, 1), {}, "axis-1-positional"),
            Call((m,), {"axis": 0, "keepdims": True}, "axis0-keepdims"),
            Call((d.rnd(2, 3, 4),), {"ord": 1, "axis": (2, 0)}, "matrix-axes-2-0"),
            Call((d.rnd(2, 3, 4),), {"ord": np.inf, "axis": (0, 1), "keepdims": True},
                 "matrix-inf-keepdims"),
            Call((m,), {"keepdims": True}, "keepdims"),
            Call((d.rnd(4, dtype=F32),), {}, "f32"), Call((d.ints(3, 4),), {}, "int"),
            Call((np.zeros(3),), {}, "zero-vector", grad=False)]
    return out
