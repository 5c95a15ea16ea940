"""Generated code of a guard: the check where the traced call took its decision.

A ``guard`` node (:mod:`graphc.ops.guard`) becomes, in a generated module::

    if not (err > tol):                                     # newton.py:9
        raise GuardFailed(0, False, True, 'err > tol', 'newton.py:9')

with the predicate inlined when it is used once, so the check reads like the user's
line; in the evaluation trace (``str(graph)``) it is one line,
``guard (err > tol) is True   # newton.py:9``.  ``GuardFailed`` is a ``ValueError``
subclass defined in the module itself (:data:`GUARD_HELPERS`: modules import only
NumPy) carrying the guard's position, the value read, the value the path was traced
for, the condition text and the user's file:line.  Those two texts are written as
``repr`` string literals: no user-controlled text ever becomes code.
"""
from __future__ import annotations

import math

from .ops.guard import read_as
from .source_comments import where_short

__all__ = ["guard_lines", "guard_trace_line", "guard_text", "guards_of", "GUARD_CLASS",
           "GUARD_HELPERS", "has_guards"]

GUARD_CLASS = "GuardFailed"

GUARD_HELPERS = '''
class GuardFailed(ValueError):
    """A decision taken while graphc traced does not hold for these arguments.

    The code above was generated for the path the traced call took; ``index`` is the
    failing guard's position on it, ``value`` what the condition gives now, ``expected``
    what it gave when traced, ``condition`` and ``where`` its text and file:line.
    """

    def __init__(self, index, value, expected, condition, where):
        super().__init__(
            f"{where}: {condition} is {value!r} for these arguments, but this code holds "
            f"only the path where it is {expected!r} (guard {index}); a graphc-compiled "
            "function traces each new path when it meets it, an exported module holds the "
            "paths traced before it was exported")
        self.index, self.value, self.expected = index, value, expected
        self.condition, self.where = condition, where
'''


def has_guards(g) -> bool:
    return any(node.op == "guard" for node in g.node_map().values())


def _number(v) -> str:
    """Python text of a guard's expected value (``np.inf`` for an infinity)."""
    if isinstance(v, float) and math.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def _condition(em, pred) -> str:
    """Readable text of the predicate: its expression where it has one, else its name."""
    if pred in em.expr:
        return em.ref(pred)
    node = em.g[pred]
    if node.op not in ("input", "const"):
        text, _ = em.node_expr(pred, "out")
        if isinstance(text, str) and len(text) <= 60:
            return text
    return em.ref(pred)


def _read_text(kind, cond):
    return cond if kind == "bool" else f"{kind}({cond})"


def guard_lines(em, nid, node) -> list:
    """The lines checking guard ``nid`` in a generated module (see the module docstring)."""
    pred = node.args[0]
    expected = node.params["expected"]
    kind = read_as(expected)
    cond = _condition(em, pred)
    if kind == "bool":
        test = f"not {em.ref(pred, 100)}" if expected else em.ref(pred, 0)
        value = repr(not expected)
    else:
        value = f"{kind}({em.ref(pred, 0)})"
        test = f"{value} != {_number(expected)}"
    where = where_short(node.where) or "?"
    lines = [f"if {test}:",
             f"    raise {GUARD_CLASS}({int(node.params['index'])}, {value}, "
             f"{_number(expected)}, {_read_text(kind, cond)!r}, {where!r})"]
    if em.g.n_uses(nid) or nid in em.outputs:     # read by something (never by user code)
        name = em.ns.new("guard")
        em.name[nid] = name
        lines.append(f"{name} = np.True_")
    return lines


def guard_trace_line(em, nid, node) -> list:
    """The evaluation trace's line: ``guard (err > tol) is True``."""
    pred = node.args[0]
    expected = node.params["expected"]
    kind = read_as(expected)
    cond = _read_text(kind, _condition(em, pred))
    lines = [f"guard ({cond}) is {_number(expected)}" if kind == "bool"
             else f"guard {cond} == {_number(expected)}"]
    if em.g.n_uses(nid) or nid in em.outputs:
        em.name[nid] = em.ns.new("guard")
    return lines


def guard_text(g, nid) -> str:
    """``x > 0 is True`` / ``int(mask.sum()) == 2``: a guard as drawings and reports show it."""
    from .interpret import _expr         # (same layer: the interpreter's readable expressions)
    node = g[nid]
    expected = node.params["expected"]
    kind = read_as(expected)
    cond = _read_text(kind, _expr(g, node.args[0], top=True))
    return f"{cond} is {expected!r}" if kind == "bool" else f"{cond} == {_number(expected)}"


def guards_of(g) -> list:
    """``[(text, where), ...]`` of the guards of ``g``, in the order they were taken."""
    return [(guard_text(g, n), g[n].where) for n in g if g[n].op == "guard"]
