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

import html
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import symbolic
from .pytree import flatten

__all__ = ["check", "CheckReport", "CheckRow"]

_MAX_SYMBOLS = 12          # symbolic elements per input (a random sub-block beyond that)
_MAX_WORK = 60_000         # sum of node output sizes SymPy is asked to evaluate


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
        return all(r.status != "mismatch" for r in self.rows)

    def __bool__(self):
        return self.ok

    def __str__(self):
        head = f"graphc.check({self.function}): {'OK' if self.ok else 'MISMATCH'}"
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
        return (f"**graphc.check({self.function})**: {'OK' if self.ok else 'MISMATCH'}\n\n"
                "| input | status | max error | checked | how |\n|---|---|---|---|---|\n"
                f"{rows}\n{derivs}{notes}")


def check(fn, *args, argnums=0, budget=10.0, **kwargs) -> CheckReport:
    """Verify ``fn``'s gradient three ways; see the module docstring.

    ``budget`` bounds the seconds spent on SymPy evaluation; past it the check
    falls back to directional finite differences and the report says so.

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
    value, grads = vg(*args, **kwargs)
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    grad_trees = (grads,) if isinstance(argnums, int) else grads

    sig = graph.signature
    leaves, _, paths = flatten(tuple(_bound_values(base, args, kwargs)))
    diff_leaf = [i for i, p in enumerate(paths) if _positional_index(sig, p) in nums]
    code_grads = [g for t in grad_trees for g in flatten(t)[0]]
    report = CheckReport(name)
    work = sum(int(np.prod(graph.nx.nodes[n]["shape"], dtype=np.int64)) for n in graph.nx.nodes)

    if work > _MAX_WORK:
        report.notes.append(f"the graph computes {work:,} values, too many for SymPy: each input "
                            "was checked numerically (directional finite differences, float64)")
        _numeric_rows(report, base, args, kwargs, sig, diff_leaf, leaves, paths, code_grads, nums)
        return report

    try:
        rows, value = symbolic._with_timeout(
            lambda: _symbolic_rows(graph, sig, leaves, paths, diff_leaf, code_grads, budget), budget)
    except (symbolic.MissingSemantics, symbolic.TooSlow) as e:
        report.notes.append(f"symbolic check stopped ({e}); checked numerically instead "
                            "(directional finite differences)")
        _numeric_rows(report, base, args, kwargs, sig, diff_leaf, leaves, paths, code_grads, nums)
        return report
    report.rows.extend(rows)
    report.value = value
    return report


def _symbolic_rows(graph, sig, leaves, paths, diff_leaf, code_grads, budget):
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
            exact_val = complex(sp.N(expected.subs(point), 30))
            num = code[idx] if code.shape else float(code)
            err = abs(num - exact_val.real) / max(1.0, abs(exact_val.real))
            worst = max(worst, err)
            if np.shape(leaves[i]) == () and sp.count_ops(expected) < 300:
                derivative = expected
                try:   # a closed form for the report; simplify is bounded in time
                    derivative = symbolic._with_timeout(lambda: sp.simplify(expected), 2.0)
                except Exception:
                    pass
        tol = 1e-4 if np.asarray(leaves[i]).dtype == np.float32 else 1e-9
        if worst > tol:
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


def _numeric_rows(report, fn, args, kwargs, sig, diff_leaf, leaves, paths, code_grads, nums):
    """Directional finite differences of ``fn`` (in float64) against the code's gradient."""
    from .api import compile as gcompile
    f = gcompile(fn)
    rng = np.random.default_rng(0)
    for k, i in enumerate(diff_leaf):
        leaf = np.asarray(leaves[i], dtype=np.float64)
        g = np.asarray(code_grads[k], dtype=np.float64)
        worst = 0.0
        for _ in range(3):
            v = rng.normal(size=leaf.shape)
            h = 1e-6 * max(1.0, float(np.abs(leaf).max(initial=0.0)))
            plus = _replace_leaf(args, kwargs, fn, paths[i], leaf + h * v)
            minus = _replace_leaf(args, kwargs, fn, paths[i], leaf - h * v)
            fd = (float(f(*plus[0], **plus[1])) - float(f(*minus[0], **minus[1]))) / (2 * h)
            an = float(np.sum(g * v))
            worst = max(worst, abs(fd - an) / max(1.0, abs(an)))
        tol = 1e-3 if np.asarray(leaves[i]).dtype == np.float32 else 1e-5
        report.rows.append(CheckRow(_leaf_label(sig, paths[i]), "numeric" if worst < tol else "mismatch",
                                    worst, leaf.size, leaf.size, "directional finite differences"))


def _replace_leaf(args, kwargs, fn, path, new):
    """``(args, kwargs)`` with the leaf at ``path`` (param index, keys...) replaced."""
    import copy
    from .api import _call_parts
    from .signature import from_function
    params, values = from_function(fn, args, kwargs)
    values = copy.deepcopy(values)
    holder, key = values, path[0]
    for k in path[1:]:
        holder, key = holder[key], k
    old = holder[key]
    holder[key] = new.astype(old.dtype) if isinstance(old, np.ndarray) else float(new)
    return _call_parts(params, values)
