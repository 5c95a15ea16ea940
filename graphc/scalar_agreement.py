"""Which ops may run on Python floats, measured on this machine.

The Python-float body of a generated function (:mod:`graphc.codegen_scalar`) must give
the bits NumPy's body gives.  An op's record names its form on floats (``scalar``: Python
arithmetic and the ``math`` module); whether that form gives NumPy's float64 result bit
for bit depends on the CPU and the NumPy build (NumPy's own SIMD ``exp``, ``log``, ``tanh``
on AVX-512 or AVX2 can differ from the C library's in the last bit; so can Python's own
``math.hypot``).  This module measures it, once per process, on random inputs:

- :func:`agrees`: the record's ``scalar`` form against NumPy's float64 scalar code;
- :func:`numpy_is_quiet`: NumPy's own function called on the float (:func:`numpy_form`),
  inside the record's quiet range (``scalar_quiet``), sets no flag but underflow and gives
  NumPy's bits;
- :func:`agrees_on_arrays`: the chosen form also against NumPy's array code, which the
  NumPy body runs where an argument is a 0-d array (:func:`makes_array`: ``np.where``'s
  result);
- :func:`scalar_form`: the form the body uses, or None (NumPy's code only).

Examples
--------
>>> from graphc.scalar_agreement import scalar_form
>>> scalar_form("add")
'{0} + {1}'
"""
from __future__ import annotations

import functools
import math
import random
import re

import numpy as np

from .primitive import REGISTRY, Aval

__all__ = ["agrees", "scalar_ops", "numpy_form", "numpy_is_quiet", "scalar_form",
           "makes_array", "agrees_on_arrays", "SAMPLES"]

_F64 = np.dtype("float64")
#: Inputs per op on which a form and NumPy must agree bit for bit.
SAMPLES = 600


def _fn(tmpl, n, module_name, module):
    names = "abc"[:n]
    return eval(f"lambda {', '.join(names)}: {tmpl.format(*names)}", {module_name: module})


def _draw(rng, kind):
    if kind == "b":
        return rng.random() < 0.5
    r = rng.random()
    if r < 0.3:
        return rng.uniform(-1.0, 1.0)
    if r < 0.5:
        return float(rng.choice([0.0, -0.0, 0.5, 1.0, -1.0, 2.0, 3.0, -2.0, 10.0]))
    return math.copysign(10.0 ** rng.uniform(-12.0, 3.0), rng.random() - 0.5)


def _draws(rng, kinds, samples):
    """``samples`` argument tuples drawn one argument at a time (wide ranges, special
    values), then three times as many whose float arguments share one scale: where
    ``math.hypot`` and ``np.hypot`` differ (0.7 % of pairs in [-2, 2], none when one
    argument is far larger than the other)."""
    out = [tuple(_draw(rng, k) for k in kinds) for _ in range(samples)]
    for _ in range(3 * samples):
        scale = 10.0 ** rng.uniform(-6.0, 6.0)
        out.append(tuple(_draw(rng, k) if k == "b" else rng.uniform(-scale, scale)
                         for k in kinds))
    return out


def _same(a, b):
    if isinstance(a, bool) or isinstance(b, (bool, np.bool_)):
        return bool(a) == bool(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, float(b))


_BOOL_ARGS = {"where": "bff", "logical_not": "b"}


def _numpy_text(prim, kinds):
    """The op's NumPy emission on 0-d arguments ``a``, ``b``, ``c`` of ``kinds``."""
    avals = [Aval((), np.dtype(bool) if k == "b" else _F64) for k in kinds]
    names = list("abc"[:len(kinds)])
    return prim.emit(names, "out", avals, Aval((), _F64), {}, names)


@functools.cache
def agrees(op: str, samples: int = SAMPLES) -> bool:
    """``op``'s scalar form gives NumPy's float64 scalar result bit for bit on
    ``4 * samples`` random inputs (:func:`_draws`) where both are finite (once per
    process)."""
    prim = REGISTRY[op]
    n = len(set(re.findall(r"\{(\d)\}", prim.scalar)))
    kinds = _BOOL_ARGS.get(op, "f" * n)
    try:
        mine = _fn(prim.scalar, n, "math", math)
        numpy_ = eval(f"lambda {', '.join('abc'[:n])}: {_numpy_text(prim, kinds)}", {"np": np})
    except (AttributeError, SyntaxError, TypeError):
        return False
    rng = random.Random(op)
    f64, b_ = np.float64, np.bool_
    with np.errstate(all="ignore"):
        for args in _draws(rng, kinds, samples):
            try:
                a = mine(*args)
            except (ArithmeticError, ValueError):
                continue
            except AttributeError:          # math.cbrt before Python 3.11
                return False
            b = numpy_(*[f64(x) if k == "f" else b_(x) for x, k in zip(args, kinds)])
            if a == b and a:
                continue                    # (the common case; zeros: their signs below)
            if isinstance(a, float) and not (math.isfinite(a) and np.isfinite(b)):
                continue
            if not _same(a, b):
                return False
    return True


def scalar_ops() -> list:
    """The ops with a scalar form that agrees with NumPy here (docs, tests)."""
    return [name for name, p in REGISTRY.items() if p.scalar is not None and agrees(name)]


