"""Products of structured control flow: generated code, evaluation, cost.

A ``scan`` node is written as a Python ``for`` loop over ``range(n)`` whose body
is the body graph's code (:func:`graphc.codegen.subgraph_lines`), its carry in
the variables the results are named by, ``ys`` written into arrays allocated
before the loop and the tape (the carry entering each step) written only when a
backward pass reads it.  ``proj`` nodes print nothing: the loop names them.
The interpreter (:func:`graphc.interpret.evaluate_node`) runs the same loop with
:func:`graphc.interpret.evaluate` on the body.
"""
from __future__ import annotations

import numpy as np

from ..codegen import Emitter
from ..primitive import type_str
from ..cost import graph_cost
from ..interpret import (NODE_EVALUATORS, NODE_EXPLAINERS, all_finite, evaluate,
                         explain_nonfinite)
from ..ir import SUBGRAPH_OPS
from ..passes import dce
from ..source_comments import where_short, with_comment
from .body import results_of
from .branches import branch_slices
from .scan import arg_slices
from .while_ import while_slices

__all__ = ["subgraph_lines", "emit_scan", "emit_while", "evaluate_scan", "evaluate_while", "trip_text"]


def subgraph_lines(em, graph, bound: dict, indent: str, last_expr=False, fixed=None):
    """Statements of a body (``graph``) written inline in ``em``'s function.

    ``bound`` maps each body input to the text it reads: a name (``h``) or an
    ``(expression, precedence)`` pair (``xs[t]``).  Names come from ``em``'s
    namespace, so body values never shadow the function's.  Returns
    ``(lines, output texts)``; with ``last_expr``, a single output computed by the
    last statement comes back as its expression instead (``while err > tol:``).
    """
    sub = getattr(em, "body_emitter", Emitter)(graph, inline=em.inline, names=em.ns)
    sub.fixed = dict(fixed or {})
    for nid, text in bound.items():
        if isinstance(text, tuple):
            sub.expr[nid] = text
        else:
            sub.name[nid] = text
    out, defines = [], {}            # {a statement's last line: its node}
    items = list(sub.body())
    if last_expr and items and items[-1][0] == graph.outputs[-1] and len(graph.outputs) == 1:
        nid, lines = items[-1]
        head = f"{sub.name[nid]} = "
        if len(lines) == 1 and lines[0].startswith(head) and graph[nid].op not in SUBGRAPH_OPS:
            items.pop()
            sub.expr[nid] = (lines[0][len(head):], 0)
    for nid, lines in items:
        node = graph[nid]
        if node.op in SUBGRAPH_OPS:
            out.extend(indent + line for line in lines)
            continue
        w = where_short(node.where)
        shape = type_str(node.shape, node.dtype)
        comment = f"{shape}  {w}" if w and node.section != "backward" else shape
        for k, line in enumerate(lines):
            out.append(indent + (with_comment(line, comment) if k == len(lines) - 1 else line))
        if lines:
            defines[out[-1]] = nid
    em.module_consts.extend(sub.module_consts)
    for attr in ("const_lines", "data_lines"):     # the array-API emitter's constants
        if hasattr(em, attr):
            getattr(em, attr).extend(getattr(sub, attr))
    record = getattr(em, "record_body", None)
    if record is not None:           # the trace's table: values of the body's lines
        record(graph, defines)
    return out, [sub.ref(o) for o in graph.outputs]


def carry_in_place(body, k, carry):
    """``{output node: carry variable}`` for carries whose new value can be assigned
    to the carry's own variable (``h = np.tanh(...)``, no ``h = h_1``): the old value
    is read by nothing after the statement that computes the new one."""
    fixed = {}
    outs = body.outputs
    for i in range(k):
        o, inp = outs[i], body.inputs[i]
        if body[o].op in ("input", "const", "proj", "setitem") or body[o].op in SUBGRAPH_OPS \
                or outs[:k].count(o) > 1 or inp in outs:
            continue
        before = body.ancestors(o) | {o}
        if all(u in before for u in body.users(inp)):
            fixed[o] = carry[i]
    return fixed


