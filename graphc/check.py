"""``graphc.check``: a three-way verification of a function's gradient.

1. the symbolic derivative (``sympy.diff`` of the traced forward expression),
2. the backward graph graphc built (evaluated on SymPy values), and
3. the numbers the generated NumPy code returns at the given arguments.

Small graphs are checked element by element; for large inputs a small random
sub-block of elements is made symbolic (the rest keep their values), and a
graph too large for SymPy is checked numerically by directional finite
differences in float64.  The report says which was done.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import symbolic
from .check_leaves import replace_leaf as _replace_leaf
from .check_report import CheckReport, CheckRow
from .check_work import nonlinear_layers, symbolic_work
from .errors import OptionError
from .pytree import flatten
from .source_comments import where_short
from .tracebacks import hidden_frames

__all__ = ["check", "CheckReport", "CheckRow"]

_MAX_SYMBOLS = 12          # symbolic elements per input (a random sub-block beyond that)
_MAX_WORK = 4_000          # estimated symbolic work (see symbolic_work) SymPy is given


def check(fn, *args, argnums=0, budget=10.0, **kwargs) -> CheckReport:
    """Verify ``fn``'s gradient three ways; see the module docstring.

    ``budget`` bounds the seconds spent on SymPy evaluation; past it the check
    falls back to directional finite differences and the report says so.
    Graphs whose symbolic work is clearly too large go straight to finite
    differences.  A function computing in float32 or float16 is checked in
    float64 (its arguments upcast), and its own gradient is compared with the
    float64 one at a tolerance for its dtype.  The report is never ``ok`` when
    nothing was checked or a gradient is NaN or infinite.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(w1, w2):
    ...     return w1 / w2 + np.exp(2 * w2)
    >>> report = graphc.check(f, 1.5, 0.5, argnums=(0, 1))
    >>> report.ok, [r.status for r in report.rows]
    (True, ['proved', 'proved'])
    >>> report.rows[1].derivative
    -w1/w2**2 + 2*exp(2*w2)
    """
    with hidden_frames():         # a user error shows the user's frames only
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
            # graphc's own keyword, never passed to fn: a value meant for fn lands here
            raise OptionError(f"graphc.check(budget={budget!r:.60}): budget= is graphc's own "
                              "keyword (seconds for SymPy), not an argument of your function",
                              hint="pass a positive number of seconds, e.g. budget=10.0")
        return _check(fn, args, kwargs, argnums, budget)


def _check(fn, args, kwargs, argnums, budget) -> CheckReport:
    from .api import Compiled, value_and_grad
    base = fn._fn if isinstance(fn, Compiled) else fn
    name = getattr(base, "__name__", "f")
    vg = value_and_grad(base, argnums=argnums)
    graph = vg.graph(*args, **kwargs)
    _, grads = vg(*args, **kwargs)
    report = CheckReport(name)
    low = _lowest_float(graph)
    low_grads = _flat_grads(grads, argnums)
    if low != np.float64:
        run64 = _run_in_float64(report, vg, low, args, kwargs)
        if run64 is None:
            low_grads = None
        else:
            args, kwargs, graph, grads = run64
    _note_guards(report, graph)
    subject = _subject(base, args, kwargs, graph, grads, argnums)
    _check_gradients(report, subject, budget)
    if low_grads is not None and low != np.float64:
        _compare_low_precision(report, low, low_grads, subject.code_grads)
    _refuse_non_finite(report, low_grads if low_grads is not None else subject.code_grads)
    if not report.rows:
        report.notes.append("nothing was checked: the differentiated arguments "
                            f"(argnums={argnums!r}) hold no floating values")
    for row in report.rows:
        if not row.checked:
            row.note = "no element was checked (the input has none): not verified"
    return report


def _note_guards(report, graph):
    """With guards, what is checked is the derivative of the path these arguments take."""
    from .codegen_guards import guards_of
    report.guards = guards_of(graph)
    if report.guards:
        taken = "; ".join(f"{text} ({where_short(where)})" for text, where in report.guards[:6])
        more = f"; and {len(report.guards) - 6} more" if len(report.guards) > 6 else ""
        report.notes.append(f"checked the derivative of the path these arguments take, "
                            f"decided by {len(report.guards)} guard(s): {taken}{more}; other "
                            "paths were not checked")


def _run_in_float64(report, vg, low, args, kwargs):
    """``(args, kwargs, graph, grads)`` in float64 for a function computing in ``low``.

    Rounding in float32/float16 is not a wrong derivative: the derivative is
    checked in float64, then the function's own gradient against the float64
    one.  None when the function cannot run in float64; the report notes which.
    """
    try:
        args64, kwargs64 = _upcast(args), _upcast(kwargs)
        graph64 = vg.graph(*args64, **kwargs64)
        _, grads64 = vg(*args64, **kwargs64)
    except Exception as e:   # e.g. the function insists on float32 inputs
        report.notes.append(f"the function computes in {low.name} and could not be run in "
                            f"float64 ({type(e).__name__}); checked in {low.name} with "
                            "tolerances for that dtype")
        return None
    report.notes.append(f"the function computes in {low.name}: its gradient was checked "
                        f"in float64 (arguments upcast), and the {low.name} gradient was "
                        "compared with the float64 one")
    return args64, kwargs64, graph64, grads64


@dataclass
class _Subject:
    """What each way of checking reads: the call, its graph and the differentiated leaves."""

    fn: object                # the function (a compiled one unwrapped)
    args: tuple
    kwargs: dict
    graph: object
    leaves: list              # every argument leaf, flattened
    paths: list               # each leaf's path: (parameter index, keys...)
    diff_leaf: list           # the differentiated leaves, in the order of the gradients
    code_grads: list          # the generated code's gradient, one array per differentiated leaf
    ref: np.dtype             # the float precision the check runs in

    @property
    def sig(self):
        return self.graph.signature


def _subject(fn, args, kwargs, graph, grads, argnums) -> _Subject:
    ref = _lowest_float(graph)
    nums = _positional_argnums(fn, args, kwargs, argnums)
    leaves, _, paths = flatten(tuple(_bound_values(fn, args, kwargs)))
    # in argnums order, the order of the gradients (argnums=(1, 0) lists argument 1 first)
    diff_leaf = [i for a in nums for i, p in enumerate(paths)
                 if _positional_index(graph.signature, p) == a]
    return _Subject(fn, args, kwargs, graph, leaves, paths, diff_leaf,
                    _flat_grads(grads, argnums), ref)


def _check_gradients(report, subject, budget):
    """A row per differentiated leaf: proved with SymPy, or by finite differences when
    the graph is too much for SymPy (estimated first) or SymPy gives up."""
    graph = subject.graph
    hot = {graph.inputs[i] for i in subject.diff_leaf}
    work = symbolic_work(graph, hot)
    if work > _MAX_WORK or work > _MAX_WORK // 4 and nonlinear_layers(graph, hot) >= 2:
        report.notes.append(f"the graph's symbolic work (about {work:,} operations) is too much "
                            "for SymPy: each input was checked numerically (directional finite "
                            f"differences, {subject.ref.name})")
        _numeric_rows(report, subject)
        return
    try:
        rows, value = symbolic._with_timeout(lambda: _symbolic_rows(subject, budget), budget)
    except (symbolic.MissingSemantics, symbolic.TooSlow, RecursionError) as e:
        why = "expressions nested too deeply" if isinstance(e, RecursionError) else e
        report.notes.append(f"symbolic check stopped ({why}); checked numerically instead "
                            "(directional finite differences)")
        _numeric_rows(report, subject)
    else:
        report.rows.extend(rows)
        report.value = value


# Tolerances by the lowest float precision a graph computes in:
# (against the exact derivative, directional finite differences, against the float64 gradient).
_TOLERANCES = {np.dtype(np.float64): (1e-9, 1e-5, 0.0),
               np.dtype(np.float32): (1e-4, 1e-2, 1e-3),
               np.dtype(np.float16): (3e-2, 2e-1, 5e-2)}


def _tolerances(dtype):
    return _TOLERANCES.get(np.dtype(dtype), _TOLERANCES[np.dtype(np.float64)])


def _lowest_float(graph):
    """The least precise floating dtype any node of ``graph`` computes in."""
    kinds = [np.dtype(graph[n].dtype) for n in graph]
    floats = [d for d in kinds if d.kind == "f" and d.itemsize < 8]
    return min(floats, key=lambda d: d.itemsize) if floats else np.dtype(np.float64)


def _upcast(tree):
    """``tree`` with float16/float32 arrays and NumPy scalars as float64."""
    from .pytree import unflatten
    leaves, tdef, _ = flatten(tree)

    def up(x):
        if isinstance(x, (np.ndarray, np.floating)) and x.dtype.kind == "f" and x.dtype.itemsize < 8:
            return x.astype(np.float64)
        return x
    return unflatten(tdef, [up(x) for x in leaves])


def _flat_grads(grads, argnums):
    trees = (grads,) if isinstance(argnums, int) else grads
    return [g for t in trees for g in flatten(t)[0]]


def _positional_argnums(fn, args, kwargs, argnums):
    """``argnums`` as non-negative positions (``-1`` is the last positional argument)."""
    from .argnums import normalize_argnums
    from .capture import call_parts as _call_parts
    from .signature import from_function
    n = len(_call_parts(*from_function(fn, args, kwargs))[0])
    return normalize_argnums(argnums, n)


def _compare_low_precision(report, low, low_grads, ref_grads):
    """The function's own float32/float16 gradient against its float64 gradient."""
    tol = _tolerances(low)[2]
    k = 0
    for row in report.rows:
        lo = np.asarray(low_grads[k], dtype=np.float64)
        hi = np.asarray(ref_grads[k], dtype=np.float64)
        k += 1
        with np.errstate(invalid="ignore", over="ignore"):
            err = float(np.max(np.abs(lo - hi), initial=0.0)) / max(
                1.0, float(np.max(np.abs(hi), initial=0.0)))
        text = f"its {low.name} gradient differs from the float64 one by {err:.1e} (tolerance {tol:.0e})"
        row.note = f"{row.note}; {text}" if row.note else text
        if not err <= tol:
            row.status = "mismatch"
        row.max_error = max(row.max_error, err) if err == err else err


