"""Loops, branches and guards for the ``"array-api"`` target (functional code).

The NumPy target (:mod:`graphc.control.emit`) allocates a scan's ``ys`` and tape
with ``np.empty`` before the loop and writes each step into them in place.  The
array-API module is functional, so a scan collects each step's ``ys`` (and the
carries a backward pass reads) in Python lists and stacks them after the loop::

    h = h0
    h_tape = []
    for t in range(1000):                            # scan x 1000
        h_tape.append(h)
        h = xp.tanh(xs[t] @ Wx + h @ Wh + b)
    h_tape = xp.stack(h_tape)

A reversed scan appends in its own order and stacks the list reversed
(``xp.stack(ys[::-1])``), so ``ys[t]`` is step ``t``'s.  ``while_loop``,
``cond`` and ``switch`` need nothing new (their bodies are written by
:func:`graphc.control.emit.subgraph_lines` with the array-API emitter); their
tests, and a guard's, read a 0-d array's value through ``_decide`` (written into
the module), which names the problem when the array has no value yet (a tracer
under ``jax.jit``).
"""
from __future__ import annotations

import math


from ..codegen_guards import GUARD_CLASS
from ..ops.guard import read_as
from ..source_comments import where_short, with_comment
from ..xp_emit import xp_dtype
from .body import results_of
from .emit import (_carry_update, _name_results, _pruned_body, carry_in_place, emit_cond,
                   emit_while, subgraph_lines, trip_text)
from .scan import arg_slices

__all__ = ["XP_CONTROL", "emit_scan_xp", "guard_lines_xp"]


def _stacked(name, p, aval):
    """``name = xp.stack(name)`` after the loop (reversed order for a reversed scan; an
    empty scan gives zeros of the stacked shape)."""
    src = f"{name}[::-1]" if p["reverse"] else name
    if p["length"] == 0:
        return f"{name} = xp.zeros({(0,) + tuple(aval.shape)!r}, dtype={xp_dtype(aval.dtype)}, " \
               "device=_device)"
    return f"{name} = xp.stack({src})"


def emit_scan_xp(em, nid):
    """A ``scan`` node, functionally (see the module docstring)."""
    g = em.g
    node = g[nid]
    p = node.params
    body = node.bodies[0]
    k, ny = p["n_carry"], p["n_y"]
    si, sx, so, lpos = arg_slices(node)
    args = node.args
    res = results_of(g, nid)
    names = _name_results(em, nid, res, k + ny, body, p["tape"] == "list", k)
    carry = [names.get(i) or em.ns.new(body.display_name(body.inputs[i])) for i in range(k)]
    used_y = [j for j in range(ny) if k + j in names]
    sub = _pruned_body(node, used_y)
    lines = [f"{c} = {em.ref(a)}" for c, a in zip(carry, args[si])]
    after = []
    n_text = str(p["length"]) if p["length"] is not None else em.ref(args[lpos], 100) \
        if lpos is not None else None
    for j in used_y:
        lines.append(f"{names[k + j]} = []")
        after.append(_stacked(names[k + j], p, body.aval(body.outputs[k + j])))
    tape_lines = []
    if p["tape"] == "list":
        if k + ny in names:
            lines.append(f"{names[k + ny]} = []")
            tup = ", ".join(carry) + ("," if len(carry) == 1 else "")
            tape_lines.append(f"    {names[k + ny]}.append(({tup}))")
    else:
        for i in range(k):
            if k + ny + i in names:
                lines.append(f"{names[k + ny + i]} = []")
                tape_lines.append(f"    {names[k + ny + i]}.append({carry[i]})")
                after.append(_stacked(names[k + ny + i], p, body.aval(body.inputs[i])))
    t = em.ns.new("t")
    bound = dict(zip(sub.inputs[:k], carry))
    x_inputs = sub.inputs[k:k + p["n_x"]]
    if p["xs_list"]:
        targets = [em.ns.new(sub.display_name(i)) for i in x_inputs]
        bound.update(zip(x_inputs, targets))
        head = f"for {', '.join(targets)}{',' if len(targets) == 1 else ''} in " \
               f"reversed({em.ref(args[sx][0], 100)}):"
    else:
        bound.update((i, (f"{em.ref(a, 100)}[{t}, ...]", 100)) for i, a in zip(x_inputs, args[sx]))
        rng = f"range({n_text})"
        if p["reverse"]:
            last = str(p["length"] - 1) if p["length"] is not None else f"{n_text} - 1"
            rng = f"range({last}, -1, -1)"
        head = f"for {t} in {rng}:"
    for i, a in zip(sub.inputs[k + p["n_x"]:], args[so]):
        bound[i] = em.ref(a) if a in em.name else em.expr[a]
    inner, refs = subgraph_lines(em, sub, bound, "    ", fixed=carry_in_place(sub, k, carry))
    stores = [f"    {names[k + j]}.append({r})" for j, r in zip(used_y, refs[k:])]
    label = f"scan x {trip_text(node)}" + (", reversed" if p["reverse"] else "")
    w = where_short(node.where)
    lines.append(with_comment(head, f"{label}  {w}" if w else label))
    body_lines = tape_lines + inner + stores + _carry_update(carry, refs[:k])
    return lines + (body_lines or ["    pass"]) + after


