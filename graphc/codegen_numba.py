"""Graph -> module text for the ``"numba"`` target (fused CPU loops).

The module is the NumPy target's module, except that each chain of elementwise
nodes :mod:`graphc.numba_fuse` groups becomes one ``@numba.njit`` kernel written
after the function: one loop nest over the output, one scalar temporary per
value the chain computes (named as in the NumPy target), a comment naming the
fused source lines.  The function calls the kernel where the chain's last node
stood, passing the output buffers: a fresh ``np.empty``, or, for the GEMM result
(or any fresh array) that only the chain reads, that array itself (bias + ReLU in
place).  GEMMs, convolutions and reductions stay NumPy/BLAS.  No ``fastmath``:
each element sees the same operations in the same order as in NumPy, with
float32 results rounded after each operation.
"""
from __future__ import annotations

import os

import numpy as np

from . import codegen
from .codegen_guards import GUARD_CLASS, GUARD_HELPERS, has_guards
from .codegen_workspace import fresh_node
from .entry_checks import ENTRY_HELPERS, entry_checks, signature_text
from .naming import Namespace, sanitize
from .numba_fuse import find_groups, has_literal, scalar_form
from .precedence import prec_of
from .primitive import REGISTRY, _param_text, type_str
from .source_comments import source_text, where_short, with_comment

__all__ = ["generate_module", "NumbaEmitter"]

_DECORATOR = '@numba.njit(cache=False, fastmath=False, error_model="numpy")'
_EXACT32 = frozenset({"add", "sub", "mul", "div", "neg", "maximum", "minimum", "abs",
                      "relu", "masked_mul", "where", "identity", "stop_gradient", "contiguous"})


def _num(value, dtype):
    v = np.asarray(value).item()
    if np.dtype(dtype).kind == "b":
        return repr(bool(v))
    text = repr(float(v)) if np.isfinite(v) else f'float("{v}")'
    return f"np.float32({text})" if dtype == np.float32 else text


class NumbaEmitter(codegen.Emitter):
    """:class:`graphc.codegen.Emitter` that leaves fused groups to kernels."""

    def __init__(self, graph, inline=True, names=None):
        super().__init__(graph, inline, names)
        self.groups = find_groups(graph)
        self.kernels: list[list[str]] = []
        self.called: set = set()              # id() of the groups whose call is written
        self.queued: list = []

    def can_inline(self, nid, node):
        if any(u in self.groups for u in self.g.users(nid)):
            return False                      # a kernel's argument: a named array
        return super().can_inline(nid, node)

    def ref(self, nid, min_prec=0):
        grp = self.groups.get(nid)
        if grp is not None and id(grp) not in self.called:
            self.queued.append((grp.last, self.kernel_call(grp)))   # written before its user
        return super().ref(nid, min_prec)

    def body(self, skip=()):
        """The NumPy target's statements, with each group's kernel call where its
        last member stood (or just before its first reader)."""
        pos = {nid: i for i, nid in enumerate(self.g.order())}
        pending = sorted({id(grp): grp for grp in self.groups.values()}.values(),
                         key=lambda grp: pos[grp.last])
        for nid, lines in super().body(skip=set(skip) | set(self.groups)):
            yield from self.queued
            self.queued.clear()
            for grp in pending:
                if pos[grp.last] < pos[nid] and id(grp) not in self.called:
                    yield grp.last, self.kernel_call(grp)
            yield nid, lines
        for grp in pending:
            if id(grp) not in self.called:
                yield grp.last, self.kernel_call(grp)

    def kernel_call(self, grp):
        g = self.g
        self.called.add(id(grp))
        ins, outs = _inputs(g, grp), _outputs(g, grp)
        for m in outs:
            self.name[m] = self.ns.new(g.display_name(m, self.name))
        for m in grp.members:
            if m not in outs:
                self.donated.add(m)           # (no array: nothing to del)
        kname = self.ns.new(f"_fused_{self.name[outs[-1]]}")
        bufs, donors = [], set()
        for m in outs:
            donor = next((a for a in ins if a not in donors and _donor(g, a, m, grp)), None)
            if donor is not None:
                donors.add(donor)
                bufs.append(self.name[donor])
            else:
                shape = tuple(g[m].shape)
                bufs.append(f"np.empty({shape!r}, np.{g[m].dtype.name})")
        # (a 0-d array goes in as its scalar: numba would make arrays of each element's math)
        args = [self.ref(a, 100) + ("[()]" if not g[a].shape and not g[a].weak else "")
                for a in ins if not _literal_input(g, a)]
        self.kernels.append(kernel_text(self, kname, grp, ins, outs))
        lhs = ", ".join(self.name[m] for m in outs)
        return [f"{lhs} = {kname}({', '.join(args + bufs)})"]