#: Beyond the random draws: arguments at the edges of the records' quiet ranges.
_EDGES = (708.999, -708.999, 709.0, -745.5, 1022.999, 1e307, -1e307, 1.0, -1.0, 0.9999999,
          -0.9999999, 1.0000001, 5e-324, -5e-324, 2.2250738585072014e-308, 0.0, -0.0)


def numpy_form(prim) -> str:
    """The op's scalar code calling NumPy's own function on Python floats, inside the
    record's quiet range (``scalar_quiet``); outside it the NumPy body runs."""
    return f"float({prim.numpy}) if {prim.scalar_quiet} else _numpy_only()"


@functools.cache
def numpy_is_quiet(op: str, samples: int = SAMPLES) -> bool:
    """Inside ``op``'s quiet range, NumPy's function on Python floats sets no flag but
    underflow and gives the bits of the NumPy body's float64 scalars (once per process)."""
    prim = REGISTRY[op]
    if prim.scalar_quiet is None or not isinstance(prim.numpy, str) or op in _BOOL_ARGS:
        return False
    n = len(set(re.findall(r"\{(\d)\}", prim.numpy)))
    try:
        mine = _fn(numpy_form(prim), n, "np", np)
        inside = _fn(prim.scalar_quiet, n, "np", np)
        numpy_ = eval(f"lambda {', '.join('abc'[:n])}: {_numpy_text(prim, 'f' * n)}", {"np": np})
    except (AttributeError, SyntaxError, TypeError):
        return False
    rng = random.Random("quiet " + op)
    draws = _draws(rng, "f" * n, samples)
    draws += [tuple(rng.choice(_EDGES) for _ in range(n)) for _ in range(samples // 4)]
    with np.errstate(all="raise", under="ignore"):
        for args in draws:
            if not inside(*args):
                continue
            try:
                a = mine(*args)
                b = numpy_(*[np.float64(x) for x in args])
            except FloatingPointError:
                return False
            if not (_same(a, b) or math.isnan(a) and np.isnan(b)):
                return False
    return True


def scalar_form(op: str) -> str | None:
    """The template ``op`` takes in the Python-float body on this machine: the record's
    ``scalar`` where it gives NumPy's bits, else NumPy's own function on the float inside
    the record's quiet range (:func:`numpy_form`), else None (NumPy's code only)."""
    prim = REGISTRY[op]
    if prim.scalar is None:
        return None
    if agrees(op):
        return prim.scalar
    return numpy_form(prim) if numpy_is_quiet(op) else None


@functools.cache
def makes_array(op: str) -> bool:
    """NumPy's code for ``op`` on float64 scalars returns a 0-d array (``np.where`` does),
    so the NumPy body's next op runs NumPy's array code, not its scalar code."""
    prim = REGISTRY[op]
    if not isinstance(prim.numpy, str):
        return False
    kinds = _BOOL_ARGS.get(op, "f" * len(set(re.findall(r"\{(\d)\}", prim.numpy))))
    try:
        numpy_ = eval(f"lambda {', '.join('abc'[:len(kinds)])}: {_numpy_text(prim, kinds)}",
                      {"np": np})
        with np.errstate(all="ignore"):
            out = numpy_(*[np.bool_(True) if k == "b" else np.float64(1.5) for k in kinds])
    except Exception:                   # noqa: BLE001 - not a scalar op: never in the body
        return False
    return type(out) is np.ndarray


@functools.cache
def agrees_on_arrays(op: str, samples: int = SAMPLES) -> bool:
    """``scalar_form(op)`` gives NumPy's bits also where the NumPy body's arguments are
    0-d arrays (after ``np.where``).  NumPy's scalar code and its array code can differ:
    ``np.float64 ** np.float64`` calls the C library's ``pow``, ``**`` on a 0-d array the
    power ufunc, which is NumPy's own SIMD code on AVX-512 CPUs (an ulp apart on 5 % of
    inputs in [0, 4) x [-4, 4] there).  Once per process."""
    prim, form = REGISTRY[op], scalar_form(op)
    if form is None:
        return False
    n = len(set(re.findall(r"\{(\d)\}", form)))
    kinds = _BOOL_ARGS.get(op, "f" * n)
    names = ", ".join("abc"[:n])
    try:
        mine = eval(f"lambda {names}: {form.format(*'abc'[:n])}",
                    {"math": math, "np": np, "_numpy_only": None})
        numpy_ = eval(f"lambda {names}: {_numpy_text(prim, kinds)}", {"np": np})
    except (AttributeError, SyntaxError, TypeError):
        return False
    rng = random.Random("arrays " + op)
    with np.errstate(all="ignore"):
        for args in _draws(rng, kinds, samples):
            try:
                a = mine(*args)
            except (ArithmeticError, ValueError, TypeError):
                continue            # (TypeError: outside a NumPy form's quiet range)
            b = numpy_(*[np.asarray(x, dtype=bool if k == "b" else _F64)
                         for x, k in zip(args, kinds)])
            if isinstance(a, float) and not (math.isfinite(a) and np.isfinite(b)):
                continue
            if not _same(a, b):
                return False
    return True
