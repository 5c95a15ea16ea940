"""The scalar text of one fused operation inside a kernel of the ``"numba"`` target.

:mod:`graphc.codegen_numba_kernel` writes the loops of a kernel; each operation it fuses
(a *member*) becomes one scalar expression in them, from its record's scalar form
(:func:`graphc.numba_fuse.scalar_form`) with the kernel's names for its arguments.  This
module writes that expression and the lines before it:

- :func:`member_text`: the expression, rounded to float32 where numba would compute a
  float32 operation in float64 (``np.float32(...)``, as NumPy rounds each operation);
- :func:`named_operands`: names for what a select reads more than once (``masked_mul``,
  ``max_share``, ``np.where``), so that the select chooses between two computed values
  and LLVM vectorizes it without a branch;
- :func:`number_text`, :func:`literal_input`, :func:`operand_dtype`: constants written as
  numbers of the dtype NumPy would give them next to the kernel's values (NEP 50).

Examples
--------
>>> import numpy as np
>>> number_text(0.5, np.float32), number_text(float("inf"), np.float64)
('np.float32(0.5)', 'float("inf")')
"""
from __future__ import annotations

import ast
import re

import numpy as np

from .numba_fuse import scalar_form, typed_literals
from .precedence import ATOM, TABLE, wrap
from .primitive import REGISTRY, _param_text

__all__ = ["number_text", "literal_input", "operand_dtype", "named_operands", "member_text"]

#: Ops that numba computes in float32 when every operand is float32 (or a number written
#: as ``np.float32``): their text needs no ``np.float32(...)`` rounding around it.
_EXACT32 = frozenset({"add", "sub", "mul", "div", "neg", "maximum", "minimum", "abs", "sign",
                      "relu", "masked_mul", "max_share", "where", "identity", "stop_gradient",
                      "contiguous"})


def number_text(value, dtype):
    """``value`` as a number of ``dtype`` in a kernel's text."""
    v = np.asarray(value).item()
    if np.dtype(dtype).kind == "b":
        return repr(bool(v))
    text = repr(float(v)) if np.isfinite(v) else f'float("{v}")'
    return f"np.float32({text})" if dtype == np.float32 else text


def literal_input(g, a):
    """``a`` is a constant of one element: written as its number, not passed in."""
    return g[a].op == "const" and g.aval(a).size <= 1


def named_operands(g, m, ref, ns):
    """The lines naming what ``m``'s scalar form reads more than once (a select's
    operands and product), inside the loop or after it (a total)."""
    if g[m].op == "masked_mul":             # product first, then a select: no branch
        return _masked_lines(g, m, ref, ns)
    if g[m].op == "max_share":
        return _share_lines(g, m, ref, ns)
    if g[m].op == "where":
        return _arm_lines(g, m, ref, ns)
    return []


def _masked_lines(g, m, ref, ns):
    """Name ``masked_mul``'s operands and their product, so that its scalar form
    ``p if w != 0 else 0.0`` is a select of two computed values (vectorizable).  With a
    bool mask the product is the operand itself (``x * True`` is ``x``): ``x if w else
    0.0``, no multiply (numba would compute ``float32 * bool`` in float64)."""
    lines = []
    x, w = g[m].args
    for a, hint in ((x, "grad"), (w, "mask")):
        text, prec = ref[a]
        if not text.isidentifier():
            name = ns.new(hint)
            lines.append(f"{name} = {text}")
            ref[a] = (name, 100)
    if g[w].dtype == np.bool_ and g[x].dtype == g[m].dtype:
        ref[("prod", m)] = ref[x]
        return lines
    prod = ns.new("prod")
    mul = f"{ref[x][0]} * {ref[w][0]}"
    if g[m].dtype == np.float32 and (g[x].dtype != np.float32 or g[w].dtype != np.float32):
        mul = f"np.float32({mul})"
    lines.append(f"{prod} = {mul}")
    ref[("prod", m)] = (prod, 100)
    return lines


