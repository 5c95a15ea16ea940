"""Generated code for writes (``setitem`` nodes): in place when nothing can tell.

The ``setitem`` record emits the functional form, ``y_1 = y.copy()`` then
``y_1[i] = v``, which is always correct.  When the old array is a fresh array
of the generated function's own (never an argument, a result, a module
constant, or a view of one) and nothing reads it, or a view of it, after the
write, codegen writes into it instead, keeping its name, so the code reads
like the user's own: ``h = np.zeros((5, 3))`` then ``h[1] = np.tanh(...)``.
"""
from __future__ import annotations

from .ops.index import spec_text
from .primitive import REGISTRY

__all__ = ["inplace_write"]

# Ops whose NumPy result (of one dimension or more) is always a new array.
_FRESH_OPS = frozenset("setitem add sub mul div neg pow exp log sin cos tan tanh sqrt log1p "
                       "expm1 abs maximum minimum matmul".split())
# Constant texts that build a new array each time they run (codegen's literals).
_FRESH_TEXT = ("np.zeros(", "np.ones(", "np.full(", "np.array(", "np.arange(")


def _fresh(op) -> bool:
    prim = REGISTRY.get(op)
    return op in _FRESH_OPS or (prim is not None and prim.fresh_result)


def inplace_write(em, nid, node):
    """The lines of ``setitem`` node ``nid`` written in place, or None (use the copy form).

    ``em`` is codegen's emitter: ``g``, ``name``, ``expr``, ``ns``, ``outputs``;
    ``em.donated`` collects the nodes whose variable the write took over.
    """
    g = em.g
    donor = node.args[0]
    dnode = g[donor]
    idx = spec_text(node.params["spec"], [em.ref(a, 0) for a in node.args[2:]])
    value = em.ref(node.args[1], 0)
    if dnode.op == "const":
        text = em.expr.get(donor, ("",))[0]
        if not text.startswith(_FRESH_TEXT):
            return None
        name = em.ns.new(g.display_name(nid, em.name))
        em.name[nid] = name
        return [f"{name} = {text}", f"{name}[{idx}] = {value}"]
    if (donor not in em.name or donor in em.expr or donor in em.outputs
            or not _fresh(dnode.op) or _read_later(em, donor, nid)):
        return None
    em.name[nid] = em.name[donor]
    em.donated.add(donor)
    return [f"{em.name[donor]}[{idx}] = {value}"]


def _read_later(em, donor, nid) -> bool:
    """Is ``donor``'s memory read after node ``nid``'s statement, directly or through
    a value that may be a view of it (anything not known to be fresh)?"""
    g = em.g
    if not hasattr(em, "position"):
        em.position = {n: i for i, n in enumerate(g.order())}
    pos = em.position
    seen = set()

    def later(u, depth):
        for w in g.users(u):
            if w == nid or w in seen:
                continue
            seen.add(w)
            if w in em.outputs or depth > 20:
                return True
            m = w
            while m in em.expr and g[m].op != "const":      # inlined into its user's line
                m = next(iter(g.users(m)))
            if m != nid and pos[m] > pos[nid]:
                return True
            if not _fresh(g[w].op) and later(w, depth + 1):
                return True
        return False
    return later(donor, 0)
