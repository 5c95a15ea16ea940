"""Graph -> module text for the ``"array-api"`` target.

The same emission core as :mod:`graphc.codegen` (naming, inlining, comments),
with each primitive's array-API form (:mod:`graphc.xp_emit`) in place of its
NumPy one.  The function resolves its namespace at entry
(``xp = array_api_compat.array_namespace(...)`` of the array arguments, or the
``xp=`` keyword) and is functional: no ``np.``, no ``out=``, no in-place writes.
What the standard lacks (scatter-add with repeated indices) is done by small
per-namespace helpers written after the function (:mod:`graphc.xp_helpers`).
Constants are built inside the function on the inputs' device.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np

from . import codegen
from .control.emit_xp import XP_CONTROL, guard_lines_xp
from .errors import UnsupportedError
from .ir import SUBGRAPH_OPS
from .ops.max_share import drop_outs
from .passes.dce import dce
from .ops.xp_index import AT_HELPER, FLAT_INDEX_HELPER
from .precedence import prec_of
from .primitive import REGISTRY
from .xp_emit import emit_xp, xp_dtype, xp_form
from .xp_closure import closure_lines, closure_params
from .xp_helpers import helpers_for, wanted
from .xp_partition import check_partition
from .xp_workspace import use_xp_workspace

__all__ = ["generate_module", "TARGETS", "check_target", "xp_const_text", "numpy_target_only"]

#: The code generators ``target=`` selects.
TARGETS = ("numpy", "array-api", "numba")


def check_target(target, what="graphc"):
    """``target`` itself, or an OptionError naming the targets."""
    from .errors import OptionError
    if not isinstance(target, str) or target not in TARGETS:
        raise OptionError(f"{what}: unknown target {target!r}; the targets are "
                          + ", ".join(repr(t) for t in TARGETS),
                          hint='target="numpy" (the default: NumPy code) or '
                               'target="array-api" (code against any array-API namespace) or '
                               'target="numba" (fused CPU loops)')
    return target


def numpy_target_only(target, what):
    """An OptionError for ``target=`` other than ``"numpy"`` on an entry point whose code
    has no array-API form yet (the transforms: jvp, vjp, vmap, jacobians, hessian, hvp)."""
    from .errors import OptionError
    if target == "numpy":
        return
    check_target(target, what)
    raise OptionError(f'{what} generates NumPy code only; target={target!r} works with '
                      "graphc.compile, graphc.grad, graphc.value_and_grad and graphc.export",
                      hint='drop target= here, or express the derivative with graphc.grad / '
                           'value_and_grad (target="array-api")')


# --- constants ------------------------------------------------------------------------
def _num(v, kind) -> str:
    if kind == "b":
        return repr(bool(v))
    if kind in "iu":
        return repr(int(v))
    v = float(v)
    if math.isnan(v):
        return 'float("nan")'
    if math.isinf(v):
        return 'float("inf")' if v > 0 else '-float("inf")'
    return repr(v)


def _nested(arr) -> str:
    if arr.ndim == 1:
        return "[" + ", ".join(_num(v, arr.dtype.kind) for v in arr.tolist()) + "]"
    return "[" + ", ".join(_nested(a) for a in arr) + "]"


def xp_const_text(value, aval, device="_device"):
    """``(expression, needs module data)`` that rebuilds a constant in namespace ``xp``."""
    dt = xp_dtype(aval.dtype)
    if aval.shape == ():
        lit = _num(np.asarray(value).item(), aval.dtype.kind)
        return (lit if aval.weak else f"xp.asarray({lit}, dtype={dt})"), None
    arr = np.asarray(value, dtype=aval.dtype)
    shape = tuple(int(d) for d in arr.shape)
    if arr.ndim == 1 and arr.dtype.kind in "iu" and np.array_equal(arr, np.arange(arr.size)):
        return f"xp.arange({arr.size}, dtype={dt}, device={device})", None
    flat = arr.ravel()
    if flat.size and not (arr.dtype.kind == "f" and np.isnan(flat[0])) and np.all(flat == flat[0]) \
            and (arr.dtype.kind != "f" or np.all(np.signbit(flat) == np.signbit(flat[0]))):
        v = flat[0]
        if v == 0 and not (arr.dtype.kind == "f" and np.signbit(v)):
            return f"xp.zeros({shape!r}, dtype={dt}, device={device})", None
        if v == 1:
            return f"xp.ones({shape!r}, dtype={dt}, device={device})", None
        return f"xp.full({shape!r}, {_num(v, arr.dtype.kind)}, dtype={dt}, device={device})", None
    if arr.size == 0:
        return f"xp.zeros({shape!r}, dtype={dt}, device={device})", None
    data = _nested(arr)
    return f"xp.asarray({{data}}, dtype={dt}, device={device})", data


# --- NumPy's mixed-kind promotion, spelled out ----------------------------------------------
def _casts(prim, op, avals, aval):
    """The dtype each argument of an elementwise op is cast to first (None: as it is).

    NumPy computes ``np.exp(int_array)`` and ``int_array * 0.5`` in floating point and
    ``np.logical_and`` on numbers as truth values; the standard defines neither mixed
    kinds nor these, so the argument is cast to the dtype NumPy's loop runs in: the
    result's (a number), the common one of a comparison, bool for logical ops.
    """
    if op == "matmul":                      # torch does not promote f32 @ f64
        return [None if a.dtype == aval.dtype else aval.dtype for a in avals]
    if not prim.elementwise or op in ("astype", "masked_mul"):
        return [None] * len(avals)
    if op.startswith("logical_"):
        want = np.dtype(bool)
    elif aval.dtype.kind in "fciu":
        want = aval.dtype
    else:
        want = np.result_type(*[a.np_proxy() for a in (avals[1:] if op == "where" else avals)])
    return [None if a.weak or a.dtype == want or a.dtype.kind == "c" or (op == "where" and i == 0)
            else want for i, a in enumerate(avals)]


#: NumPy dtypes with an array-API form: the standard's, and float16, which the standard
#: lacks but NumPy, CuPy, PyTorch and JAX have (a module using it checks at entry that
#: the namespace has it); longdouble and the rest have none.
XP_DTYPES = frozenset(np.dtype(n) for n in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128"))


def _check_dtype(dtype, where=None):
    if np.dtype(dtype) not in XP_DTYPES:
        raise UnsupportedError(f"{np.dtype(dtype).name} is not a dtype of the array API standard",
                               where=where, hint='use float32/float64, or target="numpy"')


def _cast(text, dtype):
    return text if dtype is None else f"xp.astype({text}, {xp_dtype(dtype)})"


# --- the emitter ------------------------------------------------------------------------
class XpEmitter(codegen.Emitter):
    """:class:`graphc.codegen.Emitter` writing each op's array-API form."""

    def __init__(self, graph, inline=True, names=None):
        super().__init__(graph, inline, names)
        self.const_lines: list[str] = []     # constants, built at the top of the function
        self.data_lines: list[str] = []      # module-level literals of large constants

    def node_expr(self, nid, out_name):
        node = self.g[nid]
        prim = REGISTRY[node.op]
        form = xp_form(prim)
        if form is None:
            raise UnsupportedError(
                f"{node.op} has no array-API emission, so this function cannot be compiled "
                'for target="array-api"', where=node.where,
                hint='use target="numpy" (the default), or add array_api= to the record '
                     "of this primitive (docs/architecture.md, 'Array-API emission')")
        if node.op == "partition_perm":       # its kth places only (graphc/xp_partition.py)
            check_partition(self.g, nid)
        args = node.args
        avals = [self.g.aval(a) for a in args]
        for a in avals + [self.g.aval(nid)]:
            _check_dtype(a.dtype, node.where)
        casts = _casts(prim, node.op, avals, self.g.aval(nid))
        if callable(form):
            texts = [_cast(self.ref(a, 0), c) for a, c in zip(args, casts)]
            atoms = [_cast(self.ref(a, 100), c) for a, c in zip(args, casts)]
            return emit_xp(prim, texts, out_name, avals, self.g.aval(nid), node.params, atoms)
        texts = [_cast(self.ref(a, 100 if c else prim.slot_prec(i, len(args), form)), c)
                 for i, (a, c) in enumerate(zip(args, casts))]
        return emit_xp(prim, texts, out_name, avals, self.g.aval(nid), node.params)

    def constant(self, nid):
        node = self.g[nid]
        aval = self.g.aval(nid)
        text, data = xp_const_text(node.value, aval)
        if data is None and (aval.shape == () or len(text) <= 60):
            self.expr[nid] = (text, prec_of(text))
            return None
        name = self.ns.new(node.name or node.hint or "const")
        self.name[nid] = name
        if data is not None and len(data) > 60:
            ref = self.ns.new(f"_{name.upper()}_DATA")
            self.data_lines.append(f"{ref} = {data}")
            data = ref
        self.const_lines.append(f"{name} = {text.replace('{data}', data or '')}")
        return name

    def body(self, skip=()):
        for nid in self.g.order():
            node = self.g[nid]
            op = node.op
            if op == "input" or nid in skip:
                continue
            if op == "const":
                self.constant(nid)
                continue
            if op in SUBGRAPH_OPS:        # loops and branches (graphc/control/emit_xp.py)
                yield nid, XP_CONTROL.get(op, SUBGRAPH_OPS[op].emit)(self, nid)
                continue
            if op == "guard":             # a decision the trace took
                yield nid, guard_lines_xp(self, nid, node)
                continue
            emitted, prec = self.node_expr(nid, "{out}")
            if isinstance(emitted, str) and self.can_inline(nid, node) \
                    and len(emitted) <= codegen._MAX_INLINE:
                self.expr[nid] = (emitted, prec)
                continue
            name = self.fixed.get(nid) or self.ns.new(self.g.display_name(nid, self.name))
            self.name[nid] = name
            if isinstance(emitted, str):
                lines = [f"{name} = {emitted}"]
            else:
                lines = [line.replace("{out}", name) for line in emitted]
            yield nid, lines


