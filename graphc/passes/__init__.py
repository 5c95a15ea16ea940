"""Graph -> Graph optimization passes."""
from .dce import dce

__all__ = ["dce", "optimize"]


def optimize(graph):
    """The default pipeline run before code generation."""
    dce(graph)
    return graph
