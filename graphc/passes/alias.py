"""Remove ``identity`` aliases (they only matter while differentiating)."""
from __future__ import annotations


def drop_aliases(graph, keep=()):
    """Replace every use of an ``identity`` node by its argument, in place.

    ``keep``: identity nodes to leave (the kept adjoints of a displayed trace,
    graphc/trace_display.py)."""
    aliases = {}
    nodes = graph.node_map()
    for nid in graph.order():
        node = nodes[nid]
        if node.op != "identity" or nid in keep:
            continue
        src = node.args[0]
        aliases[nid] = aliases.get(src, src)
        graph.replace_uses(nid, src)
        graph.remove_nodes([nid])
    if aliases:  # adjoints of an alias are adjoints of the value it stood for
        for node in nodes.values():
            if node.adjoint_of in aliases:
                node.adjoint_of = aliases[node.adjoint_of]
            if node.tangent_of in aliases:
                node.tangent_of = aliases[node.tangent_of]
    return graph