XpEmitter.body_emitter = XpEmitter     # loop and branch bodies (graphc/control/emit.py)


# --- the module -----------------------------------------------------------------------
def _def_line(def_line: str, extra=()) -> str:
    """``def f(x, y):`` with keyword-only ``extra`` parameters (the closed-over arrays)
    and ``xp=None`` added (before ``**kwargs``)."""
    head, _, params = def_line[:-2].partition("(")
    parts = [p.strip() for p in params.split(", ")] if params.strip() else []
    at = next((i for i, p in enumerate(parts) if p.startswith("**")), len(parts))
    star = any(p == "*" or p.startswith("*") and not p.startswith("**") for p in parts)
    parts[at:at] = ([] if star else ["*"]) + list(extra) + ["xp=None"]
    return f"{head}({', '.join(parts)}):"


def _entry_lines(g, em, arrays):
    """Resolve ``xp`` (and the device constants go to), convert Python floats."""
    lines = ["if xp is None:",
             f"    xp = _namespace({', '.join(arrays)})"]
    low = any(g[n].dtype.kind == "f" and g[n].dtype.itemsize < 8 for n in g)
    if any(g[n].dtype == np.float16 for n in g):
        lines += ["if not hasattr(xp, 'float16'):",
                  "    raise TypeError(f'{xp.__name__} has no float16 (the array API standard "
                  "has none); this code computes in float16')"]
    if not low:
        lines += [f"{em.name[n]} = xp.asarray({em.name[n]}, dtype=xp.float64)"
                  for n in g.inputs if g[n].weak and g[n].dtype.kind == "f" and g[n].shape == ()]
    return lines