def _refuse_non_finite(report, grads):
    """A NaN or infinite gradient is never verified, whatever the formula says."""
    for row, g in zip(report.rows, grads):
        g = np.asarray(g, dtype=np.float64)
        bad = int(g.size - np.count_nonzero(np.isfinite(g)))
        if bad:
            what = "NaN" if np.isnan(g).any() else "infinite"
            text = (f"the gradient is {what} at {bad} of {g.size} element{'s' if g.size != 1 else ''} "
                    "at these arguments: nothing to verify there; check at another point")
            row.status = "mismatch"
            row.max_error = float("nan") if what == "NaN" else float("inf")
            row.note = f"{row.note}; {text}" if row.note else text


def _symbolic_rows(subject, budget):
    """Rows proved (or compared at 50 digits) with SymPy; may raise TooSlow."""
    env, point, chosen = _symbolic_inputs(subject)
    vals = symbolic.evaluate(subject.graph, env, point, budget=budget)
    out_value = vals[subject.graph.outputs[0]]
    rows = [_symbolic_row(subject, k, i, chosen[i], vals, out_value, point)
            for k, i in enumerate(subject.diff_leaf)]
    return rows, (out_value if _small(out_value) else None)


def _symbolic_inputs(subject):
    """SymPy values for the graph's inputs: symbols at the checked elements, exact numbers
    elsewhere (a random sub-block of an input with more than ``_MAX_SYMBOLS`` elements).

    Returns ``(env, point, chosen)``: input node -> value, symbol -> its number, and for
    each differentiated leaf its checked indices with their symbols.
    """
    rng = np.random.default_rng(0)
    env, point, chosen = {}, {}, {}
    for i, (nid, leaf, path) in enumerate(zip(subject.graph.inputs, subject.leaves,
                                              subject.paths)):
        arr = np.asarray(leaf)
        exact = symbolic.to_sympy(arr)
        if i not in subject.diff_leaf:
            env[nid] = exact
            continue
        syms = symbolic.symbols_like(_leaf_label(subject.sig, path), arr.shape)
        if arr.shape == ():
            env[nid] = syms
            point[syms] = exact
            chosen[i] = ([()], {(): syms})
            continue
        idxs = list(np.ndindex(*arr.shape))
        picked = idxs if len(idxs) <= _MAX_SYMBOLS else \
            [idxs[k] for k in sorted(rng.choice(len(idxs), _MAX_SYMBOLS, replace=False))]
        value_arr = np.array(exact, dtype=object, copy=True)
        for idx in picked:
            value_arr[idx] = syms[idx]
            point[syms[idx]] = exact[idx]
        env[nid] = value_arr
        chosen[i] = (picked, {idx: syms[idx] for idx in picked})
    return env, point, chosen


