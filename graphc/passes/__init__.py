"""Graph -> Graph optimization passes."""
from .alias import drop_aliases
from .cse import cse
from .dce import dce
from .simplify import simplify

__all__ = ["drop_aliases", "cse", "dce", "simplify", "optimize"]


def optimize(graph):
    """The default pipeline run before code generation.

    With ``GRAPHC_DEBUG=1`` the graph's invariants (:meth:`graphc.Graph.check`)
    are checked after every pass, naming the pass that broke them.
    """
    graph.debug_check("tracing and autodiff")
    for p in (drop_aliases, cse, simplify, dce, *LOOP_PASSES):
        _inside_bodies(p, graph)
        graph.debug_check(p.__name__)
    return graph


# Passes over loop nodes themselves (graphc/control/prune.py installs its pruning here).
LOOP_PASSES: list = []


def _inside_bodies(p, graph):
    """Run pass ``p`` on ``graph`` and on the bodies of its loops and branches."""
    p(graph)
    nodes = graph.node_map()
    for nid in sorted(nid for nid, node in nodes.items() if node.bodies):
        for body in nodes[nid].bodies:
            _inside_bodies(p, body)
