"""Which line of the generated code computes each node of a graph.

Drawings (tooltips) and ``graphc.report`` (linked views) point from a node to
its generated-code line.  :func:`code_map` generates the module for a graph
and names its values exactly as :mod:`graphc.codegen` does; a node the code
writes inline (a value used once) maps to the line of the statement that
reads it, an input to the ``def`` line.
"""
from __future__ import annotations

import dataclasses
import re

from . import codegen
from .codegen_guards import GUARD_CLASS, has_guards
from .naming import sanitize, unique_names
from .signature import Param

__all__ = ["CodeMap", "code_map"]


@dataclasses.dataclass
class CodeMap:
    """``source``: the module text; ``line_of``: node id -> 1-based line number;
    ``name_of``: node id -> the variable the code gives it (absent when inlined)."""
    source: str
    line_of: dict
    name_of: dict

    def line_text(self, nid) -> str:
        n = self.line_of.get(nid)
        if not n:
            return ""
        return self.source.splitlines()[n - 1].split("  # ")[0].strip()   # without its comment


def _def_signature(g):
    sig = g.signature
    if sig is None:
        return None
    names = unique_names([p.name for p in sig.params])
    return dataclasses.replace(sig, params=[Param(n, p.kind, p.default)
                                            for n, p in zip(names, sig.params)])


def code_map(g, func_name=None, doc="") -> CodeMap:
    """The generated module of ``g`` and where each node is computed in it."""
    func_name = func_name or sanitize(g.fn_name)
    sig = _def_signature(g)
    source = codegen.generate_module(g, func_name, doc=doc, signature=sig).source
    em = codegen.Emitter(g)
    em.ns.reserve(func_name)
    if has_guards(g):
        em.ns.reserve(GUARD_CLASS)
    codegen._reserve_inputs(g, em, sig)
    for _ in em.body():
        pass
    lines = source.splitlines()
    start = next((i for i, t in enumerate(lines) if t.startswith(f"def {func_name}(")), 0)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("return ")),
               len(lines) - 1)
    line_of = {}
    for nid, name in em.name.items():
        if g[nid].op == "input":
            line_of[nid] = start + 1
            continue
        pattern = re.compile(rf"^\s+{re.escape(name)}(\[[^\]]*\])?\s*=[^=]")
        hit = next((i for i in range(start, end + 1) if pattern.match(lines[i])), None)
        if hit is not None:
            line_of[nid] = hit + 1
    for nid in reversed(g.order()):           # inlined values: their reader's line
        if nid in line_of or g[nid].op == "const":
            continue
        users = [u for u in g.users(nid) if u in line_of]
        if users:
            line_of[nid] = line_of[min(users)]
    outputs = [o for o in g.outputs if o not in line_of]
    for o in outputs:
        line_of[o] = end + 1
    return CodeMap(source, line_of, dict(em.name))