def _outputs(g, grp):
    """Members read outside the group (or returned), in program order."""
    members, returned = set(grp.members), set(g.outputs)
    return [m for m in grp.members
            if m in returned or any(u not in members for u in g.users(m))]


def _inputs(g, grp):
    members, out = set(grp.members), []
    for m in grp.members:
        for a in g[m].args:
            if a not in members and a not in out:
                out.append(a)
    return out


def _literal_input(g, a):
    return g[a].op == "const" and g.aval(a).size <= 1


def _donor(g, a, m, grp):
    """Output ``m`` may be written into input ``a``'s buffer: a fresh array of its shape
    and dtype that only this group reads (each element read before it is written)."""
    node, out = g[a], g[m]
    members = set(grp.members)
    # (forward only: written in place, a backward mask kernel measured 2x slower at
    # batch 65,536 than into a fresh array; numba cannot prove the two apart)
    return (grp.section != "backward" and node.op != "const" and a not in g.outputs and fresh_node(g, a)
            and tuple(node.shape) == tuple(out.shape) and node.dtype == out.dtype
            and all(u in members for u in g.users(a)))


def _index(shape, out_shape, idx):
    """``[i, j]`` / ``[0, j]`` / ``[j]`` for an operand of ``shape``."""
    lead = len(out_shape) - len(shape)
    parts = ["0" if s == 1 and out_shape[lead + k] != 1 else idx[lead + k]
             for k, s in enumerate(shape)]
    return f"[{', '.join(parts)}]"


_IDX = ("i", "j", "k", "l", "m", "n")


def kernel_text(em, kname, grp, ins, outs):
    """The lines of one ``@numba.njit`` kernel."""
    g = em.g
    ns = Namespace()
    idx = [ns.new(_IDX[d] if d < len(_IDX) else f"i{d}") for d in range(len(grp.shape))]
    params = {}
    for a in ins:
        if not _literal_input(g, a):
            params[a] = ns.new(em.ref(a) if em.ref(a).isidentifier() else "arg")
    out_params = {m: ns.new(f"{em.name[m]}_out") for m in outs}
    body, ref = _element_lines(em, grp, ins, outs, params, idx, ns)
    head = [_DECORATOR,
            f"def {kname}({', '.join(list(params.values()) + list(out_params.values()))}):"]
    seen = []
    for m in grp.members:
        line = source_text(g[m].where)
        if line and line not in seen:
            seen.append(line)
    head += [f"    # fuses {where_short(g[grp.members[0]].where) or 'the lines'}: {s}"
             if i == 0 else f"    #       {s}" for i, s in enumerate(seen)] or \
        [f"    # fuses {len(grp.members)} elementwise ops"]
    first = out_params[outs[0]]
    lines, ind = [], "    "
    for d, i in enumerate(idx):
        lines.append(f"{ind}for {i} in range({first}.shape[{d}]):")
        ind += "    "
    lines += [ind + line for line in body]
    sub = "[" + ", ".join(idx) + "]"
    lines += [f"{ind}{out_params[m]}{sub} = {ref[m]}" for m in outs]
    rets = ", ".join(out_params[m] for m in outs)
    return head + lines + [f"    return {rets}"]


