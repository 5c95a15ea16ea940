"""Graph -> Graph optimization passes."""
from .alias import drop_aliases
from .cse import cse
from .dce import dce
from .simplify import simplify

__all__ = ["drop_aliases", "cse", "dce", "simplify", "optimize"]


def optimize(graph):
    """The default pipeline run before code generation."""
    drop_aliases(graph)
    cse(graph)
    simplify(graph)
    dce(graph)
    return graph
