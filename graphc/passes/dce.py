"""Dead-code elimination: drop every node no output depends on."""
from __future__ import annotations

from ..naming import sanitize


def dce(graph):
    """Remove nodes that no output needs (inputs always stay).  In place."""
    # One walk from all outputs together: per-output nx.ancestors would visit
    # shared parts of the graph once per output.
    live = set(graph.inputs)
    # guards (graphc/ops/guard.py) are roots: no output reads them, yet they stay
    nodes = graph.node_map()
    stack = list(set(graph.outputs) | {n for n, node in nodes.items() if node.op == "guard"})
    seen = set(stack)
    while stack:
        n = stack.pop()
        for a in nodes[n].args:
            if a not in seen:
                seen.add(a)
                stack.append(a)
    live |= seen
    dead = [n for n in graph if n not in live]
    if not dead:
        return graph
    dead_set = set(dead)
    # An adjoint whose primal goes away keeps its d_<name>.
    for n in live:
        node = graph[n]
        primal = node.adjoint_of
        if primal in dead_set and not node.hint:
            node.hint = graph.display_name(n)        # d_<name>, by the one naming rule
        primal = node.tangent_of           # a tangent whose primal goes away keeps dot_<name>
        if primal in dead_set and not node.hint:
            node.hint = "dot_" + sanitize(graph.display_name(primal))
    graph.remove_nodes(dead)
    return graph
