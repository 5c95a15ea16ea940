"""Sample inputs for a primitive's record (``samples=``), from which the test-suite
checks every registered primitive: its shape rule against eager evaluation and an
independent NumPy reference, its VJP against finite differences, its generated
code against eager evaluation, and its VJP against SymPy.

A record's ``samples`` is a callable ``(draw: Draw) -> list[Sample]``; ``Draw``
hands out random arrays from one seeded generator, so samples are reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

F32 = np.float32
F64 = np.float64


@dataclass
class Sample:
    """One call of a primitive, with what it should give.

    Attributes
    ----------
    args : tuple
        NumPy arrays and NumPy/Python scalars (Python ints are static).
    params : dict
        The primitive's static parameters.
    ref : callable or None
        An independent NumPy reference of ``prim(*args, **params)``.
    desc : str
        Short text for the test id.
    fd_ref : callable or None
        A float64 stand-in for finite differences (e.g. for ``astype`` to float32).
    grad : bool
        False: value checks only (e.g. ``-inf`` padding, infinite values).
    proof : bool
        The case the SymPy proof of the VJP uses (else the smallest one).
    """

    args: tuple
    params: dict
    ref: Callable | None
    desc: str = ""
    fd_ref: Callable | None = None
    grad: bool = True
    proof: bool = False


class Draw:
    """Random sample arrays from one generator (``draw.rnd(3, 4)``)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def rnd(self, *shape, dtype=F64):
        return self.rng.standard_normal(shape).astype(dtype)

    def pos(self, *shape, dtype=F64, lo=0.5, hi=2.0):
        return self.rng.uniform(lo, hi, shape).astype(dtype)

    def uniform(self, *shape, dtype=F64, lo=-1.0, hi=1.0):
        return self.rng.uniform(lo, hi, shape).astype(dtype)

    def away(self, *shape, dtype=F64, gap=0.2):
        """Random values at least ``gap`` away from zero (for abs, sign, kinks)."""
        mag = self.rng.uniform(gap, 1.5, shape)
        sgn = np.where(self.rng.random(shape) < 0.5, -1.0, 1.0)
        return (mag * sgn).astype(dtype)

    def ints(self, *shape, hi=5):
        return self.rng.integers(0, hi, shape).astype(np.int64)

    def bools(self, *shape):
        return self.rng.random(shape) < 0.5


# --- shared sample sets ------------------------------------------------------------------
def unary(np_fn, gen="rnd"):
    """Samples of an elementwise unary op; ``gen`` names a :class:`Draw` method."""
    def samples(d):
        g = getattr(d, gen)
        return [Sample((g(3, 4),), {}, np_fn, "f64(3,4)"),
                Sample((g(5, dtype=F32),), {}, np_fn, "f32(5)"),
                Sample((np.asarray(g(1)[0]),), {}, np_fn, "f64()")]
    return samples


def binary(np_fn, gx="rnd", gy="rnd"):
    """Samples of an elementwise binary op: broadcasting, float32, NEP 50 scalars."""
    def samples(d):
        x, y = getattr(d, gx), getattr(d, gy)
        return [Sample((x(3, 4), y(3, 4)), {}, np_fn, "same-shape"),
                Sample((x(3, 4), y(4)), {}, np_fn, "bcast-(3,4)-(4,)"),
                Sample((x(2, 1, 4), y(3, 1)), {}, np_fn, "bcast-(2,1,4)-(3,1)"),
                Sample((x(), y(3)), {}, np_fn, "bcast-()-(3,)"),
                Sample((x(3, dtype=F32), y(3, dtype=F32)), {}, np_fn, "f32"),
                Sample((x(3, dtype=F32), float(y(1)[0])), {}, np_fn, "f32-pyfloat(NEP50)"),
                Sample((x(3, dtype=F32), y(3)), {}, np_fn, "f32-f64-promote")]
    return samples


def compare(np_fn):
    """Samples of a comparison: ties, broadcasting, integers, a Python float."""
    def samples(d):
        x = np.array([1.0, 2.0, 3.0, -4.0])
        y = np.array([1.0, 0.5, 3.0, 4.0])       # ties at 0 and 2
        return [Sample((x, y), {}, np_fn, "ties"),
                Sample((d.rnd(3, 4), d.rnd(4)), {}, np_fn, "bcast"),
                Sample((d.ints(3, 4), np.array([1, 2, 3, 4])), {}, np_fn, "int"),
                Sample((d.rnd(3, dtype=F32), 0.0), {}, np_fn, "f32-pyfloat")]
    return samples


def identity_like(fd_ref=None, f32_shape=(3,)):
    """Samples of an op that returns its input's values (identity, contiguous, stop_gradient)."""
    def samples(d):
        return [Sample((d.rnd(3, 4),), {}, lambda x: x, "f64", fd_ref=fd_ref),
                Sample((d.rnd(*f32_shape, dtype=F32),), {}, lambda x: x, "f32", fd_ref=fd_ref)]
    return samples


# --- index keys (the documented static ``spec`` format of graphc.ops.index) --------------
def index_spec(key):
    """``(spec, arrays)`` for a NumPy index key, written out independently of graphc."""
    if not isinstance(key, tuple):
        key = (key,)
    spec, arrays = [], []
    for k in key:
        if isinstance(k, slice):
            spec.append(("slice", k.start, k.stop, k.step))
        elif k is None:
            spec.append(("none",))
        elif k is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(k, int):
            spec.append(("int", k))
        else:
            spec.append(("array", len(arrays)))
            arrays.append(np.asarray(k, dtype=np.int64))
    return tuple(spec), arrays


def with_arrays(key, arrays):
    """``key`` with its array parts replaced by ``arrays`` (in order)."""
    if not isinstance(key, tuple):
        key = (key,)
    it = iter(arrays)
    return tuple(next(it) if isinstance(k, (np.ndarray, list)) else k for k in key)