def _symbolic_row(subject, k, i, chosen, vals, out_value, point):
    """Leaf ``i`` (gradient ``k``) three ways at each chosen element: SymPy's derivative
    against graphc's backward graph, and against the generated code's number."""
    picked, syms = chosen
    graph_grad = np.asarray(vals[subject.graph.outputs[1 + k]], dtype=object)
    code = np.asarray(subject.code_grads[k], dtype=np.float64)
    worst, methods, derivative = 0.0, set(), None
    status = "proved"
    for idx in picked:
        expected = sp.diff(out_value, syms[idx])
        got = graph_grad[idx] if graph_grad.shape else graph_grad.item()
        verdict = symbolic.equal(expected, got, list(point))
        methods.add(verdict.method)
        if not verdict.equal:
            status = "mismatch"
        err = _code_error(expected, point, code[idx] if code.shape else float(code))
        worst = err if not err <= worst else worst     # a NaN error is kept, not dropped
        if np.shape(subject.leaves[i]) == () and sp.count_ops(expected) < 300:
            derivative = _closed_form(expected)
    if not worst <= _tolerances(subject.ref)[0]:
        status = "mismatch"
    elif status == "proved" and "numeric" in methods:
        status = "numeric"
    n = int(np.prod(np.shape(subject.leaves[i]), dtype=np.int64))
    note = "" if len(picked) == n else f"a random sub-block of {len(picked)} of {n} elements was checked"
    return CheckRow(_leaf_label(subject.sig, subject.paths[i]), status, worst, n, len(picked),
                    "simplify(a - b) == 0" if methods == {"proved"} else
                    "50-digit evaluation at random points", derivative, note)