def _element_lines(em, grp, ins, outs, params, idx, ns):
    g = em.g
    ref: dict = {}
    for a in ins:
        node = g[a]
        if _literal_input(g, a):
            want = _operand_dtype(g, a, grp)
            ref[a] = (_num(node.value, want), 100)
        elif len(node.shape) == 0:          # a Python float meets float32 as float32 (NEP 50)
            weak32 = node.weak and _operand_dtype(g, a, grp) == np.float32
            ref[a] = (f"np.float32({params[a]})" if weak32 else params[a], 100)
        else:
            ref[a] = (params[a] + _index(tuple(node.shape), grp.shape, idx), 100)
    members, out_set, lines = set(grp.members), set(outs), []
    for m in grp.members:
        if g[m].op == "masked_mul":         # product first, then a select: no branch
            lines += _masked_lines(g, m, ref, ns)
        text = _member_text(g, m, ref)
        if _inlined(g, m, members, out_set):
            ref[m] = (text, prec_of(text))
            continue
        name = ns.new(sanitize(em.name.get(m) or g.display_name(m, em.name)))
        lines.append(with_comment(f"{name} = {text}", type_str((), g[m].dtype)))
        ref[m] = (name, 100)
    return lines, {m: ref[m][0] for m in outs}


def _masked_lines(g, m, ref, ns):
    """Name ``masked_mul``'s operands and their product, so that its scalar form
    ``p if w != 0 else 0.0`` is a select of two computed values (vectorizable)."""
    lines = []
    x, w = g[m].args
    for a, hint in ((x, "x"), (w, "mask")):
        text, prec = ref[a]
        if not text.isidentifier():
            name = ns.new(hint)
            lines.append(f"{name} = {text}")
            ref[a] = (name, 100)
    prod = ns.new("prod")
    mul = f"{ref[x][0]} * {ref[w][0]}"
    if g[m].dtype == np.float32 and (g[x].dtype != np.float32 or g[w].dtype != np.float32):
        mul = f"np.float32({mul})"
    lines.append(f"{prod} = {mul}")
    ref[("prod", m)] = (prod, 100)
    return lines


def _operand_dtype(g, a, grp):
    """A scalar constant's dtype in the kernel: float32 next to float32 values (NEP 50)."""
    node = g[a]
    if not node.weak:
        return node.dtype
    user = next(u for u in g.users(a) if u in set(grp.members))
    others = [g[b].dtype for b in g[user].args if b != a and not g[b].weak]
    if node.dtype.kind in "iuf" and np.float32 in others:
        return np.dtype(np.float32)
    return np.dtype(np.float64) if node.dtype.kind in "iuf" else node.dtype


def _member_text(g, m, ref):
    node = g[m]
    prim = REGISTRY[node.op]
    tmpl = scalar_form(node.op)
    args = []
    for i, a in enumerate(node.args):
        text, prec = ref[a]
        need = min(prim.slot_prec(i, len(node.args), tmpl), 100)
        args.append(f"({text})" if prec < need else text)
    params = {k: _param_text(v) for k, v in node.params.items()}
    if node.op == "masked_mul":
        zero = _num(0.0, node.dtype)
        return f"{ref[('prod', m)][0]} if {args[1]} != 0 else {zero}"
    text = tmpl.format(*args, **params)
    if node.dtype == np.float32 and node.op != "astype":
        exact = node.op in _EXACT32 and not has_literal(tmpl) \
            and all(g[a].dtype == np.float32 or g[a].op == "const" for a in node.args)
        if not exact:
            text = f"np.float32({text})"    # numba computes in float64: round as NumPy does
    return text


def _inlined(g, m, members, outs):
    """A member used once, by a member, and not a kernel output: written into its user."""
    if m in outs or g[m].name or g.n_uses(m) != 1:
        return False
    user = g.users(m)[0]
    if user not in members:
        return False
    slot = g[user].args.index(m)            # a template reading its slot twice: a name
    return scalar_form(g[user].op).count("{%d}" % slot) == 1


