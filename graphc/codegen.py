"""Graph -> readable NumPy module text, and executing it.

Codegen assembles lines; each primitive's record formats one expression (or a
few statements).  Values used once, in the same section, that the user did
not name are inlined into their user's expression (parenthesized by
precedence), so generated forward code reads like the user's own.  Output is
deterministic: the same graph always gives the same text.
"""
from __future__ import annotations

import functools
import os

from .entry_checks import ENTRY_HELPERS, entry_checks, signature_text
from .codegen_guards import GUARD_CLASS, GUARD_HELPERS, guard_lines, guard_trace_line, has_guards
from .codegen_workspace import WORKSPACE_HELPERS, fresh_node, use_workspace
from .codegen_scalar import math_helpers, math_prefix, weak_inputs_to_numpy as _weak_inputs_to_numpy
from .codegen_writes import inplace_write
from .codegen_forms import full_operand_args, full_operand_call, seed_adds, with_full_operands
from .ir import SUBGRAPH_OPS, install_product
from .literals import const_text, default_text, holds_array, tree_text
from .naming import Namespace, sanitize
from .precedence import prec_of
from .primitive import REGISTRY, type_str
from .signature import leaf_access, leaf_name
from .source_comments import cached_source_text, where_short, with_comment
from .symdims import nbytes as _nbytes   # (the size the del/out= choices see)

__all__ = ["generate", "generate_module", "graph_text"]

_MAX_INLINE = 60
_FREE_BYTES = 1 << 17          # values this large are deleted after their last use
_REUSE_BYTES = 1 << 17         # results this large are written into a dead argument (out=)


# --- emission core -----------------------------------------------------------------
class _Emitter:
    def __init__(self, graph, inline=True, names=None):
        self.g = graph
        self.inline = inline
        self.ns = names or Namespace()
        self.name: dict[int, str] = {}
        self.expr: dict[int, tuple[str, int]] = {}   # inlined / literal expressions
        self.module_consts: list[str] = []
        self.outputs = set(graph.outputs)
        self.edge_count = graph.use_counts()
        self.donated: set[int] = set()    # nodes whose variable a later write took over
        self.fixed: dict[int, str] = {}   # names chosen in advance (a loop's carry variables)

    def ref(self, nid, min_prec=0):
        if nid in self.expr:
            text, prec = self.expr[nid]
            return f"({text})" if prec < min_prec else text
        return self.name[nid]

    def node_expr(self, nid, out_name):
        node = (nodes := self.g.node_map())[nid]
        prim = REGISTRY[node.op]
        args = node.args
        avals = [nodes[a].aval for a in args]
        if (text := full_operand_call(self, nid)) is not None:   # np.maximum(zeros, a)
            return text, 100              # (graphc/codegen_forms.py; NumPy target)
        if callable(prim.numpy):
            texts = [self.ref(a, 0) for a in args]
            atoms = [self.ref(a, 100) for a in args]
            return prim.emit(texts, out_name, avals, node.aval, node.params, atoms), prim.prec
        texts = [self.ref(a, p) for a, p in zip(args, prim.slot_precs(len(args)))]
        return prim.emit(texts, out_name, avals, node.aval, node.params), prim.prec

    def constant(self, nid):
        node = self.g[nid]
        aval = self.g.aval(nid)
        text = const_text(node.value, aval)
        if aval.size <= 1 or len(text) <= 60 and not text.startswith("np.eye("):  # eye: built once
            self.expr[nid] = (text, prec_of(text))
            return None
        name = self.ns.new(node.name or node.hint or "const")
        self.name[nid] = name
        self.module_consts.append(f"{name} = {text}")
        return name

    def names_adjoint(self, node):
        """The node is the adjoint (tangent) of a value that has a visible name (it reads
        ``d_<name>``, ``dot_<name>``)."""
        return (node.adjoint_of is not None and node.adjoint_of in self.name
                or node.tangent_of is not None and node.tangent_of in self.name)

    def can_inline(self, nid, node):
        if not self.inline or nid in self.outputs or self.edge_count.get(nid, 0) != 1:
            return False
        if node.name or self.names_adjoint(node):
            return False
        user = next(iter(self.g.users(nid)))
        unode = self.g[user]
        if unode.section != node.section or unode.op in SUBGRAPH_OPS \
                or REGISTRY[unode.op].never_inline_args:
            return False
        return True

    def body(self, skip=()):
        """Yield ``(nid, lines)`` for every materialized node in program order."""
        for nid, node in self.g.nodes():
            op = node.op
            if op == "input" or nid in skip:
                continue
            if op == "const":
                self.constant(nid)
                continue
            if op in SUBGRAPH_OPS:        # a loop or branch (graphc/control/emit.py)
                yield nid, SUBGRAPH_OPS[op].emit(self, nid)
                continue
            if op == "guard":             # a decision the trace took (graphc/codegen_guards.py)
                yield nid, (guard_lines if self.inline else guard_trace_line)(self, nid, node)
                continue
            if op == "setitem" and (lines := inplace_write(self, nid, node)) is not None:
                yield nid, lines          # y[i] = v in place (graphc/codegen_writes.py)
                continue
            emitted, prec = self.node_expr(nid, "{out}")
            if isinstance(emitted, str) and self.can_inline(nid, node) and len(emitted) <= _MAX_INLINE:
                self.expr[nid] = (emitted, prec)
                continue
            name = self.fixed.get(nid) or self.ns.new(self.g.display_name(nid, self.name))
            self.name[nid] = name
            if isinstance(emitted, str):
                lines = [f"{name} = {emitted}"]
            else:
                lines = [line.replace("{out}", name) for line in emitted]
            yield nid, lines