def _return_expr(g, em):
    refs = []
    for nid in g.outputs:
        text = em.ref(nid)
        if g[nid].op == "broadcast_to":     # never a read-only broadcast view
            text = f"xp.asarray({text}, copy=True)"
        refs.append(text)
    sig = g.signature
    if sig is None or sig.out_treedef is None:
        return ", ".join(refs) if len(refs) != 1 else refs[0]
    from .literals import tree_text
    return tree_text(sig.out_treedef, iter(refs), top=True)


def _checks(g, em):
    """Entry checks of each array input's shape and dtype (left out of the fast variant)."""
    out = []
    for n in g.inputs:
        node = g[n]
        if node.weak:
            continue
        out.append(f"_check({em.name[n]!r}, {em.name[n]}, {tuple(node.shape)!r}, "
                   f"{np.dtype(node.dtype).name!r}, xp)")
    return out


def generate_module(g, func_name: str, doc: str = "", source_file: str | None = None,
                    signature=None) -> codegen.Module:
    """:func:`graphc.codegen.generate_module` for the array-API target."""
    sig = g.signature if signature is None else signature
    if drop_outs(g):    # the ReLU result only the NumPy emission divides by (ops/max_share.py)
        dce(g)          # a ReLU whose value only that division read
    em = XpEmitter(g)
    for reserved in (func_name, "xp", "_device", "_device_of", "_namespace", "_check"):
        em.ns.reserve(reserved)
    unpack = codegen._reserve_inputs(g, em, sig)
    closure = [(nid, em.name[nid]) for nid in codegen._closure_nodes(g)]
    # del; never out= in the function (on NumPy, helpers reuse memory: xp_workspace.py)
    body = codegen._body_lines(em, free=True, reuse=False, rewrite=use_xp_workspace)
    ret = _return_expr(g, em)
    arrays = [em.name[n] for n in g.inputs if not g[n].weak]
    head = [f"# Generated by graphc from {g.fn_name}"
            + (f" ({os.path.basename(source_file)})" if source_file else "")
            + ". Array-API target (2024.12). Do not edit.",
            *(["import threading", ""] if _kept(body) else []), "import array_api_compat", ""]
    if em.data_lines:
        head += [""] + em.data_lines + [""]
    defaults: list = []
    bound: dict = {}
    def_line = codegen._def_line(g, sig, func_name, defaults, em.ns, bound)
    def_line = _def_line(def_line, closure_params(g, em, closure, defaults, bound))
    blank, bindings = set(), {}
    if defaults:
        start = len(head) + 1
        for i, (name, value) in bound.items():
            blank.add(start + i)
            bindings[name] = value
        head += [""] + [_np_free(line) for line in defaults] + [""]
    lines = head + ["", def_line]
    if doc:
        lines.append(f'    """{doc}"""')
    lines += ["    " + line for line in unpack + _entry_lines(g, em, arrays)]
    for check in _checks(g, em):
        blank.add(len(lines))
        lines.append("    " + check)
    convert = closure_lines(g, closure)
    if re.search(r"\b_device\b", "\n".join(convert + em.const_lines + body + [ret])):
        lines.append(f"    _device = _device_of({arrays[0]})" if arrays else "    _device = None")
    for line in convert:
        if line.startswith("_check("):
            blank.add(len(lines))
        lines.append("    " + line)
    lines += ["    " + c for c in em.const_lines]
    lines += body
    if body and body[-1].strip() and any(line.strip().startswith("# grad of") for line in body):
        lines.append("")
    lines.append(f"    return {ret}")
    body_end = len(lines)
    text = "\n".join(lines)
    lines += ["", ""] + helpers_for(text) + _index_helpers(text)
    fast = ["" if i in blank else line for i, line in enumerate(lines)]
    return codegen.Module("\n".join(lines) + "\n", "\n".join(fast) + "\n", bindings,
                          [(name, nid) for nid, name in closure], body_end)


def _index_helpers(text) -> list:
    """The helpers of integer-array indexing the text calls (graphc/ops/xp_index.py)."""
    at, flat = "_at(xp, " in text, "_flat_index(" in text
    return (["", ""] + AT_HELPER.strip().splitlines()) * at \
        + (["", ""] + FLAT_INDEX_HELPER.strip().splitlines()) * (at or flat)


def _kept(body) -> bool:
    """Does the body keep buffers between calls (``_kept``, which needs threading)?"""
    return "_kept" in wanted("\n".join(body))


def _np_free(line):
    if "np." in line:
        raise UnsupportedError("the array-API target cannot write a NumPy array default into the "
                               "module", hint="pass the array as an argument (no array default)")
    return line
