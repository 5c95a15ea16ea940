"""Graph -> readable NumPy module text, and executing it.

Codegen assembles lines; each primitive's record formats one expression (or a
few statements).  Values used once, in the same section, that the user did
not name are inlined into their user's expression (parenthesized by
precedence), so generated forward code reads like the user's own.  Output is
deterministic: the same graph always gives the same text.
"""
from __future__ import annotations

import io
import linecache
import os
import re
import sys
import tokenize
import types
import weakref

import numpy as np

from .naming import Namespace, base_name, sanitize
from .ir import install_product
from .primitive import REGISTRY, Aval, type_str
from .pytree import LEAF as _LEAF
from .signature import leaf_access, leaf_name

__all__ = ["generate", "generate_module", "graph_text", "exec_module", "compile_snippet",
           "const_text"]

_MAX_INLINE = 60
_COMMENT_COL = 44
_FREE_BYTES = 1 << 20          # values this large are deleted after their last use
_REUSE_BYTES = 1 << 20         # results this large are written into a dead argument (out=)
_BIG_CONST = 64  # elements: larger array constants are written as hex bytes


# --- constants -----------------------------------------------------------------------
def _scalar_text(v, dtype, weak):
    if dtype.kind == "f" and dtype.itemsize > 8:
        # longdouble: a Python float literal would round it to float64.  str() is
        # NumPy's shortest round-tripping text, which np.longdouble parses exactly.
        v = np.longdouble(v)
        if np.isfinite(v) and np.longdouble(float(v)) != v:
            return f"np.longdouble({str(v)!r})"
    v = v.item() if hasattr(v, "item") else v
    if dtype.kind == "b":
        text = repr(bool(v))
    elif dtype.kind in "iu":
        text = repr(int(v))
    else:
        v = float(v)
        text = _pi_text(v) or repr(v)
        if text in ("inf", "-inf", "nan"):
            text = {"inf": "np.inf", "-inf": "-np.inf", "nan": "np.nan"}[text]
    if weak:
        return text
    return f"np.{dtype.name}({text})"


def _pi_text(v):
    if v == 0 or not np.isfinite(v):
        return None
    k = v / np.pi
    for den in (1, 2, 3, 4, 6):
        num = round(k * den)
        if num and num * np.pi / den == v and abs(num) <= 12:
            text = "np.pi" if num == 1 else ("-np.pi" if num == -1 else f"{num} * np.pi")
            return text if den == 1 else f"{text} / {den}"
    return None


def const_text(value, aval: Aval):
    """Python expression that rebuilds a constant exactly."""
    if aval.shape == ():
        return _scalar_text(value, aval.dtype, aval.weak)
    arr = np.asarray(value, dtype=aval.dtype)
    dt = f"np.{arr.dtype.name}"
    if arr.ndim == 1 and arr.dtype.kind in "iu" and np.array_equal(arr, np.arange(arr.size)):
        return f"np.arange({arr.size})" + ("" if arr.dtype == np.int64 else f".astype({dt})")
    if arr.size == 0:           # np.array([]) would lose a shape like (0, 3)
        return f"np.zeros({arr.shape!r}, dtype={dt})"
    flat = arr.ravel()
    # uniform: all equal, and for floats not nan and with one sign ([0., -0.] is not zeros)
    if flat.size and np.all(flat == flat[0]) and not np.isnan(flat[0]) \
            and np.all(np.signbit(flat) == np.signbit(flat[0])) if arr.dtype.kind == "f" \
            else (flat.size and np.all(flat == flat[0])):
        v = flat[0]
        if v == 0 and not (arr.dtype.kind == "f" and np.signbit(v)):
            return f"np.zeros({arr.shape!r}, dtype={dt})"
        if v == 1:
            return f"np.ones({arr.shape!r}, dtype={dt})"
        return f"np.full({arr.shape!r}, {_scalar_text(v, arr.dtype, True)}, dtype={dt})"
    if arr.size <= _BIG_CONST and arr.dtype.kind in "biuf" and np.all(np.isfinite(arr)):
        return f"np.array({arr.tolist()!r}, dtype={dt})"
    data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes().hex()
    return f"np.frombuffer(bytes.fromhex({data!r}), dtype={np.dtype(arr.dtype).newbyteorder('<').str!r}).reshape({arr.shape!r}).astype({dt})"