Emitter = _Emitter      # graphc/control/emit.py writes loop bodies with it


def _frees(em: _Emitter, items):
    """{statement index: names to ``del`` after it}: large values at their last use.

    A value computed for the backward pass would otherwise stay alive until the
    function returns; freeing it where it is last read lowers peak memory (and lets
    NumPy's allocator hand the block to the next temporary).  Only arrays of at least
    ``_FREE_BYTES`` get a ``del`` line, so small graphs read exactly as before.
    """
    g = em.g
    stmt = {nid: i for i, (nid, _) in enumerate(items)}

    where_used = functools.partial(_where_used, g, stmt)   # (inlined: its user's statement)
    frees: dict[int, list[str]] = {}
    outputs = set(g.outputs)
    for nid, _ in items:
        node = g[nid]
        nbytes = _nbytes(node)
        if nid in outputs or nbytes < _FREE_BYTES or nid in em.donated:
            continue
        users = list(g.users(nid))
        if users:
            frees.setdefault(max(where_used(u) for u in users), []).append(em.name[nid])
    return frees


def _fresh(op) -> bool:
    """The op's result is always a fresh array nothing else refers to (its record says)."""
    prim = REGISTRY.get(op)
    return prim is not None and prim.fresh_result


def _where_used(g, stmt, nid):
    """The statement index where ``nid``'s value is used (through inlined expressions)."""
    while nid not in stmt:
        nid = next(iter(g.users(nid)))
    return stmt[nid]


def _read_after(g, stmt, outputs, nid, i, depth=0):
    """Is ``nid``'s buffer read after statement ``i``, directly or through a view?
    (An output is read after every statement: by the caller.)"""
    if nid in outputs:
        return True
    for u in g.users(nid):
        if _where_used(g, stmt, u) > i:
            return True
        if not _fresh(g[u].op) and (depth > 20 or _read_after(g, stmt, outputs, u, i,
                                                               depth + 1)):
            return True
    return False


