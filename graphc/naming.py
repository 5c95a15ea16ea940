"""Readable, unique, safe Python names for graph values.

Names come from the user's variables where known, from a composite's name
hint, from the primal for adjoints (``d_<name>``) and otherwise from the op
(``matmul``, ``matmul_1``).  Every name is sanitized: no user-controlled text
ever becomes anything but a plain ASCII identifier, and keywords, builtins
and ``np`` are never shadowed.
"""
from __future__ import annotations

import builtins
import keyword
import re

RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"np", "numpy"}


def sanitize(text: str) -> str:
    """Turn arbitrary text into a plain ASCII identifier (never a keyword)."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(text))
    name = re.sub(r"__+", "_", name).strip("_") or "v"
    if name[0].isdigit():
        name = "v" + name
    if name in RESERVED:
        name += "_"
    return name


class Namespace:
    """Hands out unique identifiers: ``base``, ``base_1``, ``base_2`` ..."""

    def __init__(self, taken=()):
        self._used = set(taken) | RESERVED
        self._count: dict[str, int] = {}

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def new(self, base: str) -> str:
        base = sanitize(base)
        if base not in self._used:
            self._used.add(base)
            return base
        i = self._count.get(base, 0)
        stem = base.rstrip("_") or base     # sum_ -> sum_1, not sum__1
        while True:
            i += 1
            cand = f"{stem}_{i}"
            if cand not in self._used:
                self._count[base] = i
                self._used.add(cand)
                return cand


def base_name(graph, nid) -> str:
    """The name a node would like, before uniquing."""
    node = graph.nx.nodes[nid]
    if node.get("name"):
        return node["name"]
    primal = node.get("adjoint_of")
    if primal is not None and primal in graph.nx:
        return "d_" + sanitize(base_name(graph, primal))
    if node.get("hint"):
        return node["hint"]
    return node["op"]