def _dtype_text(dtype) -> str:
    dtype = np.dtype(dtype)
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


def _pruned_body(node, used_y):
    """The body with only the ys the code stores (carries always stay)."""
    body = node.bodies[0]
    k = node.params["n_carry"]
    keep = body.outputs[:k] + [body.outputs[k + j] for j in used_y]
    if len(keep) == len(body.outputs):
        return body
    body = body.copy()
    body.outputs = keep
    return dce(body)


def trip_text(node) -> str:
    """``1000``, or ``n`` when the trip count is a runtime value."""
    n = node.params.get("length")
    return str(n) if n is not None else "n"


def _name_results(em, nid, res, tape_from, body, list_tape, k):
    """Name every used result after its user's name (the loop assigns them); a
    carry the user did not name after the body's parameter, a tape after its
    carry (``h_tape``)."""
    g = em.g
    names = {}
    for i, pid in sorted(res.items()):
        if g.n_uses(pid) == 0 and pid not in em.outputs:
            continue                # an unused result (the tape before any gradient)
        pnode = g[pid]
        wish = g.display_name(pid, em.name)
        if pnode.name or pnode.hint or pnode.adjoint_of is not None \
                or pnode.tangent_of is not None:
            pass                    # (dot_ys: the tangent of a result, in forward mode)
        elif i >= tape_from:
            j = i - tape_from
            carry = "carries" if list_tape else \
                names.get(j) or body.display_name(body.inputs[j])
            wish = f"{carry}_tape"
        elif i < k:
            wish = body.display_name(body.inputs[i])
        else:
            wish = "ys"
        names[i] = em.name[pid] = em.ns.new(wish)
    return names


def emit_scan(em, nid):
    """The statements of a ``scan`` node (see the module docstring)."""
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
    n_text = str(p["length"]) if p["length"] is not None else em.ref(args[lpos], 100) \
        if lpos is not None else None
    for j in used_y:
        a = body.aval(body.outputs[k + j])
        lines.append(f"{names[k + j]} = np.empty({(p['length'],) + tuple(a.shape)!r}, "
                     f"dtype={_dtype_text(a.dtype)})")
    tape_lines = _tape_lines(body, p, k, ny, names, carry, lines)
    t = em.ns.new("t")
    bound = dict(zip(sub.inputs[:k], carry))
    x_inputs = sub.inputs[k:k + p["n_x"]]
    if p["xs_list"]:
        targets = [em.ns.new(sub.display_name(i)) for i in x_inputs]
        bound.update(zip(x_inputs, targets))
        head = f"for {', '.join(targets)}{',' if len(targets) == 1 else ''} in " \
               f"reversed({em.ref(args[sx][0], 100)}):"
    else:
        bound.update((i, (f"{em.ref(a, 100)}[{t}]", 100)) for i, a in zip(x_inputs, args[sx]))
        rng = f"range({n_text})"
        if p["reverse"]:
            last = str(p["length"] - 1) if p["length"] is not None else f"{n_text} - 1"
            rng = f"range({last}, -1, -1)"
        head = f"for {t} in {rng}:"
    for i, a in zip(sub.inputs[k + p["n_x"]:], args[so]):
        bound[i] = em.ref(a) if a in em.name else em.expr[a]
    inner, refs = subgraph_lines(em, sub, bound, "    ", fixed=carry_in_place(sub, k, carry))
    tape_lines = [line.replace("{t}", t) for line in tape_lines]
    stores = [f"    {names[k + j]}[{t}] = {r}" for j, r in zip(used_y, refs[k:])]
    label = f"scan x {trip_text(node)}" + (", reversed" if p["reverse"] else "")
    w = where_short(node.where)
    lines.append(with_comment(head, f"{label}  {w}" if w else label))
    body_lines = tape_lines + inner + stores + _carry_update(carry, refs[:k])
    return lines + (body_lines or ["    pass"])