def _reuse(em: _Emitter, items):
    """{statement index: (donor name, new text)}: write a result into a dead argument.

    A large elementwise result whose argument dies at this very statement is
    written into that argument's buffer (``h = np.maximum(a, 0.0, out=a)``)
    instead of a fresh array: no new allocation, and no page faults on memory the
    allocator just handed back to the system.  The argument qualifies only if it
    is a fresh array of the same shape and dtype (no view, no input, no output)
    and no view of it is read later.  Results under ``_REUSE_BYTES`` are left alone.
    """
    g = em.g
    stmt = {nid: i for i, (nid, _) in enumerate(items)}
    outputs = set(g.outputs)
    # (module functions, not closures: a recursive closure is a reference cycle that
    # would keep the graph alive, after its entry is dropped, until the collector runs)
    where_used = functools.partial(_where_used, g, stmt)
    read_after = functools.partial(_read_after, g, stmt, outputs)

    out = {}
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        prim = REGISTRY.get(node.op)
        if prim is None or prim.inplace_ufunc is None or len(lines) != 1 or not node.shape:
            continue
        nbytes = _nbytes(node)
        if nbytes < _REUSE_BYTES:
            continue
        for a in node.args:
            an = g[a]
            if (a in em.name and a not in outputs and fresh_node(g, a) and a not in em.expr
                    and tuple(an.shape) == tuple(node.shape) and an.dtype == node.dtype
                    and max(where_used(u) for u in g.users(a)) == i
                    and not read_after(a, i)):
                args = full_operand_args(em, nid, [em.ref(x, 0) for x in node.args]
                                         + list(prim.inplace_extra_args), any_layout=True)
                text = f"{prim.inplace_ufunc}({', '.join(args)}, out={em.name[a]})"
                out[i] = (em.name[a], f"{em.name[nid]} = {text}")
                break
    return out


def _body_lines(em: _Emitter, indent="    ", free=False, reuse=True, rewrite=None):
    """Lines of the function body, with shape comments and grad-of headers (``free``: ``del``
    large values after their last use; ``reuse``: write into dead ones, else ``rewrite``)."""
    out = []
    last_block = None
    g = em.g
    items = list(em.body())
    frees = _frees(em, seed_adds(em, items)) if free else {}   # (codegen_forms.py)
    if free and reuse:
        moved = use_workspace(em, items, _reuse(em, items))     # out= reuse, then kept buffers
        for i in moved:             # a ReLU check's exact path now reads its operands in i + 1
            if i in frees:
                frees.setdefault(i + 1, [])[:0] = frees.pop(i)
    elif free and rewrite is not None:      # the array-API target's (xp_workspace.py)
        rewrite(em, items)
    heads, shapes = {}, {}          # (one source line and type per where / aval: cached)
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        shape = shapes.get(a := node.aval) or shapes.setdefault(a, type_str(a.shape, a.dtype))
        if node.section in ("backward", "tangent"):
            label = _head_label(g, node)
            block = (label, node.where or node.grad_of)
            if block != last_block:
                head = cached_source_text(node.where, heads) or _forward_text(em, node.grad_of)
                if node.section == "backward":
                    out.append("")
                out.append(f"{indent}# {label}: {head}")
                last_block = block
            comment = shape
        else:
            if last_block is not None and last_block[0].startswith("tangent"):
                out.append("")            # forward mode: one block per forward line
            last_block = None
            w = where_short(node.where)
            comment = f"{shape}  {w}" if w else shape
        if node.op in SUBGRAPH_OPS:       # a loop or branch comments its own lines
            out.extend(indent + line for line in lines)
            lines = ()
        at = len(lines) - 1
        if node.op == "guard":            # the user's line, on the `if` line of the check
            at, comment = 0, where_short(node.where) or "guard"
        for k, line in enumerate(lines):
            out.append(indent + (with_comment(line, comment) if k == at else line))
        if i in frees:
            out.append(f"{indent}del {', '.join(frees[i])}")
    return out


def _head_label(g, node):
    """``grad of`` (a backward block), ``tangent of`` (forward mode), ``tangent of grad of``."""
    if node.section == "backward":
        return "grad of"
    primal = node.grad_of
    if primal is not None and primal in g and g[primal].section == "backward":
        return "tangent of grad of"
    return "tangent of"


_STRUCTURED = {"while": "while_loop", "fori": "fori_loop"}


def _forward_text(main, nid):
    """The forward statement a backward block differentiates, when the user's
    source line is not available (code typed at a prompt, exec'd strings)."""
    g = main.g
    if nid is None or nid not in g:
        return "(value)"
    node = g[nid]
    if node.op not in REGISTRY:      # a loop or branch (graphc/control): no one-line form
        return f"graphc.{_STRUCTURED.get(node.op, node.op)}(...)"
    em = _Emitter(g, inline=False)
    for a in node.args:
        if g[a].op == "const":
            em.constant(a)
        else:
            em.name[a] = main.name.get(a) or sanitize(g.display_name(a, main.name))
    out = main.name.get(nid) or sanitize(g.display_name(nid, main.name))
    text, _ = em.node_expr(nid, out)
    return f"{out} = {text}" if isinstance(text, str) else f"{out} = {node.op}(...)"