def _literal_prec(text):
    if text.startswith("-"):
        return 13
    if " / " in text or " * " in text:
        return 12
    return 100


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
        self.edge_count = {n: graph.n_uses(n) for n in graph}

    def ref(self, nid, min_prec=0):
        if nid in self.expr:
            text, prec = self.expr[nid]
            return f"({text})" if prec < min_prec else text
        return self.name[nid]

    def node_expr(self, nid, out_name):
        node = self.g[nid]
        prim = REGISTRY[node.op]
        args = node.args
        avals = [self.g.aval(a) for a in args]
        if callable(prim.numpy):
            texts = [self.ref(a, 0) for a in args]
            atoms = [self.ref(a, 100) for a in args]
            return prim.emit(texts, out_name, avals, self.g.aval(nid), node.params, atoms), prim.prec
        texts = [self.ref(a, prim.slot_prec(i, len(args))) for i, a in enumerate(args)]
        return prim.emit(texts, out_name, avals, self.g.aval(nid), node.params), prim.prec

    def constant(self, nid):
        node = self.g[nid]
        aval = self.g.aval(nid)
        text = const_text(node.value, aval)
        if aval.size <= 1 or len(text) <= 60:
            self.expr[nid] = (text, _literal_prec(text))
            return None
        name = self.ns.new(node.name or node.hint or "const")
        self.name[nid] = name
        self.module_consts.append(f"{name} = {text}")
        return name

    def adjoint_name(self, node):
        """``d_<name>`` when the node is the adjoint of a value that has a visible name."""
        primal = node.adjoint_of
        if primal is not None and primal in self.name:
            return "d_" + self.name[primal]
        return None

    def can_inline(self, nid, node):
        if not self.inline or nid in self.outputs or self.edge_count.get(nid, 0) != 1:
            return False
        if node.name or self.adjoint_name(node):
            return False
        user = next(iter(self.g.users(nid)))
        unode = self.g[user]
        if unode.section != node.section or REGISTRY[unode.op].statements:
            return False
        return True

    def body(self, skip=()):
        """Yield ``(nid, lines)`` for every materialized node in program order."""
        for nid in self.g.order():
            node = self.g[nid]
            op = node.op
            if op == "input" or nid in skip:
                continue
            if op == "const":
                self.constant(nid)
                continue
            emitted, prec = self.node_expr(nid, "{out}")
            if isinstance(emitted, str) and self.can_inline(nid, node) and len(emitted) <= _MAX_INLINE:
                self.expr[nid] = (emitted, prec)
                continue
            name = self.ns.new(node.name or self.adjoint_name(node)
                               or (node.hint if not node.adjoint_of else None)
                               or node.hint or node.op)
            self.name[nid] = name
            if isinstance(emitted, str):
                lines = [f"{name} = {emitted}"]
            else:
                lines = [line.replace("{out}", name) for line in emitted]
            yield nid, lines


def _where_short(where):
    if not where:
        return ""
    path, _, line = where.rpartition(":")
    return f"{os.path.basename(path)}:{line}"


def _comment(code, text):
    pad = max(_COMMENT_COL - len(code), 2)
    return f"{code}{' ' * pad}# {text}"


def _source_text(where):
    from .errors import source_line
    text = source_line(where)
    if not text:
        return text
    # A comment must stay one line whatever the user's file holds (\r, \f ...).
    text = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", text)
    return _without_comment(text)


def _without_comment(line):
    """The line without its trailing ``# comment`` (a '#' inside a string stays)."""
    if "#" not in line:
        return line
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return line[:tok.start[1]].rstrip() or line
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass        # part of a multi-line statement: keep it as it is
    return line