def _tape_lines(body, p, k, ny, names, carry, lines):
    """Allocate the tape (before the loop, into ``lines``); the in-loop writes."""
    if p["tape"] == "list":
        if k + ny not in names:
            return []
        lines.append(f"{names[k + ny]} = []")
        tup = ", ".join(carry) + ("," if len(carry) == 1 else "")
        return [f"    {names[k + ny]}.append(({tup}))"]
    out = []
    for i in range(k):
        if k + ny + i not in names:
            continue
        a = body.aval(body.inputs[i])
        lines.append(f"{names[k + ny + i]} = np.empty({(p['length'],) + tuple(a.shape)!r}, "
                     f"dtype={_dtype_text(a.dtype)})")
        out.append(f"    {names[k + ny + i]}[{{t}}] = {carry[i]}")
    return out


def _carry_update(carry, refs):
    pairs = [(c, r) for c, r in zip(carry, refs) if c != r]
    if not pairs:
        return []
    if len(pairs) == 1:
        return [f"    {pairs[0][0]} = {pairs[0][1]}"]
    return [f"    {', '.join(c for c, _ in pairs)} = {', '.join(r for _, r in pairs)}"]


def emit_while(em, nid):
    """A ``while`` node: ``while <cond>:`` (or ``while True:`` with a ``break`` when the
    condition takes several statements), the tape appended first in the body."""
    g = em.g
    node = g[nid]
    cond, body = node.bodies
    k = node.params["n_carry"]
    sc, soc, sob = while_slices(node)
    names = _name_results(em, nid, results_of(g, nid), k, body, True, k)
    carry = [names.get(i) or em.ns.new(body.display_name(body.inputs[i])) for i in range(k)]
    lines = [f"{c} = {em.ref(a)}" for c, a in zip(carry, node.args[sc])]
    tape = _tape_lines(body, {"tape": "list"}, k, 0, names, carry, lines)

    def bind(graph, outer):
        bound = dict(zip(graph.inputs[:k], carry))
        for i, a in zip(graph.inputs[k:], outer):
            bound[i] = em.ref(a) if a in em.name else em.expr[a]
        return bound
    test, refs = subgraph_lines(em, cond, bind(cond, node.args[soc]), "    ", last_expr=True)
    w = where_short(node.where)
    label = "while_loop" + (f"  {w}" if w else "")
    if test:
        head = "while True:"
        test += [f"    if not {refs[0]}:", "        break"]
    else:
        head = f"while {refs[0]}:"
    inner, out = subgraph_lines(em, body, bind(body, node.args[sob]), "    ",
                                fixed=carry_in_place(body, k, carry))
    lines.append(with_comment(head, label))
    return lines + test + tape + inner + _carry_update(carry, out[:k]) + \
        (["    pass"] if not (test or tape or inner) and carry == out[:k] else [])


def emit_cond(em, nid):
    """A ``cond`` node: ``if pred:`` / ``else:`` (``switch``: an ``if``/``elif`` chain on
    the clamped index), each branch assigning the results' variables."""
    g = em.g
    node = g[nid]
    res = {i: p for i, p in results_of(g, nid).items()
           if g.n_uses(p) or p in em.outputs}
    used = sorted(res)
    names = {}
    for i in used:
        names[i] = em.name[res[i]] = em.ns.new(g.display_name(res[i], em.name)
                                                if g[res[i]].name or g[res[i]].adjoint_of
                                                is not None or g[res[i]].tangent_of is not None
                                                else "branch_result")
    sops, souts = branch_slices(node)
    index = em.ref(node.args[0], 0)
    lines, n = [], len(node.bodies)
    w = where_short(node.where)
    label = node.params["kind"] + (f"  {w}" if w else "")
    if node.params["kind"] == "cond":
        heads, order = [f"if {index}:", "else:"], [1, 0]
    else:
        var = em.ns.new("branch")
        lines.append(with_comment(f"{var} = min(max(int({index}), 0), {n - 1})", label))
        heads = [f"if {var} == {b}:" for b in range(n - 1)]
        heads = heads[:1] + ["el" + h for h in heads[1:]] + ["else:"]
        order = list(range(n))
    for k, (head, b) in enumerate(zip(heads, order)):
        graph = _used_outputs(node.bodies[b], used)
        bound = {}
        for i, a in zip(graph.inputs, list(node.args[sops]) + list(node.args[souts[b]])):
            bound[i] = em.ref(a) if a in em.name else em.expr[a]
        outs = graph.outputs
        fixed = {o: names[i] for i, o in zip(used, outs) if outs.count(o) == 1
                 and graph[o].op not in ("input", "const", "proj", "setitem")
                 and graph[o].op not in SUBGRAPH_OPS}
        inner, refs = subgraph_lines(em, graph, bound, "    ", fixed=fixed)
        lines.append(with_comment(head, label) if k == 0 and node.params["kind"] == "cond"
                     else head)
        lines += inner + _carry_update([names[i] for i in used], refs)
        if not inner and not used:
            lines.append("    pass")
    return lines


