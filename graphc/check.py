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

import copy
import html
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import symbolic
from .pytree import flatten

__all__ = ["check", "CheckReport", "CheckRow"]

_MAX_SYMBOLS = 12          # symbolic elements per input (a random sub-block beyond that)
_MAX_WORK = 4_000          # estimated symbolic work (see _symbolic_work) SymPy is given


@dataclass
class CheckRow:
    """One differentiated input: ``status`` is "proved", "numeric" or "mismatch"."""

    input: str
    status: str
    max_error: float
    elements: int = 0
    checked: int = 0
    method: str = ""
    derivative: object = None      # SymPy expression (scalar inputs)
    note: str = ""

    def latex(self) -> str:
        return sp.latex(self.derivative) if self.derivative is not None else ""


@dataclass
class CheckReport:
    """The result of :func:`check`; ``bool(report)`` is ``report.ok``."""

    function: str
    rows: list = field(default_factory=list)
    value: object = None             # SymPy expression of the output (small graphs)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # nothing checked is nothing verified
        return bool(self.rows) and all(r.status != "mismatch" for r in self.rows)

    def __bool__(self):
        return self.ok

    def _verdict(self):
        return "OK" if self.ok else "MISMATCH" if self.rows else "NOTHING CHECKED"

    def __str__(self):
        head = f"graphc.check({self.function}): {self._verdict()}"
        w = max([len(r.input) for r in self.rows] + [5])
        lines = [head, f"  {'input':<{w}}  {'status':<8}  {'max error':>9}  {'checked':>9}  how"]
        for r in self.rows:
            lines.append(f"  {r.input:<{w}}  {r.status:<8}  {r.max_error:>9.2e}  "
                         f"{f'{r.checked}/{r.elements}':>9}  {r.method}")
        for r in self.rows:
            if r.derivative is not None:
                text = str(r.derivative)
                if len(text) > 300:
                    text = f"({sp.count_ops(r.derivative)} operations; see report.rows[...].derivative)"
                lines.append(f"  d{self.function}/d{r.input} = {text}")
            if r.note:
                lines.append(f"  note ({r.input}): {r.note}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_markdown_(self):
        rows = "\n".join(f"| `{r.input}` | {r.status} | {r.max_error:.2e} | {r.checked}/{r.elements} "
                         f"| {r.method} |" for r in self.rows)
        derivs = "\n".join(f"\n$$\\frac{{\\partial {self.function}}}{{\\partial {r.input}}} = {r.latex()}$$"
                           for r in self.rows if r.derivative is not None)
        notes = "\n".join(f"\n*{html.escape(n)}*" for n in self.notes)
        return (f"**graphc.check({self.function})**: {self._verdict()}\n\n"
                "| input | status | max error | checked | how |\n|---|---|---|---|---|\n"
                f"{rows}\n{derivs}{notes}")


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
        # Rounding in float32/float16 is not a wrong derivative: check the derivative
        # in float64, then the function's own gradient against the float64 one.
        try:
            args64, kwargs64 = _upcast(args), _upcast(kwargs)
            graph64 = vg.graph(*args64, **kwargs64)
            _, grads64 = vg(*args64, **kwargs64)
        except Exception as e:   # e.g. the function insists on float32 inputs
            report.notes.append(f"the function computes in {low.name} and could not be run in "
                                f"float64 ({type(e).__name__}); checked in {low.name} with "
                                "tolerances for that dtype")
            low_grads = None
        else:
            args, kwargs, graph, grads = args64, kwargs64, graph64, grads64
            report.notes.append(f"the function computes in {low.name}: its gradient was checked "
                                f"in float64 (arguments upcast), and the {low.name} gradient was "
                                "compared with the float64 one")
    ref = _lowest_float(graph)
    nums = _positional_argnums(base, args, kwargs, argnums)
    sig = graph.signature
    leaves, _, paths = flatten(tuple(_bound_values(base, args, kwargs)))
    # in argnums order, the order of the gradients (argnums=(1, 0) lists argument 1 first)
    diff_leaf = [i for a in nums for i, p in enumerate(paths) if _positional_index(sig, p) == a]
    code_grads = _flat_grads(grads, argnums)
    # Symbolic work: how much expression SymPy would build, estimated from the graph.
    hot = {graph.inputs[i] for i in diff_leaf}
    work = _symbolic_work(graph, hot)

    if work > _MAX_WORK or work > _MAX_WORK // 4 and _layers(graph, hot) >= 2:
        report.notes.append(f"the graph's symbolic work (about {work:,} operations) is too much "
                            "for SymPy: each input was checked numerically (directional finite "
                            f"differences, {ref.name})")
        _numeric_rows(report, base, args, kwargs, sig, diff_leaf, leaves, paths, code_grads, ref)
    else:
        try:
            rows, value = symbolic._with_timeout(
                lambda: _symbolic_rows(graph, sig, leaves, paths, diff_leaf, code_grads, budget,
                                       ref), budget)
        except (symbolic.MissingSemantics, symbolic.TooSlow, RecursionError) as e:
            why = "expressions nested too deeply" if isinstance(e, RecursionError) else e
            report.notes.append(f"symbolic check stopped ({why}); checked numerically instead "
                                "(directional finite differences)")
            _numeric_rows(report, base, args, kwargs, sig, diff_leaf, leaves, paths, code_grads,
                          ref)
        else:
            report.rows.extend(rows)
            report.value = value
    if low_grads is not None and low != np.float64:
        _compare_low_precision(report, low, low_grads, code_grads)
    _refuse_non_finite(report, low_grads if low_grads is not None else code_grads)
    if not report.rows:
        report.notes.append("nothing was checked: the differentiated arguments "
                            f"(argnums={argnums!r}) hold no floating values")
    return report


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


def _symbolic_work(graph, symbolic_inputs):
    """An estimate of the SymPy operations the check would build and differentiate.

    Each node's elements get an expression size: 0 for plain numbers, 1 for a
    differentiated input, and for an operation the sizes of its arguments times
    how many elements feed one output element (the reduced length of a sum, the
    inner dimension of a matmul).  The work is the sum of size x elements over
    every node holding expressions; measured, SymPy takes seconds past ~4,000
    (a 4x2x3 MLP: 4,455 and 20 s; the lecture example: 478 and well under 1 s).
    """
    size = {}
    work = 0
    for nid in graph.order():
        node = graph[nid]
        n_out = int(np.prod(node.shape, dtype=np.int64))
        if node.op == "input":
            size[nid] = 1 if nid in symbolic_inputs else 0
        elif node.op == "const":
            size[nid] = 0
        else:
            args = node.args
            s = sum(size[a] for a in args)
            if s:
                n_in = max(int(np.prod(graph[a].shape, dtype=np.int64)) for a in args)
                fan = max(1, n_in // max(n_out, 1))
                if node.op == "matmul" and graph[args[0]].shape:
                    fan = max(fan, int(graph[args[0]].shape[-1]))
                s = min(s * fan + 1, 10 ** 15)
            size[nid] = s
        work += size[nid] * n_out
    return work


# Operations linear in their differentiated operand: they add no nonlinear layer.
_LINEAR = {"add", "sub", "neg", "sum", "reshape", "transpose", "broadcast_to", "getitem",
           "identity", "concatenate", "contiguous", "astype", "stop_gradient", "col2im", "im2col",
           "put_along_axis", "scatter_add", "take_along_axis", "unpool", "pool_select", "where"}


def _layers(graph, symbolic_inputs):
    """Nonlinear operations stacked after the first contraction of symbolic values.

    ``tanh(x @ W)`` summed is one layer; a loss on top of it (``(tanh(x @ W) - y) ** 2``) is
    two: each checked element's derivative then mixes every row, and SymPy's simplify and
    50-digit evaluation ran past 10 s on a 5x3 batch (measured).
    """
    sym, depth = {}, {}
    for nid in graph.order():
        node = graph[nid]
        if node.section == "backward":
            continue
        if node.op in ("input", "const"):
            sym[nid], depth[nid] = node.op == "input" and nid in symbolic_inputs, -1
            continue
        args = [a for a in node.args if a in sym]
        hot = [a for a in args if sym[a]]
        sym[nid] = bool(hot)
        d = max((depth[a] for a in hot), default=-1)
        n_out = int(np.prod(node.shape, dtype=np.int64))
        n_in = max((int(np.prod(graph[a].shape, dtype=np.int64)) for a in hot),
                   default=0)
        contraction = hot and (node.op == "matmul" or n_in > n_out)
        linear = node.op in _LINEAR or (node.op in ("mul", "matmul") and len(hot) == 1) \
            or (node.op == "div" and hot == [node.args[0]])
        if d >= 0 and not linear:
            d += 1
        elif d < 0 and contraction:
            d = 0
        depth[nid] = d
    return max(depth.values(), default=-1)


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


def _symbolic_rows(graph, sig, leaves, paths, diff_leaf, code_grads, budget, ref):
    """Rows proved (or compared at 50 digits) with SymPy; may raise TooSlow."""
    rng = np.random.default_rng(0)
    env, point, sym_of = {}, {}, {}
    for i, (nid, leaf, path) in enumerate(zip(graph.inputs, leaves, paths)):
        arr = np.asarray(leaf)
        exact = symbolic.to_sympy(arr)
        if i in diff_leaf:
            label = _leaf_label(sig, path)
            syms = symbolic.symbols_like(label, arr.shape)
            if arr.shape == ():
                chosen = [()]
                env[nid] = syms
                point[syms] = exact
                sym_of[i] = ([()], {(): syms})
                continue
            idxs = list(np.ndindex(*arr.shape))
            chosen = idxs if len(idxs) <= _MAX_SYMBOLS else \
                [idxs[k] for k in sorted(rng.choice(len(idxs), _MAX_SYMBOLS, replace=False))]
            value_arr = np.array(exact, dtype=object, copy=True)
            for idx in chosen:
                value_arr[idx] = syms[idx]
                point[syms[idx]] = exact[idx]
            env[nid] = value_arr
            sym_of[i] = (chosen, {idx: syms[idx] for idx in chosen})
        else:
            env[nid] = exact
    vals = symbolic.evaluate(graph, env, point, budget=budget)
    out_value = vals[graph.outputs[0]]
    rows = []
    for k, i in enumerate(diff_leaf):
        path = paths[i]
        label = _leaf_label(sig, path)
        chosen, syms = sym_of[i]
        graph_grad = np.asarray(vals[graph.outputs[1 + k]], dtype=object)
        code = np.asarray(code_grads[k], dtype=np.float64)
        worst, methods, derivative = 0.0, set(), None
        status = "proved"
        for idx in chosen:
            s = syms[idx]
            expected = sp.diff(out_value, s)
            got = graph_grad[idx] if graph_grad.shape else graph_grad.item()
            verdict = symbolic.equal(expected, got, list(point))
            methods.add(verdict.method)
            if not verdict.equal:
                status = "mismatch"
            # three-way: the generated code's number against the symbolic derivative
            try:
                exact_val = complex(sp.N(expected.subs(point), 30))
            except (TypeError, ValueError):   # zoo, nan or a symbol left: not a number
                exact_val = complex(float("nan"))
            num = code[idx] if code.shape else float(code)
            err = abs(num - exact_val.real) / max(1.0, abs(exact_val.real))
            if exact_val.imag != 0 or not np.isfinite(err):
                err = float("inf") if np.isfinite(num) else float("nan")
            worst = err if not err <= worst else worst     # a NaN error is kept, not dropped
            if np.shape(leaves[i]) == () and sp.count_ops(expected) < 300:
                derivative = expected
                try:   # a closed form for the report; simplify is bounded in time
                    derivative = symbolic._with_timeout(lambda: sp.simplify(expected), 2.0)
                except Exception:
                    pass
        tol = _tolerances(ref)[0]
        if not worst <= tol:
            status = "mismatch"
        elif status == "proved" and "numeric" in methods:
            status = "numeric"
        n = int(np.prod(np.shape(leaves[i]), dtype=np.int64))
        note = "" if len(chosen) == n else f"a random sub-block of {len(chosen)} of {n} elements was checked"
        rows.append(CheckRow(label, status, worst, n, len(chosen),
                             "simplify(a - b) == 0" if methods == {"proved"} else
                             "50-digit evaluation at random points", derivative, note))
    return rows, (out_value if _small(out_value) else None)


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


def _numeric_rows(report, fn, args, kwargs, sig, diff_leaf, leaves, paths, code_grads, ref):
    """Directional finite differences of ``fn`` against the code's gradient.

    The arguments are float64 unless the function could not run in float64
    (then ``ref`` is its lower precision, with a step and tolerance to match).
    """
    from .api import compile as gcompile
    f = gcompile(fn)
    rng = np.random.default_rng(0)
    eps = float(np.finfo(ref).eps)
    step = 1e-6 if ref == np.float64 else eps ** (1 / 3)
    tol = _tolerances(ref)[1]
    for k, i in enumerate(diff_leaf):
        leaf = np.asarray(leaves[i], dtype=np.float64)
        g = np.asarray(code_grads[k], dtype=np.float64)
        worst, noisy = 0.0, 0.0
        for _ in range(3):
            v = rng.normal(size=leaf.shape)
            v /= max(float(np.linalg.norm(v)), 1e-300)    # a unit direction: the step is h
            h = step * max(1.0, float(np.abs(leaf).max(initial=0.0)))
            plus = _replace_leaf(args, kwargs, fn, paths[i], leaf + h * v)
            minus = _replace_leaf(args, kwargs, fn, paths[i], leaf - h * v)
            with np.errstate(all="ignore"):
                fp, fm = float(f(*plus[0], **plus[1])), float(f(*minus[0], **minus[1]))
                fd = (fp - fm) / (2 * h)
                an = float(np.sum(g * v))
                err = abs(fd - an) / max(1.0, abs(an))
                # the rounding noise of the two values, seen through the step
                noise = 10 * eps * max(abs(fp), abs(fm)) / h / max(1.0, abs(an))
            worst = err if not err <= worst else worst     # a NaN error is kept, not dropped
            noisy = max(noisy, noise)
        row = CheckRow(_leaf_label(sig, paths[i]), "numeric" if worst <= tol + noisy else "mismatch",
                       worst, leaf.size, leaf.size, "directional finite differences")
        if noisy > 0.1:    # the differences are mostly rounding: nothing was verified
            row.status = "mismatch"
            row.note = (f"finite differences in {ref.name} are dominated by rounding (about "
                        f"{noisy:.0e}): the gradient could not be verified; pass float64 arguments")
        report.rows.append(row)


def _replace_leaf(args, kwargs, fn, path, new):
    """``(args, kwargs)`` with the leaf at ``path`` (param index, keys...) replaced."""
    from .capture import call_parts as _call_parts
    from .signature import from_function
    params, values = from_function(fn, args, kwargs)
    values = list(values)
    values[path[0]] = _replaced(values[path[0]], path[1:], new)
    return _call_parts(params, values)


def _replaced(tree, path, new):
    """A copy of ``tree`` with the leaf at ``path`` replaced (tuples are rebuilt, not assigned)."""
    if not path:
        if isinstance(tree, np.ndarray):
            return new.astype(tree.dtype)
        if isinstance(tree, np.generic):
            return tree.dtype.type(new)
        return float(new)
    key, rest = path[0], path[1:]
    if isinstance(tree, tuple):
        return tuple(_replaced(v, rest, new) if j == key else v for j, v in enumerate(tree))
    out = copy.copy(tree)          # a dict or a list: a shallow copy, the leaf replaced
    out[key] = _replaced(tree[key], rest, new)
    return out