def _frees(em: _Emitter, items):
    """{statement index: names to ``del`` after it}: large values at their last use.

    A value computed for the backward pass would otherwise stay alive until the
    function returns; freeing it where it is last read lowers peak memory (and lets
    NumPy's allocator hand the block to the next temporary).  Only arrays of at least
    ``_FREE_BYTES`` get a ``del`` line, so small graphs read exactly as before.
    """
    g = em.g
    stmt = {nid: i for i, (nid, _) in enumerate(items)}

    def where_used(nid):            # an inlined value is read by its user's statement
        while nid not in stmt:
            nid = next(iter(g.users(nid)))
        return stmt[nid]

    frees: dict[int, list[str]] = {}
    outputs = set(g.outputs)
    for nid, _ in items:
        node = g[nid]
        nbytes = int(np.prod(node.shape, dtype=np.int64)) * node.dtype.itemsize
        if nid in outputs or nbytes < _FREE_BYTES:
            continue
        users = list(g.users(nid))
        if users:
            frees.setdefault(max(where_used(u) for u in users), []).append(em.name[nid])
    return frees


# In-place reuse: ops that can write into an ``out=`` array (the ufunc to call, and
# extra arguments after the node's own), and ops whose result is always a fresh
# array that nothing else refers to (so it may be overwritten once it is dead).
_INPLACE = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.divide",
            "neg": "np.negative", "pow": "np.power", "exp": "np.exp", "log": "np.log",
            "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "tanh": "np.tanh",
            "sqrt": "np.sqrt", "log1p": "np.log1p", "expm1": "np.expm1", "abs": "np.abs",
            "maximum": "np.maximum", "minimum": "np.minimum", "relu": "np.maximum"}
_INPLACE_EXTRA = {"relu": ["0.0"]}
_FRESH = set(_INPLACE) | {"matmul", "sum", "max", "min", "sigmoid", "softplus", "where",
                          "scatter_add", "log_softmax", "masked_mul"}


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

    def where_used(nid):
        while nid not in stmt:
            nid = next(iter(g.users(nid)))
        return stmt[nid]

    def read_after(nid, i, depth=0):
        """Is ``nid``'s buffer read after statement ``i``, directly or through a view?
        (An output is read after every statement: by the caller.)"""
        if nid in outputs:
            return True
        for u in g.users(nid):
            if where_used(u) > i:
                return True
            if g[u].op not in _FRESH and (depth > 20 or read_after(u, i, depth + 1)):
                return True
        return False

    out = {}
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        op = node.op
        if op not in _INPLACE or len(lines) != 1 or not node.shape:
            continue
        nbytes = int(np.prod(node.shape, dtype=np.int64)) * node.dtype.itemsize
        if nbytes < _REUSE_BYTES:
            continue
        for a in node.args:
            an = g[a]
            if (a in em.name and a not in outputs and an.op in _FRESH and a not in em.expr
                    and tuple(an.shape) == tuple(node.shape) and an.dtype == node.dtype
                    and max(where_used(u) for u in g.users(a)) == i
                    and not read_after(a, i)):
                args = [em.ref(x, 0) for x in node.args] + _INPLACE_EXTRA.get(op, [])
                text = f"{_INPLACE[op]}({', '.join(args)}, out={em.name[a]})"
                out[i] = (em.name[a], f"{em.name[nid]} = {text}")
                break
    return out


def _body_lines(em: _Emitter, indent="    ", free=False):
    """Lines of the function body, with shape comments and grad-of headers."""
    out = []
    last_block = None
    g = em.g
    items = list(em.body())
    frees = _frees(em, items) if free else {}
    if free:
        for i, (donor, text) in _reuse(em, items).items():
            items[i] = (items[i][0], [text])
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        shape = type_str(node.shape, node.dtype)
        if node.section == "backward":
            block = node.where or node.grad_of
            if block != last_block:
                head = _source_text(node.where) or _forward_text(em, node.grad_of)
                out.append("")
                out.append(f"{indent}# grad of: {head}")
                last_block = block
            comment = shape
        else:
            last_block = None
            w = _where_short(node.where)
            comment = f"{shape}  {w}" if w else shape
        for k, line in enumerate(lines):
            out.append(indent + (_comment(line, comment) if k == len(lines) - 1 else line))
        if i in frees:
            out.append(f"{indent}del {', '.join(frees[i])}")
    return out