def _used_outputs(body, used):
    if len(used) == len(body.outputs):
        return body
    body = body.copy()
    body.outputs = [body.outputs[i] for i in used]
    return dce(body)


def _emit_proj(em, nid):
    """Nothing: the loop assigned the result's variable (an unused result has none)."""
    return []


# --- evaluation -----------------------------------------------------------------------
def _run_body(body, leaves):
    values = evaluate(body, leaves)
    return [values[o] for o in body.outputs]


def evaluate_scan(graph, nid, args):
    """The results of a ``scan`` node: the loop run with the interpreter."""
    node = graph[nid]
    p = node.params
    body = node.bodies[0]
    k, ny = p["n_carry"], p["n_y"]
    si, sx, so, lpos = arg_slices(node)
    carry, xs, outer = list(args[si]), list(args[sx]), list(args[so])
    tape, ys = [], [[] for _ in range(ny)]
    if p["xs_list"]:
        steps = [list(e) for e in reversed(xs[0])]
    else:
        n = p["length"] if p["length"] is not None else int(args[lpos])
        order = range(n - 1, -1, -1) if p["reverse"] else range(n)
        steps = [(t, [x[t] for x in xs]) for t in order]
    for step in steps:
        t, x = (None, step) if p["xs_list"] else step
        tape.append(tuple(carry))
        out = _run_body(body, carry + x + outer)
        carry = out[:k]
        for j in range(ny):
            ys[j].append((t, out[k + j]))
    results = list(carry)
    for j in range(ny):
        a = body.aval(body.outputs[k + j])
        stacked = np.empty((p["length"],) + tuple(a.shape), a.dtype)
        for t, y in ys[j]:
            stacked[t] = y
        results.append(stacked)
    if p["tape"] == "list":
        results.append(tape)
    else:
        results += [_stack_tape(tape, i, body.aval(body.inputs[i]), p) for i in range(k)]
    return tuple(results)


def evaluate_while(graph, nid, args):
    """The results of a ``while`` node: the loop run with the interpreter."""
    node = graph[nid]
    cond, body = node.bodies
    sc, soc, sob = while_slices(node)
    carry, tape = list(args[sc]), []
    while bool(_run_body(cond, carry + list(args[soc]))[0]):
        tape.append(tuple(carry))
        carry = _run_body(body, carry + list(args[sob]))
    return tuple(carry) + (tape,)


def evaluate_cond(graph, nid, args):
    """The results of a ``cond`` node: the branch taken, run with the interpreter."""
    node = graph[nid]
    sops, souts = branch_slices(node)
    n = len(node.bodies)
    b = int(bool(args[0])) if node.params["kind"] == "cond" else \
        min(max(int(args[0]), 0), n - 1)
    return tuple(_run_body(node.bodies[b], list(args[sops]) + list(args[souts[b]])))


def explain_scan(graph, nid, args, fn_label):
    """The NonFiniteError of the first step of a scan whose body made a NaN or an
    infinity from finite values, found by running the loop again step by step."""
    node = graph[nid]
    p = node.params
    if p["xs_list"]:
        return None
    body = node.bodies[0]
    k = p["n_carry"]
    si, sx, so, lpos = arg_slices(node)
    carry, xs, outer = list(args[si]), list(args[sx]), list(args[so])
    n = p["length"] if p["length"] is not None else int(args[lpos])
    for t in (range(n - 1, -1, -1) if p["reverse"] else range(n)):
        leaves = carry + [x[t] for x in xs] + outer
        out = _run_body(body, leaves)
        if not all_finite(out) and all_finite(leaves):
            err = explain_nonfinite(body, leaves, f"{fn_label} (step {t} of the scan)")
            return err
        carry = out[:k]
    return None


