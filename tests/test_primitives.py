"""Registry-driven primitive tests.

Every primitive in ``graphc.primitive.REGISTRY`` carries its sample cases in its
record (``samples=``, see ``graphc/ops/_samples.py``; a test fails if one has
none), and each case is checked three ways:

(a) the shape/dtype rule on avals matches what eager evaluation returns, and
    eager evaluation matches the sample's independent NumPy reference;
(b) for differentiable primitives, graphc.grad of ``sum(prim(...) * R)``
    matches central finite differences in float64, for every float input;
(c) the generated code (graphc.compile) agrees with eager evaluation.

A second table checks the NumPy API surface (ufuncs, array functions,
methods, indexing) inside traced functions, for values and gradients.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import graphc
from graphc.ops._samples import Draw, Sample
from graphc.primitive import REGISTRY
from graphc.avals import aval_of

from _fd import fd_grad_args, is_float_leaf

SEED = 20240607
F32 = np.float32
F64 = np.float64

_draw = Draw(np.random.default_rng(SEED))
rnd, pos, away = _draw.rnd, _draw.pos, _draw.away


def samples_of(name) -> list[Sample]:
    """The samples of a registered primitive, drawn from a generator seeded by its name."""
    prim = REGISTRY[name]
    if prim.samples is None:
        return []
    return prim.samples(Draw(np.random.default_rng([SEED, zlib.crc32(name.encode())])))


# {primitive name: its samples}, for every registered primitive
CASES: dict[str, list[Sample]] = {name: samples_of(name) for name in sorted(REGISTRY)}


# --- flattening the table into test ids ------------------------------------------
def _all_cases():
    out = []
    for name in sorted(CASES):
        for i, case in enumerate(CASES[name]):
            out.append(_param(name, i, case))
    return out


def _param(name, i, case):
    return pytest.param(name, case, id=f"{name}-{i}-{case.desc}")


def _float_positions(case):
    return tuple(i for i, a in enumerate(case.args) if is_float_leaf(a))


def _eager(name, case):
    return np.asarray(REGISTRY[name](*case.args, **case.params))


def _grad_cases():
    out = []
    for name in sorted(CASES):
        prim = REGISTRY.get(name)
        if prim is None or not prim.differentiable:
            continue
        for i, case in enumerate(CASES[name]):
            if not case.grad or not _float_positions(case):
                continue
            ref_out = np.asarray(case.ref(*case.args))
            if ref_out.dtype.kind != "f":
                continue
            out.append(_param(name, i, case))
    return out


ALL_CASES = _all_cases()
GRAD_CASES = _grad_cases()


def _is_low_precision(*arrays):
    return any(np.asarray(a).dtype == F32 for a in arrays if not isinstance(a, (int, float)))


# --- coverage of the registry ----------------------------------------------------------
def test_every_primitive_has_samples():
    missing = sorted(name for name in REGISTRY if not CASES[name])
    assert not missing, f"primitives without samples= in their record: {missing}"


def test_every_differentiable_primitive_has_a_gradient_case():
    covered = {p.values[0] for p in GRAD_CASES}
    want = {name for name, prim in REGISTRY.items() if prim.differentiable}
    # sign is differentiable (flat) and covered; comparisons are NOT_DIFFERENTIABLE.
    assert want <= covered, f"differentiable primitives without a gradient case: {want - covered}"


# --- (a) shape rule vs eager vs NumPy ----------------------------------------------------
@pytest.mark.parametrize("name, case", ALL_CASES)
def test_shape_rule_matches_eager_and_numpy(name, case):
    prim = REGISTRY[name]
    avals = [aval_of(a) for a in case.args]
    aval = prim.shape(*avals, **case.params)
    got = _eager(name, case)
    want = np.asarray(case.ref(*case.args))
    assert tuple(aval.shape) == got.shape == want.shape
    assert np.dtype(aval.dtype) == got.dtype == want.dtype
    if want.dtype.kind == "f":
        tol = 1e-6 if _is_low_precision(want) else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


# --- (b) gradient vs central finite differences ----------------------------------------
@pytest.mark.parametrize("name, case", GRAD_CASES)
def test_vjp_matches_finite_differences(name, case):
    prim = REGISTRY[name]
    params = case.params
    out = np.asarray(case.ref(*case.args))
    R = np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype)

    def loss(*xs):
        return (prim(*xs, **params) * R).sum()

    argnums = _float_positions(case)
    grads = graphc.grad(loss, argnums=argnums)(*case.args)
    assert isinstance(grads, tuple) and len(grads) == len(argnums)

    fd_ref = case.fd_ref or case.ref
    R64 = R.astype(F64)
    fd = fd_grad_args(lambda *xs: float((np.asarray(fd_ref(*xs), F64) * R64).sum()),
                      case.args, argnums)
    low = _is_low_precision(out, *case.args)
    rtol, atol = (1e-4, 1e-5) if low else (1e-6, 1e-8)
    for i, g, want in zip(argnums, grads, fd):
        x = case.args[i]
        g = np.asarray(g)
        assert g.shape == np.shape(x), f"grad of input {i}: shape {g.shape} != {np.shape(x)}"
        assert g.dtype == np.asarray(x).dtype, f"grad of input {i}: dtype {g.dtype}"
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol,
                                   err_msg=f"{name}: gradient of input {i}")


# --- (c) generated code vs eager evaluation --------------------------------------------
@pytest.mark.parametrize("name, case", ALL_CASES)
def test_generated_code_matches_eager(name, case):
    prim = REGISTRY[name]
    params = case.params

    def apply(*xs):
        return prim(*xs, **params)

    compiled = graphc.compile(apply)
    got = np.asarray(compiled(*case.args))
    want = _eager(name, case)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    src = compiled.source(*case.args)
    assert "import numpy as np" in src and "def apply(" in src


# --- conventions ---------------------------------------------------------------------
def test_maximum_minimum_ties_split_the_cotangent():
    x = np.array([1.0, 2.0, 3.0, -1.0])
    y = np.array([1.0, 0.0, 3.0, 5.0])   # ties at 0 and 2
    R = np.array([0.3, -1.2, 2.0, 0.7])
    dx, dy = graphc.grad(lambda x, y: (np.maximum(x, y) * R).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dx, [0.15, -1.2, 1.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(dy, [0.15, 0.0, 1.0, 0.7], rtol=1e-15)
    dx, dy = graphc.grad(lambda x, y: (np.minimum(x, y) * R).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dx, [0.15, 0.0, 1.0, 0.7], rtol=1e-15)
    np.testing.assert_allclose(dy, [0.15, -1.2, 1.0, 0.0], rtol=1e-15)
    # the halves add up to the whole cotangent, also across broadcasting
    dx, dy = graphc.grad(lambda x, s: np.maximum(x, s).sum(), argnums=(0, 1))(x, 1.0)
    np.testing.assert_allclose(dx, [0.5, 1.0, 1.0, 0.0])
    assert float(dy) == 0.5 + 1.0


def test_reduce_max_ties_share_the_cotangent():
    x = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, -1.0, 4.0, 4.0]])
    g = graphc.grad(lambda x: (x.max(axis=1) * np.array([2.0, 1.0])).sum())(x)
    np.testing.assert_allclose(g, [[0, 1, 1, 0], [0, 0, 0.5, 0.5]])
    g = graphc.grad(lambda x: np.min(x))(np.array([2.0, -1.0, -1.0, -1.0]))
    np.testing.assert_allclose(g, [0, 1 / 3, 1 / 3, 1 / 3])


# --- the NumPy API surface inside traced functions -----------------------------------------
@dataclass
class ApiCase:
    fn: Callable
    args: tuple
    fd_fn: Callable | None = None     # float64 stand-in for FD
    grad: bool = True


def _rows_scaled(x):
    return np.stack([row * (i + 1.0) for i, row in enumerate(x)], axis=0)


def _shape_driven(x):
    n, m = x.shape
    return x.reshape(m, n) * len(x) + x.ndim


A34, B45, V4 = rnd(3, 4), rnd(4, 5), rnd(4)
API_CASES = {
    "np.exp": ApiCase(lambda x: np.exp(x), (rnd(3, 4),)),
    "np.log": ApiCase(lambda x: np.log(x), (pos(3, 4),)),
    "np.log1p": ApiCase(lambda x: np.log1p(x), (pos(3, 4),)),
    "np.expm1": ApiCase(lambda x: np.expm1(x), (rnd(3, 4),)),
    "np.sqrt": ApiCase(lambda x: np.sqrt(x), (pos(3, 4),)),
    "np.sin+cos+tan": ApiCase(lambda x: np.sin(x) + np.cos(x) * np.tan(0.5 * x), (rnd(3, 4),)),
    "np.tanh": ApiCase(lambda x: np.tanh(x), (rnd(3, 4),)),
    "np.abs": ApiCase(lambda x: np.abs(x), (away(3, 4),)),
    "abs(x)": ApiCase(lambda x: abs(x), (away(3, 4),)),
    "np.sign*x": ApiCase(lambda x: np.sign(x) * x, (away(3, 4),)),
    "x**2": ApiCase(lambda x: x ** 2, (rnd(3, 4),)),
    "x**3": ApiCase(lambda x: x ** 3, (rnd(3, 4),)),
    "x**0.5": ApiCase(lambda x: x ** 0.5, (pos(3, 4),)),
    "x**y": ApiCase(lambda x, y: x ** y, (pos(3, 4), rnd(3, 4))),
    "x**const_array": ApiCase(lambda x: x ** np.array([2.0, 3.0, 0.5, 1.0]), (pos(3, 4),)),
    "x**const_array_of_twos": ApiCase(lambda x: x ** np.array([2.0, 2.0, 2.0, 2.0]), (pos(3, 4),)),
    "2**x": ApiCase(lambda x: 2 ** x, (rnd(3, 4),)),
    "np.square": ApiCase(lambda x: np.square(x), (rnd(3, 4),)),
    "leaky-where": ApiCase(lambda x: np.where(x > 0, x, 0.1 * x), (away(3, 4),)),
    "np.maximum(0,x)": ApiCase(lambda x: np.maximum(0, x), (away(3, 4),)),
    "np.minimum(x,y)": ApiCase(lambda x, y: np.minimum(x, y), (A34 + 0.5 * away(3, 4), A34)),
    "np.clip": ApiCase(lambda x: np.clip(x, -0.5, 0.5),
                       (np.array([[-1.2, -0.3, 0.1, 0.9], [0.45, -0.6, 2.0, -0.05]]),)),
    "arith": ApiCase(lambda x, y, z: -x + y / z - 1.0 / x * 3 - 2.0 * np.pi * y,
                     (away(3, 4), rnd(4), away(3, 1))),
    "x.sum(axis=1,keepdims)": ApiCase(lambda x: x.sum(axis=1, keepdims=True), (rnd(3, 4),)),
    "np.sum(axis=(0,2))": ApiCase(lambda x: np.sum(x, axis=(0, 2)), (rnd(2, 3, 4),)),
    "x.sum()": ApiCase(lambda x: x.sum(), (rnd(2, 3),)),
    "0-d.sum(axis=-1)": ApiCase(lambda x: x.mean().sum(axis=-1, keepdims=True) * x.max(axis=0),
                                (rnd(2, 3),)),
    "0-d.max(axis=0)": ApiCase(lambda x: np.max(x.mean(), axis=0) * x + np.min(x[0, 0], axis=-1),
                               (rnd(2, 3),)),
    "np.mean": ApiCase(lambda x: np.mean(x), (rnd(3, 4),)),
    "np.mean(axis=0)": ApiCase(lambda x: np.mean(x, axis=0), (rnd(3, 4),)),
    "x.mean(axis=(0,2),keepdims)": ApiCase(lambda x: x.mean(axis=(0, 2), keepdims=True),
                                           (rnd(2, 3, 4),)),
    "np.max(axis=1)": ApiCase(lambda x: np.max(x, axis=1), (rnd(3, 4),)),
    "x.max()": ApiCase(lambda x: x.max(), (rnd(3, 4),)),
    "np.min(axis=0)": ApiCase(lambda x: np.min(x, axis=0), (rnd(3, 4),)),
    "x[:,1:3]": ApiCase(lambda x: x[:, 1:3], (rnd(3, 4),)),
    "x[1]": ApiCase(lambda x: x[1], (rnd(3, 4),)),
    "x[::-1]": ApiCase(lambda x: x[::-1], (rnd(3, 4),)),
    "x[...,None]": ApiCase(lambda x: x[..., None], (rnd(3, 4),)),
    "x[None]": ApiCase(lambda x: x[None], (rnd(3, 4),)),
    "x[[0,2,0]]-const": ApiCase(lambda x: x[np.array([0, 2, 0])], (rnd(3, 4),)),
    "x[:,[0,2,0]]-const-list": ApiCase(lambda x: x[:, [0, 2, 0]], (rnd(3, 4),)),
    "x[arange,idx]-traced": ApiCase(lambda x, idx: x[np.arange(3), idx],
                                    (rnd(3, 4), np.array([3, 0, 3]))),
    "x[idx]-traced-repeated": ApiCase(lambda x, idx: x[idx] * 2.0,
                                      (rnd(4, 2), np.array([1, 1, 3, 1]))),
    "np.concatenate": ApiCase(lambda x, y: np.concatenate([x, y, x], axis=1),
                              (rnd(3, 2), rnd(3, 4))),
    "np.concatenate(axis=None)": ApiCase(lambda x, y: np.concatenate([x, y], axis=None),
                                         (rnd(2, 2), rnd(3))),
    "np.stack": ApiCase(lambda x, y: np.stack([x, y], axis=1), (rnd(3, 4), rnd(3, 4))),
    "np.stack(axis=-1)": ApiCase(lambda x, y: np.stack([x, y, x], axis=-1), (rnd(3), rnd(3))),
    "np.squeeze": ApiCase(lambda x: np.squeeze(x), (rnd(3, 1, 4),)),
    "np.squeeze(axis=1)": ApiCase(lambda x: np.squeeze(x, axis=1), (rnd(1, 1, 4),)),
    "np.expand_dims": ApiCase(lambda x: np.expand_dims(x, 1), (rnd(3, 4),)),
    "np.expand_dims(0,2)": ApiCase(lambda x: np.expand_dims(x, (0, 2)), (rnd(3, 4),)),
    "np.dot-2d": ApiCase(lambda x, y: np.dot(x, y), (A34, B45)),
    "np.dot-1d": ApiCase(lambda x, y: np.dot(x, y), (rnd(4), rnd(4))),
    "np.dot-scalar": ApiCase(lambda x: np.dot(x, 2.5), (rnd(3),)),
    "x.dot": ApiCase(lambda x, v: x.dot(v), (A34, V4)),
    "x@y": ApiCase(lambda x, y: x @ y, (rnd(2, 3, 4), rnd(4, 5))),
    "np.matmul": ApiCase(lambda x, y: np.matmul(x, y), (rnd(4), rnd(2, 4, 3))),
    "np.tensordot-axes2": ApiCase(lambda a, b: np.tensordot(a, b), (rnd(2, 3, 4), rnd(3, 4, 2))),
    "np.tensordot-axes1": ApiCase(lambda a, b: np.tensordot(a, b, axes=1), (rnd(2, 3), rnd(3, 4))),
    "np.tensordot-pairs": ApiCase(lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])),
                                  (rnd(2, 3, 4), rnd(4, 5, 2))),
    "x.T": ApiCase(lambda x: x.T, (rnd(3, 4),)),
    "np.transpose": ApiCase(lambda x: np.transpose(x, (1, 2, 0)), (rnd(2, 3, 4),)),
    "x.transpose()": ApiCase(lambda x: x.transpose(), (rnd(2, 3, 4),)),
    "x.reshape(-1)": ApiCase(lambda x: x.reshape(-1), (rnd(3, 4),)),
    "x.reshape(2,-1)": ApiCase(lambda x: x.reshape(2, -1), (rnd(3, 4),)),
    "np.reshape": ApiCase(lambda x: np.reshape(x, (4, 3)), (rnd(3, 4),)),
    "np.broadcast_to": ApiCase(lambda v: np.broadcast_to(v, (3, 4)) * 1.5, (rnd(4),)),
    "x.astype(f32)": ApiCase(lambda x: x.astype(np.float32), (rnd(3, 4),),
                             fd_fn=lambda x: np.asarray(x, np.float64)),
    "x32.astype(f64)": ApiCase(lambda x: x.astype(np.float64) * 2.0, (rnd(3, 4, dtype=F32),)),
    "np.sum(x*y)": ApiCase(lambda x, y: np.sum(x * y), (rnd(3, 4), rnd(3, 4))),
    "for-row-in-x": ApiCase(_rows_scaled, (rnd(3, 4),)),
    "len-shape-ndim": ApiCase(_shape_driven, (rnd(3, 4),)),
    "x+=y": ApiCase(lambda x, y: _iadd(x, y), (rnd(3, 4), rnd(4))),
    "comparison-out": ApiCase(lambda x, y: (x > y) & (x < 1.0), (rnd(3, 4), rnd(4)), grad=False),
}


def _iadd(x, y):
    x = x * 1.5
    x += y
    return x


def _api_grad_ids():
    return [pytest.param(k, id=k) for k, c in API_CASES.items() if c.grad]


@pytest.mark.parametrize("key", list(API_CASES), ids=list(API_CASES))
def test_numpy_api_value(key):
    case = API_CASES[key]
    compiled = graphc.compile(case.fn)
    got = np.asarray(compiled(*case.args))
    want = np.asarray(case.fn(*case.args))     # plain NumPy, the reference
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    if want.dtype.kind == "f":
        tol = 1e-6 if want.dtype == F32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("key", _api_grad_ids())
def test_numpy_api_gradient(key):
    case = API_CASES[key]
    out = np.asarray(case.fn(*case.args))
    R = np.random.default_rng(11).standard_normal(out.shape).astype(out.dtype)
    argnums = tuple(i for i, a in enumerate(case.args) if is_float_leaf(a))

    def loss(*xs):
        return (case.fn(*xs) * R).sum()

    value, grads = graphc.value_and_grad(loss, argnums=argnums)(*case.args)
    np.testing.assert_allclose(value, loss(*case.args), rtol=1e-6 if out.dtype == F32 else 1e-12)
    fd_fn = case.fd_fn or case.fn
    R64 = R.astype(F64)
    fd = fd_grad_args(lambda *xs: float((np.asarray(fd_fn(*xs), F64) * R64).sum()),
                      case.args, argnums)
    low = _is_low_precision(out, *case.args)
    rtol, atol = (1e-4, 1e-5) if low else (1e-6, 1e-8)
    for i, g, want in zip(argnums, grads, fd):
        g = np.asarray(g)
        assert g.shape == np.shape(case.args[i]) and g.dtype == case.args[i].dtype
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol, err_msg=f"input {i}")


# --- gradient declarations --------------------------------------------------------------
def test_every_primitive_declares_its_gradient():
    """A record gives a VJP rule or says NOT_DIFFERENTIABLE; None is a missing rule."""
    undeclared = sorted(name for name, prim in REGISTRY.items() if prim.vjp is None)
    assert not undeclared, f"primitives with neither a vjp nor vjp=NOT_DIFFERENTIABLE: {undeclared}"


def test_missing_gradient_rule_is_a_grad_error():
    from graphc.primitive import primitive
    prim = primitive(name="_test_no_rule", shape=lambda x: x, numpy="{0}", label="no rule")
    try:
        def f(x):
            return np.sum(prim(x))                   # this line is named in the error
        line = f.__code__.co_firstlineno + 1
        with pytest.raises(graphc.GradError, match="_test_no_rule") as info:
            graphc.grad(f)(np.ones(3))
        assert info.value.where.endswith(f"test_primitives.py:{line}"), info.value.where
    finally:
        del REGISTRY["_test_no_rule"]


def test_adding_a_primitive_docs_show_a_real_record():
    """docs/architecture.md's example record is, verbatim, the one graphc registers."""
    import inspect
    import pathlib
    import re
    from graphc.ops import activation
    text = (pathlib.Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    block = re.search(r"## Adding a primitive.*?```python\n(.*?)```", text, re.S).group(1)
    assert block in inspect.getsource(activation)


# --- (d) second derivatives: the VJP rule is itself differentiable --------------------------
def _second_order_cases():
    """One float64 gradient case per differentiable primitive (its first)."""
    out, seen = [], set()
    for p in GRAD_CASES:
        name, case = p.values
        if name in seen or any(np.asarray(case.args[i]).dtype != F64
                               for i in _float_positions(case)):
            continue
        seen.add(name)
        out.append(p)
    return out


@pytest.mark.parametrize("name, case", _second_order_cases())
def test_second_derivative_matches_finite_differences(name, case):
    """grad of <grad(loss), S> against central differences of graphc's own first gradient
    (itself checked against finite differences above), so every rule is differentiable again."""
    prim = REGISTRY[name]
    out = np.asarray(case.ref(*case.args))
    rng = np.random.default_rng(11)
    R = rng.standard_normal(out.shape)
    argnums = _float_positions(case)
    S = [rng.standard_normal(np.shape(case.args[i])) for i in argnums]

    def loss(*xs):
        return (prim(*xs, **case.params) * R).sum()

    first = graphc.grad(loss, argnums=argnums)

    def inner(*xs):
        return sum((g * s).sum() for g, s in zip(first(*xs), S))

    got = graphc.grad(inner, argnums=argnums)(*case.args)
    want = fd_grad_args(lambda *xs: float(inner(*xs)), case.args, argnums, eps=1e-5)
    for i, g, w in zip(argnums, got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: second derivative, input {i}")


def test_every_differentiable_primitive_has_a_second_order_case():
    covered = {p.values[0] for p in _second_order_cases()}
    want = {name for name, prim in REGISTRY.items() if prim.differentiable}
    assert want <= covered, f"no float64 gradient sample for a second derivative: {want - covered}"
