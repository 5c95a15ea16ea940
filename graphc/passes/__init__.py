"""Graph -> Graph optimization passes."""
from .alias import drop_aliases
from .cse import cse
from .dce import dce

__all__ = ["drop_aliases", "cse", "dce", "optimize"]


def optimize(graph):
    """The default pipeline run before code generation."""
    drop_aliases(graph)
    cse(graph)
    dce(graph)
    return graph