def _arm_lines(g, m, ref, ns):
    """Name ``np.where``'s arms that read arrays or compute arithmetic, so that its
    scalar form ``a if c else b`` selects between two values without a branch (the
    loads in a branch become masked loads: measured 0.95 against 0.81 of the copy's
    time per byte at batch 65,536).  An arm that calls a function (``np.exp``) stays in
    its branch, computed only where selected."""
    lines = []
    for a, hint in zip(g[m].args[1:], ("if_true", "if_false")):
        text, prec = ref[a]
        if not text.isidentifier() and not literal_input(g, a) \
                and not re.search(r"\w\(", text.replace("np.float32(", "(")):   # np.exp(...)
            name = ns.new(hint)
            lines.append(f"{name} = {text}")
            ref[a] = (name, ATOM)
    return lines


def _share_lines(g, m, ref, ns):
    """Name ``max_share``'s share of the cotangent, ``ct * (0.5 + 0.5 * np.sign(x - y))``,
    so that its scalar form is ``0 if x < y else share``: a select of two values, which
    LLVM vectorizes without a branch (with the product inside the branch it reads the
    cotangent with masked loads, half the speed at batch 65,536)."""
    (ct, _), (x, _), (y, _) = (ref[a] for a in g[m].args)
    zero_y = literal_input(g, g[m].args[2]) and np.asarray(g[g[m].args[2]].value).item() == 0
    half = number_text(0.5, g[m].dtype)
    share = ns.new("share")
    ref[("share", m)] = (share, ATOM)
    # (x - 0 is x, also for -0.0 and nan: the NumPy target drops it too)
    add, mul = TABLE[ast.Sub], TABLE[ast.Mult]
    diff = x if zero_y else f"{wrap(x, add)} - {wrap(y, add + 1)}"
    return [f"{share} = {wrap(ct, mul)} * ({half} + {half} * np.sign({diff}))"]


def operand_dtype(g, a, user):
    """A scalar constant's dtype in the kernel: float32 next to float32 values (NEP 50)."""
    node = g[a]
    if not node.weak:
        return node.dtype
    others = [g[b].dtype for b in g[user].args if b != a and not g[b].weak]
    if node.dtype.kind in "iuf" and np.float32 in others:
        return np.dtype(np.float32)
    return np.dtype(np.float64) if node.dtype.kind in "iuf" else node.dtype


def member_text(g, m, ref):
    """Member ``m``'s scalar expression, its arguments read through ``ref``
    (value -> (text, precedence)), after :func:`named_operands` named what it selects."""
    node = g[m]
    prim = REGISTRY[node.op]
    tmpl = typed_literals(scalar_form(node.op), node.dtype)
    args = []
    for i, a in enumerate(node.args):
        text, prec = ref[a]
        need = min(prim.slot_prec(i, len(node.args), tmpl), 100)
        args.append(f"({text})" if prec < need else text)
    params = {k: _param_text(v) for k, v in node.params.items()}
    if node.op == "masked_mul":
        zero, w = number_text(0.0, node.dtype), g[node.args[1]]
        if w.dtype == np.bool_:
            return f"{ref[('prod', m)][0]} if {args[1]} else {zero}"
        return f"{ref[('prod', m)][0]} if {args[1]} != {number_text(0.0, w.dtype)} else {zero}"
    if node.op == "max_share":                  # 0 where x < y, even for an infinite ct
        zero = number_text(0.0, node.dtype)
        return f"{zero} if {args[1]} < {args[2]} else {ref[('share', m)][0]}"
    text = tmpl.format(*args, **params)
    if node.dtype == np.float32 and node.op != "astype":
        # (a float32 template's numbers are float32: typed_literals)
        values = node.args[1:] if node.op == "where" else node.args    # (not the condition)
        exact = node.op in _EXACT32 \
            and all(g[a].dtype == np.float32 or g[a].op == "const" for a in values)
        if not exact:
            text = f"np.float32({text})"    # numba computes in float64: round as NumPy does
    return text