# --- whole modules ------------------------------------------------------------------
def _reserve_inputs(g, em: _Emitter, sig):
    """Name the inputs (``sig``'s parameter names); return the unpacking lines of pytree arguments."""
    lines = []
    if sig is None:
        for nid in g.inputs:
            em.name[nid] = em.ns.new(g.display_name(nid))
        return lines
    for p in sig.params:
        em.ns.reserve(sanitize(p.name))
    for nid, path in zip(g.inputs, sig.leaf_paths):
        if len(path) == 1:
            em.name[nid] = sanitize(sig.params[path[0]].name)
        else:
            em.name[nid] = em.ns.new(leaf_name(sig, path))
            lines.append(f"{em.name[nid]} = {leaf_access(sig, path)}")
    for nid in _closure_nodes(g):
        em.name[nid] = em.ns.new(g[nid].closure)
    return lines


def _closure_nodes(g):
    """Input nodes of closed-over arrays still in the graph, in trace order."""
    sig = g.signature
    return [nid for nid, _, _ in (sig.closures if sig is not None else ()) if nid in g]


def _def_line(g, sig, func_name, module_lines=None, ns=None, bindings=None, closure=()):
    if sig is None:
        return f"def {func_name}({', '.join(sanitize(g.display_name(n)) for n in g.inputs)}):"
    import inspect
    parts, star_done = [], False
    for p in sig.params:
        name = sanitize(p.name)
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            parts.append("*" + name)
            star_done = True
        elif p.kind == inspect.Parameter.VAR_KEYWORD:
            parts.append("**" + name)
        else:
            if p.kind == inspect.Parameter.KEYWORD_ONLY and not star_done:
                parts.append("*")
                star_done = True
            d = p.default
            if d is inspect.Parameter.empty:
                parts.append(name)
                continue
            text = default_text(d)
            if module_lines is not None and (len(text) > 40 or holds_array(d)):
                # Array defaults live at module level under unique names (w and W
                # would both be W_DEFAULT); in-process they are bound to the
                # user's own default object, so later writes into it are seen.
                mod = f"{name.upper()}_DEFAULT"
                mod = ns.new(mod) if ns is not None else mod
                module_lines.append(f"{mod} = {text}")
                if bindings is not None:
                    bindings[len(module_lines) - 1] = (mod, d)
                text = mod
            parts.append(f"{name}={text}")
    if closure:
        # Closed-over arrays: keyword-only parameters whose defaults are the values
        # seen at trace time (a compiled callable passes the current ones).
        at = next((i for i, p in enumerate(parts) if p.startswith("**")), len(parts))
        extra = [] if star_done else ["*"]
        for nid, name in closure:
            value = g[nid].value
            mod = ns.new(f"{name.upper()}_DEFAULT")
            module_lines.append(f"{mod} = {default_text(value)}")
            bindings[len(module_lines) - 1] = (mod, value)
            extra.append(f"{name}={mod}")
        parts[at:at] = extra
    return f"def {func_name}({', '.join(parts)}):"


def _return_expr(g, em: _Emitter):
    sig = g.signature
    refs = []
    for nid in g.outputs:
        text = em.ref(nid)
        op = g[nid].op
        if op == "broadcast_to":   # never hand the user a read-only broadcast view
            text = f"np.array({text})"
        elif op == "const" and nid in em.name:   # nor a module-level constant to mutate
            text = f"{text}.copy()"
        refs.append(text)
    if sig is None or sig.out_treedef is None:
        return ", ".join(refs) if len(refs) != 1 else refs[0]
    it = iter(refs)
    return tree_text(sig.out_treedef, it, top=True)


class Module:
    """Generated module text, and the variant a compiled callable executes.

    ``fast`` is ``source`` with the entry-check lines and the module-level
    default arrays blanked (same line numbers, so tracebacks point into
    ``source``): the compiled callable's cache key has already checked the
    signature, and ``bindings`` binds each default's name to the user's own
    default object instead of a copy.  ``closure_params`` lists the keyword
    parameter and node of each closed-over array, which the caller passes.
    """

    def __init__(self, source, fast, bindings, closure_params=(), body_end=None):
        self.source, self.fast, self.bindings = source, fast, bindings
        self.closure_params = list(closure_params)
        # index of the first line after the function (the helpers: graphc/guard_paths.py
        # puts several paths' functions in one module around one copy of them)
        self.body_end = body_end