def _code_error(expected, point, num):
    """The generated code's number ``num`` against the exact derivative: relative error."""
    try:
        exact_val = complex(sp.N(expected.subs(point), 30))
    except (TypeError, ValueError):   # zoo, nan or a symbol left: not a number
        exact_val = complex(float("nan"))
    err = abs(num - exact_val.real) / max(1.0, abs(exact_val.real))
    if exact_val.imag != 0 or not np.isfinite(err):
        err = float("inf") if np.isfinite(num) else float("nan")
    return err


def _closed_form(expected):
    """``expected`` simplified for the report; simplify is bounded in time."""
    try:
        return symbolic._with_timeout(lambda: sp.simplify(expected), 2.0)
    except Exception:
        return expected


def _small(expr):
    try:
        return sp.count_ops(expr) < 400
    except Exception:
        return False


def _bound_values(fn, args, kwargs):
    from .signature import from_function
    return from_function(fn, args, kwargs)[1]


def _positional_index(sig, path):
    import inspect
    p = sig.params[path[0]]
    if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return path[0]
    if p.kind == inspect.Parameter.VAR_POSITIONAL:
        return path[0] + path[1]
    return None


def _leaf_label(sig, path):
    text = sig.params[path[0]].name
    for k in path[1:]:
        text += f"[{k!r}]"
    return text


def _numeric_rows(report, subject):
    """Directional finite differences of the function against the code's gradient.

    The arguments are float64 unless the function could not run in float64
    (then ``subject.ref`` is its lower precision, with a step and tolerance to match).
    """
    from .api import compile as gcompile
    f = gcompile(subject.fn)
    ref, paths = subject.ref, subject.paths
    rng = np.random.default_rng(0)
    eps = float(np.finfo(ref).eps)
    step = 1e-6 if ref == np.float64 else eps ** (1 / 3)
    tol = _tolerances(ref)[1]
    for k, i in enumerate(subject.diff_leaf):
        leaf = np.asarray(subject.leaves[i], dtype=np.float64)
        g = np.asarray(subject.code_grads[k], dtype=np.float64)
        worst, noisy = 0.0, 0.0
        for _ in range(3):
            v = rng.normal(size=leaf.shape)
            v /= max(float(np.linalg.norm(v)), 1e-300)    # a unit direction: the step is h
            h = step * max(1.0, float(np.abs(leaf).max(initial=0.0)))
            plus = _replace_leaf(subject, paths[i], leaf + h * v)
            minus = _replace_leaf(subject, paths[i], leaf - h * v)
            with np.errstate(all="ignore"):
                fp, fm = float(f(*plus[0], **plus[1])), float(f(*minus[0], **minus[1]))
                fd = (fp - fm) / (2 * h)
                an = float(np.sum(g * v))
                err = abs(fd - an) / max(1.0, abs(an))
                # the rounding noise of the two values, seen through the step
                noise = 10 * eps * max(abs(fp), abs(fm)) / h / max(1.0, abs(an))
            worst = err if not err <= worst else worst     # a NaN error is kept, not dropped
            noisy = max(noisy, noise)
        row = CheckRow(_leaf_label(subject.sig, paths[i]), "numeric" if worst <= tol + noisy else "mismatch",
                       worst, leaf.size, leaf.size, "directional finite differences")
        if noisy > 0.1:    # the differences are mostly rounding: nothing was verified
            row.status = "mismatch"
            row.note = (f"finite differences in {ref.name} are dominated by rounding (about "
                        f"{noisy:.0e}): the gradient could not be verified; pass float64 arguments")
        report.rows.append(row)
