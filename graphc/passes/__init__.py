"""Graph -> Graph optimization passes."""
from .cse import cse
from .dce import dce

__all__ = ["cse", "dce", "optimize"]


def optimize(graph):
    """The default pipeline run before code generation."""
    cse(graph)
    dce(graph)
    return graph
