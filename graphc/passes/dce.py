"""Dead-code elimination: drop every node no output depends on."""
from __future__ import annotations

import networkx as nx

from ..naming import base_name, sanitize


def dce(graph):
    """Remove nodes that no output needs (inputs always stay).  In place."""
    live = set(graph.outputs) | set(graph.inputs)
    for o in graph.outputs:
        live |= nx.ancestors(graph.nx, o)
    dead = [n for n in graph.nx.nodes if n not in live]
    if not dead:
        return graph
    dead_set = set(dead)
    # An adjoint whose primal goes away keeps its d_<name>.
    for n in live:
        node = graph.nx.nodes[n]
        primal = node.get("adjoint_of")
        if primal in dead_set and not node.get("hint"):
            node["hint"] = "d_" + sanitize(base_name(graph, primal))
    graph.remove_nodes(dead)
    return graph