def generate(g, func_name: str, doc: str = "", source_file: str | None = None) -> str:
    """The module text for graph ``g`` as a function named ``func_name``."""
    return generate_module(g, func_name, doc, source_file).source


def generate_module(g, func_name: str, doc: str = "", source_file: str | None = None,
                    signature=None) -> Module:
    """:func:`generate`, with the variant compiled callables execute.

    ``signature`` (default ``g.signature``) is the one the generated ``def`` is
    written for: compiled callables pass one with sanitized, distinct names.
    """
    sig = g.signature if signature is None else signature
    em = with_full_operands(_Emitter(g))      # (graphc/codegen_forms.py)
    em.ns.reserve(func_name)
    guarded = has_guards(g)
    if guarded:
        em.ns.reserve(GUARD_CLASS)
    unpack = _reserve_inputs(g, em, sig)
    body = _body_lines(em, free=True)
    ret = _return_expr(g, em)
    workspace = any("_buffer(" in line for line in body)      # codegen_workspace.py
    prefix = math_prefix(g, em, func_name, unpack)    # Python floats: `math` first (codegen_scalar)
    head = [f"# Generated by graphc from {g.fn_name}"
            + (f" ({os.path.basename(source_file)})" if source_file else "") + ". Do not edit.",
            *["import threading", ""] * workspace, *["import math", ""] * bool(prefix),
            "import numpy as np", ""]
    if em.module_consts:
        head += [""] + em.module_consts + [""]
    defaults: list = []
    bound: dict = {}
    closure = [(nid, em.name[nid]) for nid in _closure_nodes(g)]
    def_line = _def_line(g, sig, func_name, defaults, em.ns, bound, closure)
    blank = set()
    bindings = {}
    if defaults:
        start = len(head) + 1
        for i, (name, value) in bound.items():
            blank.add(start + i)
            bindings[name] = value
        head += [""] + defaults + [""]
    checks = entry_checks(g, sig, closure)
    lines = head + ["", def_line]
    if doc:
        lines.append(f'    """{doc}"""')
    if checks:
        for expected_line, raise_line in checks[1]:
            blank.update((len(lines), len(lines) + 1))
            lines += ["    " + expected_line, "        " + raise_line]
    lines += prefix + ["    " + line for line in unpack * (not prefix) + _weak_inputs_to_numpy(g, em)]
    lines += body
    if body and body[-1].strip() and any(line.strip().startswith(("# grad of", "# tangent of"))
                                           for line in body):
        lines.append("")
    lines.append(f"    return {ret}")
    body_end = len(lines)
    if checks:
        # After the function, so that a reader meets the computation first.
        lines += ["", "", signature_text(checks[0]), "", "", ENTRY_HELPERS.strip()]
    if guarded:
        lines += ["", "", GUARD_HELPERS.strip()]
    lines += ["", "", WORKSPACE_HELPERS.strip()] * workspace + ["", "", math_helpers(prefix)] * bool(prefix)
    fast = ["" if i in blank else line for i, line in enumerate(lines)]
    return Module("\n".join(lines) + "\n", "\n".join(fast) + "\n", bindings,
                  [(name, nid) for nid, name in closure], body_end)


def graph_text(g) -> str:
    """The evaluation trace: inputs, one line per operation, the return line."""
    em = _Emitter(g, inline=False)
    _reserve_inputs(g, em, g.signature)
    for n in g.inputs:
        em.name.setdefault(n, em.ns.new(g.display_name(n)))
    ins = ", ".join(f"{em.name[n]}: {type_str(g[n].shape, g[n].dtype)}"
                    for n in g.inputs)
    body = _body_lines(em, indent="    ")
    consts = ["    " + c for c in em.module_consts]
    refs = ", ".join(em.ref(o) for o in g.outputs)
    return "\n".join([f"{g.fn_name}({ins}):"] + consts + body + [f"    return {refs}"])


install_product("text", graph_text)