def _stack_tape(tape, i, aval, p):
    out = np.empty((p["length"],) + tuple(aval.shape), aval.dtype)
    order = range(p["length"] - 1, -1, -1) if p["reverse"] else range(p["length"])
    for t, entry in zip(order, tape):
        out[t] = entry[i]
    return out


def _evaluate_proj(graph, nid, args):
    return args[0][graph[nid].params["index"]]


# --- cost -------------------------------------------------------------------------------
def scan_cost(graph, nid):
    """FLOPs of a scan: its body's, times its trip count (once when it is not static)."""
    node = graph[nid]
    n = node.params.get("length")
    return graph_cost(node.bodies[0]).total_flops * (n if n is not None else 1)


def while_cost(graph, nid):
    """FLOPs of a while_loop: one trip of condition and body (the trip count is not
    known before it runs)."""
    cond, body = graph[nid].bodies
    return graph_cost(cond).total_flops + graph_cost(body).total_flops


def draw_bodies(dot, graph, nid, esc):
    """Each body of loop/branch ``nid`` as one cluster labelled with the form and trip
    count ("scan × 1000"), its outputs joined to the loop's node by dotted edges."""
    node = graph[nid]
    label = SUBGRAPH_OPS[node.op].label(node)
    for b, body in enumerate(node.bodies):
        prefix = f"{nid}_body{b}_"
        with dot.subgraph(name=f"cluster_{prefix}") as c:
            part = f" (branch {b})" if node.op == "cond" else \
                " (condition)" if node.op == "while" and b == 0 else ""
            c.attr(label=esc(label + part), style="rounded,dashed", color="#7c3aed",
                   fontsize="11")
            for bid in body.order():
                bnode = body[bid]
                text = body.display_name(bid) if bnode.op in ("input", "const") else \
                    f"{body.display_name(bid)} = {bnode.op}"
                c.node(prefix + str(bid), esc(text) + "\\n" + type_str(bnode.shape, bnode.dtype),
                       shape="box", fontsize="9")
            for bid in body.order():
                for a in body[bid].args:
                    c.edge(prefix + str(a), prefix + str(bid))
        for o in body.outputs:
            dot.edge(prefix + str(o), str(nid), style="dotted", color="#7c3aed")


def _install():
    from ..passes import LOOP_PASSES
    from .prune import prune_loops
    LOOP_PASSES.append(prune_loops)
    scan_h, proj_h = SUBGRAPH_OPS["scan"], SUBGRAPH_OPS["proj"]
    scan_h.emit, scan_h.evaluate, scan_h.cost = emit_scan, evaluate_scan, scan_cost
    scan_h.label = lambda node: f"scan × {trip_text(node)}"
    proj_h.emit, proj_h.evaluate = _emit_proj, _evaluate_proj
    proj_h.cost = lambda graph, nid: 0
    proj_h.label = lambda node: f"[{node.params['index']}]"
    cond_h = SUBGRAPH_OPS["cond"]
    cond_h.emit, cond_h.evaluate = emit_cond, evaluate_cond
    cond_h.cost = lambda graph, nid: max(graph_cost(b).total_flops for b in graph[nid].bodies)
    cond_h.label = lambda node: f"{node.params['kind']} ({len(node.bodies)} branches)"
    NODE_EVALUATORS["cond"] = evaluate_cond
    while_h = SUBGRAPH_OPS["while"]
    while_h.emit, while_h.evaluate, while_h.cost = emit_while, evaluate_while, while_cost
    while_h.label = lambda node: "while_loop × n"
    NODE_EVALUATORS["while"] = evaluate_while
    NODE_EVALUATORS["scan"] = evaluate_scan
    NODE_EXPLAINERS["scan"] = explain_scan
    for h in (scan_h, while_h, cond_h):
        h.draw = draw_bodies
    NODE_EVALUATORS["proj"] = _evaluate_proj


_install()
