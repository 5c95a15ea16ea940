"""Graphs on SymPy values: proofs of gradient rules and ``graphc.check``.

:func:`evaluate` runs any graph (forward, or forward + backward) on SymPy
values, using each primitive's ``sympy`` semantics from its one record:
elementwise rules are vectorized over object arrays of expressions, the
others receive object arrays.  :func:`equal` decides ``a == b`` by
``simplify(a - b) == 0`` and, where SymPy cannot decide, by evaluation at
random points with 50-digit precision, and says which of the two it used.
"""
from __future__ import annotations

import fractions

import random
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .literals import pi_text
from .primitive import REGISTRY

__all__ = ["evaluate", "to_sympy", "symbols_like", "equal", "MissingSemantics"]

class MissingSemantics(Exception):
    """A primitive has no SymPy semantics."""


class TooSlow(Exception):
    """Symbolic evaluation ran past its time budget."""


def to_sympy(value):
    """A NumPy/Python constant as exact SymPy numbers (``2*np.pi`` becomes ``2*pi``)."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return _scalar(arr.item())
    out = np.empty(arr.shape, dtype=object)
    for idx in np.ndindex(arr.shape):
        out[idx] = _scalar(arr[idx].item())
    return out


def _scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return sp.true if v else sp.false
    if isinstance(v, (int, np.integer)):
        return sp.Integer(int(v))
    v = float(v)
    if v != v:
        return sp.nan
    if v in (float("inf"), float("-inf")):
        return sp.oo if v > 0 else -sp.oo
    if v == int(v) and abs(v) < 2 ** 53:
        return sp.Integer(int(v))
    pi = pi_text(v)
    if pi is not None:
        return sp.sympify(pi.replace("np.pi", "pi"))
    # A fraction with a small denominator that rounds to exactly this float is what
    # the program meant: mean() over 3 elements scales its gradient by 1/3, stored
    # as 0.3333333333333333, while the forward pass divides by the integer 3.
    frac = fractions.Fraction(v).limit_denominator(1 << 16)
    if float(frac) == v:
        return sp.Rational(frac.numerator, frac.denominator)
    # otherwise the decimal the user wrote (0.1 -> 1/10), not its binary approximation
    return sp.Rational(repr(v))


def symbols_like(name: str, shape, positive=False, real=True):
    """An object array of symbols ``name[i,j]`` (a single symbol for shape ())."""
    if tuple(shape) == ():
        return sp.Symbol(name, real=real, positive=positive or None)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sp.Symbol(f"{name}[{','.join(map(str, idx))}]", real=real, positive=positive or None)
    return out


def _obj(x):
    return x if isinstance(x, np.ndarray) else np.asarray(x, dtype=object)


def evaluate(graph, env: dict, point: dict | None = None, budget: float | None = None) -> dict:
    """Values of every node, given SymPy values for the inputs in ``env``.

    ``point`` maps symbols to numbers; it is needed only by primitives whose
    record says ``sympy_at_point`` (evaluated with NumPy at that point).  With ``budget`` (seconds), raises :class:`TooSlow`
    instead of running on (checked between nodes and between elements).
    """
    import time
    deadline = None if budget is None else time.monotonic() + budget

    def tick():
        if deadline is not None and time.monotonic() > deadline:
            raise TooSlow(f"symbolic evaluation took more than {budget:g} s")
    values = {n: _as_index(graph, n, v) for n, v in env.items()}
    for nid in graph.order():
        if nid in values:
            continue
        tick()
        node = graph[nid]
        op = node.op
        if op == "input" and not node.closure:   # a closed-over array has a value
            raise KeyError(f"no value for input {node.get('name')!r}")
        if op == "const" or op == "input":
            values[nid] = _as_index(graph, nid, to_sympy(node.value))
            continue
        prim = REGISTRY.get(op)
        if prim is None:            # a loop or branch (graphc/control): not unrolled for SymPy
            raise MissingSemantics(f"{op} (a structured loop or branch) has no symbolic form")
        args = [values[a] for a in node.args]
        params = node.params
        if prim.sympy_at_point:
            nums = [_numeric(a, point, graph.aval(x).dtype) for a, x in zip(args, node.args)]
            values[nid] = to_sympy(prim.impl(params)(*nums))
            continue
        if prim.sympy is None:
            raise MissingSemantics(f"primitive {op!r} has no SymPy semantics")
        if prim.elementwise and not prim.logic_operands:
            # a boolean operand of arithmetic (ct * mask) counts as 0 or 1
            args = [_as_number(a) if graph[x].dtype.kind == "b" else a
                    for a, x in zip(args, node.args)]
        if prim.elementwise:
            def one(*xs, _rule=prim.sympy, _params=params):
                tick()
                return _rule(*xs, **_params)
            fn = np.vectorize(one, otypes=[object])
            out = fn(*[_obj(a) for a in args])
        else:
            out = prim.sympy(*[_obj(a) for a in args], **params)
        out = np.asarray(out, dtype=object)
        values[nid] = _as_index(graph, nid, out.item() if out.shape == () else out)
    return values


def _as_number(value):
    def conv(v):
        if isinstance(v, sp.Expr):      # already a number or expression
            return v
        if v is sp.true or v is True:
            return sp.Integer(1)
        if v is sp.false or v is False:
            return sp.Integer(0)
        return sp.Piecewise((1, v), (0, True))
    if isinstance(value, np.ndarray):
        return np.vectorize(conv, otypes=[object])(value)
    return conv(value)


def _as_index(graph, nid, value):
    """Integer values stay NumPy integers: they index arrays and SymPy needs no say."""
    if graph[nid].dtype.kind not in "iu":
        return value
    try:
        return np.asarray(np.asarray(value, dtype=object).astype(np.int64))
    except (TypeError, ValueError):
        return value


def _numeric(value, point, dtype):
    arr = np.asarray(value, dtype=object)
    out = np.empty(arr.shape, dtype=dtype)
    for idx in np.ndindex(arr.shape) if arr.shape else [()]:
        v = arr[idx]
        if isinstance(v, sp.Basic) and point:
            v = v.subs(point)
        out[idx] = bool(v) if dtype.kind == "b" else (int(v) if dtype.kind in "iu" else float(v))
    return out if arr.shape else out[()]


# --- equality ---------------------------------------------------------------------------
def _with_timeout(fn, seconds):
    """Run ``fn``; raise TooSlow after ``seconds`` (SIGALRM, main thread only).

    Nests: an enclosing timeout keeps running, and fires first if it is shorter.
    """
    import signal
    import threading
    import time
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()
    outer_handler = signal.getsignal(signal.SIGALRM)
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    mine = not outer_left or seconds < outer_left

    def alarm(signum, frame):
        raise TooSlow(f"took more than {seconds:g} s")
    signal.signal(signal.SIGALRM, alarm if mine else outer_handler)
    signal.setitimer(signal.ITIMER_REAL, seconds if mine else outer_left)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - start), 1e-3))


@dataclass
class Verdict:
    equal: bool
    method: str          # "proved" (simplify) or "numeric" (50-digit evaluation)
    max_error: float = 0.0


def equal(a, b, symbols, *, positive=False, trials=4, seed=0, simplify_ops=400) -> Verdict:
    """Decide ``a == b``: symbolically when SymPy can, else at random points."""
    diff = sp.sympify(a) - sp.sympify(b)
    if diff == 0:
        return Verdict(True, "proved")
    # simplify() can run for minutes on Piecewise/Max forms: those, and anything
    # past a couple of seconds, are decided numerically instead.
    if sp.count_ops(diff) <= simplify_ops and not diff.has(sp.Piecewise, sp.Max, sp.Min):
        try:
            if _with_timeout(lambda: sp.simplify(diff), 2.0) == 0:
                return Verdict(True, "proved")
        except Exception:  # SymPy gave up or ran out of time: decide numerically
            pass
    rng = random.Random(seed)
    worst = 0.0
    a, b = sp.sympify(a), sp.sympify(b)
    # Every symbol of either side gets a value: one that cancels in a - b may still be
    # left in a or b after substitution, and N() of a symbol cannot be a number.
    free = sorted(a.free_symbols | b.free_symbols, key=str)
    # Constants the graph folded in float64 (0.1 / 7 -> 0.014285714285714287) become
    # rationals with huge denominators: the two sides may then differ by float64
    # rounding (~1e-16), never by a wrong rule's O(1) error.
    inexact = a.atoms(sp.Float) or b.atoms(sp.Float) or any(
        r.q > (1 << 20) for r in (a.atoms(sp.Rational) | b.atoms(sp.Rational)))
    tol = 1e-12 if inexact else 1e-30
    for _ in range(trials):
        pt = {s: sp.Float(rng.uniform(0.3, 2.0) if (positive or s.is_positive) else rng.uniform(-2.0, 2.0), 50)
              for s in free}
        da = sp.N(a.subs(pt), 50)
        db = sp.N(b.subs(pt), 50)
        err = abs(complex(da - db))
        scale = max(abs(complex(da)), abs(complex(db)), 1e-30)
        worst = max(worst, err / scale if scale > 1 else err)
    return Verdict(worst < tol, "numeric", worst)