def _split(line):
    """``(code, comment text)`` of a generated line (``None``: no comment)."""
    at = line.find("# ")
    return (line, None) if at < 0 else (line[:at].rstrip(), line[at + 2:])


def _join(code, comment):
    return code if comment is None else with_comment(code, comment)


def emit_while_xp(em, nid):
    """A ``while_loop``: the NumPy form with its test read through ``_decide``."""
    where = where_short(em.g[nid].where) or "while_loop"
    out = []
    for line in emit_while(em, nid):
        code, comment = _split(line)
        if code.startswith("while ") and code != "while True:":
            line = _join(f"while _decide({code[6:-1]}, bool, {where!r}):", comment)
        elif code.startswith("    if not ") and code.endswith(":"):   # the test before break
            line = _join(f"    if not _decide({code[11:-1]}, bool, {where!r}):", comment)
        out.append(line)
    return out


def emit_cond_xp(em, nid):
    """A ``cond`` / ``switch``: the NumPy form with its test read through ``_decide``."""
    node = em.g[nid]
    where = where_short(node.where) or node.params["kind"]
    n = len(node.bodies)
    out = []
    for line in emit_cond(em, nid):
        code, comment = _split(line)
        tail = f"), 0), {n - 1})"
        if code.startswith("if ") and node.params["kind"] == "cond":
            line = _join(f"if _decide({code[3:-1]}, bool, {where!r}):", comment)
        elif not code.startswith(" ") and " = min(max(int(" in code and code.endswith(tail):
            var, _, rest = code.partition(" = min(max(int(")
            line = _join(f"{var} = min(max(_decide({rest[:-len(tail)]}, int, {where!r}), 0), "
                         f"{n - 1})", comment)
        out.append(line)
    return out


def _number(v) -> str:
    if isinstance(v, float) and math.isinf(v):
        return 'float("inf")' if v > 0 else '-float("inf")'
    if isinstance(v, float) and math.isnan(v):
        return 'float("nan")'
    return repr(v)


def guard_lines_xp(em, nid, node) -> list:
    """A guard's check, its predicate's value read through ``_decide``."""
    pred = node.args[0]
    expected = node.params["expected"]
    kind = read_as(expected)
    where = where_short(node.where) or "?"
    cond = em.ref(pred, 0)
    value = f"_decide({cond}, {kind}, {where!r})"
    if kind == "bool":
        test = f"not {value}" if expected else value
        value = repr(not expected)
    else:
        test = f"{value} != {_number(expected)}"
    text = cond if kind == "bool" else f"{kind}({cond})"
    lines = [f"if {test}:",
             f"    raise {GUARD_CLASS}({int(node.params['index'])}, "
             f"{value}, {_number(expected)}, {text!r}, {where!r})"]
    if em.g.n_uses(nid) or nid in em.outputs:
        name = em.ns.new("guard")
        em.name[nid] = name
        lines.append(f"{name} = True")
    return lines


#: ``{op: emit(em, nid)}`` of the structured ops on the array-API target.
XP_CONTROL = {"scan": emit_scan_xp, "while": emit_while_xp, "cond": emit_cond_xp}

