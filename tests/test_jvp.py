"""Forward mode: every primitive's JVP rule, graphc.jvp and graphc.vjp.

Registry-driven like tests/test_primitives.py: for every differentiable
primitive and each of its samples (the record's ``samples=``), the JVP along a
random tangent is checked against central finite differences in float64, and
against the VJP: ``<u, J v>`` computed forward (``graphc.jvp``) and backward
(``graphc.vjp``) agree to 1e-10 for float64 samples.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import graphc
from graphc.primitive import REGISTRY

from _fd import is_float_leaf, rel_err
from test_primitives import CASES, _param

F64 = np.float64


def _jvp_cases():
    out = []
    for name in sorted(CASES):
        prim = REGISTRY.get(name)
        if prim is None or not prim.differentiable:
            continue
        for i, case in enumerate(CASES[name]):
            if not case.grad or not any(is_float_leaf(a) for a in case.args):
                continue
            if np.asarray(case.ref(*case.args)).dtype.kind != "f":
                continue
            out.append(_param(name, i, case))
    return out


JVP_CASES = _jvp_cases()


def _low(*xs):
    return any(np.asarray(x).dtype == np.float32 for x in xs if not isinstance(x, float))


def _split(case):
    """``(positions of float args, apply(*floats))``: the other args stay fixed."""
    pos = [i for i, a in enumerate(case.args) if is_float_leaf(a)]
    prim = REGISTRY[case_name(case)]

    def apply(*floats):
        full = list(case.args)
        for i, v in zip(pos, floats):
            full[i] = v
        return prim(*full, **case.params)
    return pos, apply


def case_name(case):
    return case._name


def _direction(x, rng):
    if isinstance(x, float):
        return float(rng.standard_normal())
    x = np.asarray(x)
    return rng.standard_normal(x.shape).astype(x.dtype)


def _prepare(name, case):
    case._name = name
    pos, apply = _split(case)
    rng = np.random.default_rng([11, zlib.crc32(name.encode())])
    primals = tuple(case.args[i] for i in pos)
    tangents = tuple(_direction(x, rng) for x in primals)
    return pos, apply, primals, tangents, rng


def test_every_differentiable_primitive_has_a_jvp_rule():
    missing = sorted(n for n, p in REGISTRY.items() if p.differentiable and not callable(p.jvp))
    assert not missing, f"differentiable primitives without jvp= in their record: {missing}"


def test_every_differentiable_primitive_has_a_jvp_case():
    covered = {p.values[0] for p in JVP_CASES}
    want = {n for n, p in REGISTRY.items() if p.differentiable}
    assert want <= covered, f"without a JVP case: {sorted(want - covered)}"


@pytest.mark.parametrize("name, case", JVP_CASES)
def test_jvp_matches_finite_differences(name, case):
    pos, apply, primals, tangents, _ = _prepare(name, case)
    out, dot = graphc.jvp(apply, primals, tangents)
    want_out = np.asarray(case.ref(*case.args))
    dot = np.asarray(dot)
    assert dot.shape == want_out.shape and dot.dtype == want_out.dtype
    fd_ref = case.fd_ref or case.ref
    eps = 1e-6

    def at(s):
        full = list(case.args)
        for i, x, v in zip(pos, primals, tangents):
            full[i] = (np.asarray(x, F64) + s * np.asarray(v, F64)) if not isinstance(x, float) \
                else x + s * v
        return np.asarray(fd_ref(*full), F64)
    fd = (at(eps) - at(-eps)) / (2 * eps)
    low = _low(want_out, *case.args)
    rtol, atol = (1e-4, 1e-4) if low else (1e-6, 1e-8)
    np.testing.assert_allclose(dot, fd, rtol=rtol, atol=atol, err_msg=f"{name}: JVP vs FD")


@pytest.mark.parametrize("name, case", JVP_CASES)
def test_jvp_agrees_with_vjp(name, case):
    """<u, J v> forward and <J^T u, v> backward."""
    pos, apply, primals, tangents, rng = _prepare(name, case)
    out, dot = graphc.jvp(apply, primals, tangents)
    out_v, vjp_fn = graphc.vjp(apply, *primals)
    u = rng.standard_normal(np.shape(out)).astype(np.asarray(out).dtype)
    if isinstance(out_v, float):
        u = float(u)
    cts = vjp_fn(u)
    assert isinstance(cts, tuple) and len(cts) == len(primals)
    forward = float(np.sum(np.asarray(u, F64) * np.asarray(dot, F64)))
    backward = sum(float(np.sum(np.asarray(c, F64) * np.asarray(v, F64)))
                   for c, v in zip(cts, tangents))
    tol = 1e-4 if _low(out, *primals) else 1e-10
    scale = max(1.0, abs(forward), abs(backward))
    assert abs(forward - backward) <= tol * scale, (name, forward, backward)