# --- the module -----------------------------------------------------------------------
def _body_lines(em):
    """:func:`graphc.codegen._body_lines` for this target: large values deleted after
    their last use (a kernel call counts as a use by each member), no ``out=`` rewrites."""
    items = list(em.body())
    expanded, back = [], []
    for i, (nid, lines) in enumerate(items):
        grp = em.groups.get(nid)
        for m in (grp.members if grp is not None and nid == grp.last else [nid]):
            expanded.append((m, lines))
            back.append(i)
    frees: dict = {}
    for k, names in codegen._frees(em, expanded).items():
        frees.setdefault(back[k], []).extend(names)
    out, last_block, g = [], None, em.g
    for i, (nid, lines) in enumerate(items):
        node = g[em.groups[nid].members[0]] if nid in em.groups else g[nid]
        shape = type_str(g[nid].shape, g[nid].dtype)
        if node.section in ("backward", "tangent"):
            label = codegen._head_label(g, node)
            block = (label, node.where or node.grad_of)
            if block != last_block:
                head = source_text(node.where) or codegen._forward_text(em, node.grad_of)
                if node.section == "backward":
                    out.append("")
                out.append(f"    # {label}: {head}")
                last_block = block
            comment = shape
        else:
            last_block = None
            w = where_short(node.where)
            comment = f"{shape}  {w}" if w else shape
        if node.op in codegen.SUBGRAPH_OPS:
            out.extend("    " + line for line in lines)
            lines = ()
        at = len(lines) - 1
        if node.op == "guard":
            at, comment = 0, where_short(node.where) or "guard"
        out += ["    " + (with_comment(line, comment) if k == at else line)
                for k, line in enumerate(lines)]
        if i in frees:
            out.append(f"    del {', '.join(frees[i])}")
    return out


def generate_module(g, func_name: str, doc: str = "", source_file: str | None = None,
                    signature=None) -> codegen.Module:
    """:func:`graphc.codegen.generate_module` for the ``"numba"`` target."""
    sig = g.signature if signature is None else signature
    em = NumbaEmitter(g)
    em.ns.reserve(func_name)
    em.ns.reserve("numba")
    guarded = has_guards(g)
    if guarded:
        em.ns.reserve(GUARD_CLASS)
    unpack = codegen._reserve_inputs(g, em, sig)
    body = _body_lines(em)
    ret = codegen._return_expr(g, em)
    head = [f"# Generated by graphc from {g.fn_name}"
            + (f" ({os.path.basename(source_file)})" if source_file else "")
            + ". Numba target: fused elementwise loops. Do not edit.",
            "import numba", "import numpy as np", ""]
    if em.module_consts:
        head += [""] + em.module_consts + [""]
    defaults: list = []
    bound: dict = {}
    closure = [(nid, em.name[nid]) for nid in codegen._closure_nodes(g)]
    def_line = codegen._def_line(g, sig, func_name, defaults, em.ns, bound, closure)
    blank, bindings = set(), {}
    if defaults:
        start = len(head) + 1
        for i, (name, value) in bound.items():
            blank.add(start + i)
            bindings[name] = value
        head += [""] + defaults + [""]
    checks = entry_checks(g, sig, closure)
    lines = head + ["", def_line] + ([f'    """{doc}"""'] if doc else [])
    if checks:
        for expected_line, raise_line in checks[1]:
            blank.update((len(lines), len(lines) + 1))
            lines += ["    " + expected_line, "        " + raise_line]
    lines += ["    " + line for line in unpack + codegen._weak_inputs_to_numpy(g, em)]
    lines += body
    if body and body[-1].strip() and any(s.strip().startswith("# grad of") for s in body):
        lines.append("")
    lines.append(f"    return {ret}")
    for kernel in em.kernels:
        lines += ["", ""] + kernel
    body_end = len(lines)
    if checks:
        lines += ["", "", signature_text(checks[0]), "", "", ENTRY_HELPERS.strip()]
    if guarded:
        lines += ["", "", GUARD_HELPERS.strip()]
    fast = ["" if i in blank else line for i, line in enumerate(lines)]
    return codegen.Module("\n".join(lines) + "\n", "\n".join(fast) + "\n", bindings,
                          [(name, nid) for nid, name in closure], body_end)