def _forward_text(main, nid):
    """The forward statement a backward block differentiates, when the user's
    source line is not available (code typed at a prompt, exec'd strings)."""
    g = main.g
    if nid is None or nid not in g:
        return "(value)"
    em = _Emitter(g, inline=False)
    node = g[nid]
    for a in node.args:
        if g[a].op == "const":
            em.constant(a)
        else:
            em.name[a] = main.name.get(a) or sanitize(base_name(g, a))
    out = main.name.get(nid) or sanitize(base_name(g, nid))
    text, _ = em.node_expr(nid, out)
    return f"{out} = {text}" if isinstance(text, str) else f"{out} = {node.op}(...)"


# --- whole modules ------------------------------------------------------------------
def _reserve_inputs(g, em: _Emitter, sig):
    """Name the inputs (``sig``'s parameter names); return the unpacking lines of pytree arguments."""
    lines = []
    if sig is None:
        for nid in g.inputs:
            em.name[nid] = em.ns.new(base_name(g, nid))
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


def _default_text(value):
    """Python text that rebuilds a default argument value (arrays exactly)."""
    if isinstance(value, float) and not isinstance(value, np.generic) and not np.isfinite(value):
        return _nonfinite_text(value)
    if value is None:
        return "None"
    # Subclasses (IntEnum, a str with a custom __repr__) are written as the plain
    # value: only int/float/str's own reprs become code.
    for base in (bool, int, float, str):
        if isinstance(value, base) and not isinstance(value, np.generic):
            return base.__repr__(base(value))
    if isinstance(value, np.dtype) and value.kind in "biufc":
        return f"np.dtype({value.name!r})"
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        text = const_text(arr, Aval(arr.shape, arr.dtype, False))
        if isinstance(value, np.ndarray):
            return text
        item = arr.item()
        item = _nonfinite_text(item) if isinstance(item, float) and not np.isfinite(item) \
            else repr(item)
        return f"np.{arr.dtype.name}({item})"
    if isinstance(value, range):
        return f"range({int(value.start)}, {int(value.stop)}, {int(value.step)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_default_text(k)}: {_default_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_default_text(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_default_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if value is np:
        return "np"
    name = getattr(value, "__name__", None)
    if isinstance(name, str) and name.isidentifier() and getattr(np, name, None) is value:
        return f"np.{name}"         # act=np.tanh
    # Any other static default (a function, a module): its value is baked into
    # the graph, so the generated function never reads the parameter.
    return "None"


def _nonfinite_text(value: float) -> str:
    """``np.nan``/``np.inf``/``-np.inf``: repr() gives ``nan``, which is no Python name."""
    if np.isnan(value):
        return "np.nan"
    return "np.inf" if value > 0 else "-np.inf"


def _def_line(g, sig, func_name, module_lines=None, ns=None, bindings=None, closure=()):
    if sig is None:
        return f"def {func_name}({', '.join(sanitize(base_name(g, n)) for n in g.inputs)}):"
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
            text = _default_text(d)
            if module_lines is not None and (len(text) > 40 or _holds_array(d)):
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
            module_lines.append(f"{mod} = {_default_text(value)}")
            bindings[len(module_lines) - 1] = (mod, value)
            extra.append(f"{name}={mod}")
        parts[at:at] = extra
    return f"def {func_name}({', '.join(parts)}):"


def _holds_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_array(v) for v in value)
    return False


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
    return _tree_text(sig.out_treedef, it, top=True)


def _tree_text(t, it, top=False):
    if t.kind == "leaf":
        return next(it)
    if t.kind == "static":
        return repr(t.static)
    if t.kind == "none":
        return "None"
    kids = [_tree_text(c, it) for c in t.children]
    if t.kind == "dict":
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(t.keys, kids)) + "}"
    if t.kind == "list":
        return "[" + ", ".join(kids) + "]"
    if top and kids:
        return ", ".join(kids) + ("," if len(kids) == 1 else "")
    return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"


def _weak_inputs_to_numpy(g, em):
    """Python-float inputs become np.float64 where that cannot change a dtype.

    A Python float is weak (NEP 50) only next to float16/float32 values; in an
    all-float64 graph turning it into np.float64 gives NumPy semantics
    (inf instead of ZeroDivisionError, nan instead of complex powers).
    """
    low = any(g[n].dtype.kind == "f" and g[n].dtype.itemsize < 8
              for n in g)
    if low:
        return []
    return [f"{em.name[n]} = np.float64({em.name[n]})" for n in g.inputs
            if g[n].weak and g[n].dtype.kind == "f"
            and g[n].shape == ()]


class Module:
    """Generated module text, and the variant a compiled callable executes.

    ``fast`` is ``source`` with the entry-check lines and the module-level
    default arrays blanked (same line numbers, so tracebacks point into
    ``source``): the compiled callable's cache key has already checked the
    signature, and ``bindings`` binds each default's name to the user's own
    default object instead of a copy.  ``closure_params`` lists the keyword
    parameter and node of each closed-over array, which the caller passes.
    """

    def __init__(self, source, fast, bindings, closure_params=()):
        self.source, self.fast, self.bindings = source, fast, bindings
        self.closure_params = list(closure_params)


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
    em = _Emitter(g)
    em.ns.reserve(func_name)
    unpack = _reserve_inputs(g, em, sig)
    body = _body_lines(em, free=True)
    ret = _return_expr(g, em)
    head = [f"# Generated by graphc from {g.fn_name}"
            + (f" ({os.path.basename(source_file)})" if source_file else "") + ". Do not edit.",
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
    checks = _entry_checks(g, sig, closure)
    lines = head + ["", def_line]
    if doc:
        lines.append(f'    """{doc}"""')
    if checks:
        for expected_line, raise_line in checks[1]:
            blank.update((len(lines), len(lines) + 1))
            lines += ["    " + expected_line, "        " + raise_line]
    lines += ["    " + line for line in unpack + _weak_inputs_to_numpy(g, em)]
    lines += body
    if body and body[-1].strip() and any(line.strip().startswith("# grad of") for line in body):
        lines.append("")
    lines.append(f"    return {ret}")
    if checks:
        # After the function, so that a reader meets the computation first.
        lines += ["", "", _signature_text(checks[0]), "", "", _ENTRY_HELPERS.strip()]
    fast = ["" if i in blank else line for i, line in enumerate(lines)]
    return Module("\n".join(lines) + "\n", "\n".join(fast) + "\n", bindings,
                  [(name, nid) for nid, name in closure])


# --- entry checks ---------------------------------------------------------------------
# Generated code is specialized to shapes, dtypes and static values; called with
# others it would compute something else without a word.  Each argument is
# compared with what the code was generated for, once, at entry (one comparison
# per argument).  The helpers are written into every module: it imports only NumPy.
def _signature_text(expected):
    items = [f"    {k!r}: {v!r}," for k, v in expected.items()]
    return "\n".join(["# The arguments this code was generated for, checked at entry.",
                      "_SIGNATURE = {"] + items + ["}"])


_ENTRY_HELPERS = '''
def _sig(x):
    """An argument as the entry check compares it: dtype and shape of an array,
    'float' for a Python float, the value of a static int/bool/str/None, and
    the same of each item of a dict, list or tuple."""
    if isinstance(x, (np.ndarray, np.generic)):
        return f"{x.dtype.name}[{','.join([str(d) for d in x.shape])}]"
    if type(x) is float:
        return "float"
    if isinstance(x, dict):
        return {k: _sig(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        items = [_sig(v) for v in x]
        return items if isinstance(x, list) else tuple(items)
    if x is None or isinstance(x, (bool, int)):
        return x
    if isinstance(x, str):
        return str.__repr__(x)
    if isinstance(x, range):
        return f"range({x.start}, {x.stop}, {x.step})"
    if isinstance(x, np.dtype):
        return f"dtype({x.name})"
    try:
        name = x.__name__
    except AttributeError:
        name = None
    if x is np or isinstance(name, str) and np.__dict__.get(name) is x:
        return "np" if x is np else f"np.{name}"
    return f"<{type(x).__name__}>"


def _signature_error(*given):
    """The ValueError for arguments this code was not generated for."""
    text = ", ".join(f"{name}: {_sig_text(_sig(v))}" for name, v in zip(_SIGNATURE, given))
    want = ", ".join(f"{name}: {_sig_text(s)}" for name, s in _SIGNATURE.items())
    return ValueError(f"this code was generated for ({want}) but was called with ({text}); "
                      "pass arguments of the expected shapes, dtypes and values, or generate "
                      "the code again for these (graphc re-traces per signature)")


def _sig_text(s):
    return s if isinstance(s, str) else f"{s!r}"
'''
def _entry_checks(g, sig, closure=()):
    """``({param: expected}, [(if line, raise line) per parameter])``, or None."""
    if sig is None or sig.arg_treedefs is None:
        return None
    avals = iter([g.aval(n) for n in g.inputs])
    names = [sanitize(p.name) for p in sig.params]
    wants = [_expected_sig(tdef, avals) for tdef in sig.arg_treedefs.children]
    for nid, name in closure:
        names.append(name)
        wants.append(_expected_sig(_LEAF, iter([g.aval(nid)])))
    expected, lines = {}, []
    for name, want in zip(names, wants):
        expected[name] = want
        text = repr(want) if len(repr(want)) <= 40 else f"_SIGNATURE[{name!r}]"
        # a Python float (the common scalar argument) needs no _sig() call
        test = f"type({name}) is not float" if want == "float" else \
            f"{name} is not None" if want is None else f"_sig({name}) != {text}"
        lines.append((f"if {test}:",
                      f"raise _signature_error({', '.join(names)})"))
    return expected, lines


def _expected_sig(t, avals):
    """What :func:`_sig` gives for the argument the graph was traced with."""
    if t.kind == "leaf":
        a = next(avals)
        if a.weak:
            return "float"
        return f"{np.dtype(a.dtype).name}[{','.join(str(int(d)) for d in a.shape)}]"
    if t.kind == "none":
        return None
    if t.kind == "static":
        return _plain_static(t.static)
    kids = [_expected_sig(c, avals) for c in t.children]
    if t.kind == "dict":
        return dict(zip(t.keys, kids))
    return kids if t.kind == "list" else tuple(kids)


def _plain_static(v):
    """A static value as :func:`_sig` sees it, rebuilt from plain types (its
    repr is written into the code)."""
    if v is None or isinstance(v, bool):
        return None if v is None else bool(v)
    if isinstance(v, int):
        return int.__int__(v)
    if isinstance(v, str):
        return str.__repr__(str.__str__(v))
    if isinstance(v, range):
        return f"range({int(v.start)}, {int(v.stop)}, {int(v.step)})"
    if isinstance(v, np.dtype) and v.kind in "biufc":
        return f"dtype({v.name})"
    name = getattr(v, "__name__", None)
    if v is np or isinstance(name, str) and name.isidentifier() and getattr(np, name, None) is v:
        return "np" if v is np else f"np.{name}"
    # Any other static object (the user's function, a module) was baked into the
    # graph; the generated code cannot name it, so its parameter defaults to None
    # and the entry check accepts None alone: passing another object is refused
    # rather than silently computed with the traced one.
    return None


def graph_text(g) -> str:
    """The evaluation trace: inputs, one line per operation, the return line."""
    em = _Emitter(g, inline=False)
    _reserve_inputs(g, em, g.signature)
    for n in g.inputs:
        em.name.setdefault(n, em.ns.new(base_name(g, n)))
    ins = ", ".join(f"{em.name[n]}: {type_str(g[n].shape, g[n].dtype)}"
                    for n in g.inputs)
    body = _body_lines(em, indent="    ")
    consts = ["    " + c for c in em.module_consts]
    refs = ", ".join(em.ref(o) for o in g.outputs)
    return "\n".join([f"{g.fn_name}({ins}):"] + consts + body + [f"    return {refs}"])


# --- executing ------------------------------------------------------------------------
_counter = [0]


def exec_module(source: str, func_name: str, label: str, run: str | None = None,
                bindings: dict | None = None):
    """Execute generated source under a linecache-registered file name.

    ``run`` (a :class:`Module`'s ``fast`` text, line for line the same as
    ``source``) is what is executed when given, with ``bindings`` in the
    module namespace.
    """
    _counter[0] += 1
    filename = f"<graphc:{label}#{_counter[0]}>"
    _purge_dead_lines()
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": f"graphc_generated_{sanitize(label)}", **(bindings or {})}
    exec(compile(source if run is None else run, filename, "exec"), namespace)
    fn = namespace[func_name]
    # The text stays in linecache (for tracebacks) exactly as long as the
    # function's code object lives: a traceback holds its frames' code, so it
    # keeps the lines it shows; a dropped compiled function leaves no entry.
    weakref.finalize(fn.__code__, _drop_lines, filename).atexit = False
    return fn


# File names whose code died while linecache was being walked (see _drop_lines).
_DEAD_LINES: list = []
_LINECACHE_CODE = {f.__code__ for f in vars(linecache).values()
                   if isinstance(f, types.FunctionType)}


def _drop_lines(filename):
    """Forget a dead generated module's text, unless linecache is mid-walk.

    A finalizer runs wherever the garbage collector happens to run, for
    instance inside ``linecache.checkcache()`` (doctest, pdb, IPython), which
    walks a snapshot of the cache's keys: removing one of them there would
    make it raise ``KeyError``.  Then the name waits for the next removal or
    the next generated module.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _LINECACHE_CODE:
            _DEAD_LINES.append(filename)
            return
        frame = frame.f_back
    linecache.cache.pop(filename, None)
    _purge_dead_lines()


def _purge_dead_lines():
    while _DEAD_LINES:
        linecache.cache.pop(_DEAD_LINES.pop(), None)


def compile_snippet(prim, params):
    """An eager implementation of ``prim`` compiled from its emission text."""
    n = _arity(prim, params)
    names = [f"a{i}" for i in range(n)]
    avals = [None] * n
    emitted = prim.emit(names, "out", avals, None, params) if not callable(prim.numpy) \
        else None
    if emitted is None:
        # Callable emitters may look at the input avals (reductions, scatter):
        # emit per call, and cache the compiled text in _SNIPPETS.
        def impl(*args):
            from .tracing import aval_of
            vals = [a if isinstance(a, (int, float, bool)) else np.asarray(a) for a in args]
            av = [aval_of(v) for v in vals]
            out_aval = prim.shape(*av, **params)
            text = prim.emit([f"a{i}" for i in range(len(vals))], "out", av, out_aval, params)
            fn = _snippet_fn(text, len(vals))
            return fn(*vals)
        return impl
    return _snippet_fn(emitted, n)


_SNIPPETS: dict = {}


def _snippet_fn(emitted, n):
    lines = [f"out = {emitted}"] if isinstance(emitted, str) else list(emitted)
    key = (tuple(lines), n)
    fn = _SNIPPETS.get(key)
    if fn is None:
        args = ", ".join(f"a{i}" for i in range(n))
        src = f"def _impl({args}):\n" + "".join(f"    {line}\n" for line in lines) + "    return out\n"
        ns = {"np": np}
        exec(compile(src, "<graphc:eager>", "exec"), ns)
        if len(_SNIPPETS) >= 256:   # keyed by text that holds shapes: bound it (no leak)
            _SNIPPETS.clear()
        fn = _SNIPPETS[key] = ns["_impl"]
    return fn


def _arity(prim, params):
    if callable(prim.numpy):
        return -1
    return len(set(re.findall(r"\{(\d+)\}", prim.numpy)))


install_product("text", graph_text)
