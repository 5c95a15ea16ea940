"""``with trace.context(**attrs):``: stamp attributes on the nodes made inside.

A plain class rather than a generator context manager: the backward pass enters
one per differentiated node (graphc/tracing.py's ``Trace.context``).
"""
from __future__ import annotations

__all__ = ["Stamp"]


class Stamp:
    """Set ``trace.attrs`` to ``{**trace.attrs, **attrs}`` for the block, then restore it."""

    __slots__ = ("trace", "attrs", "old")

    def __init__(self, trace, attrs):
        self.trace, self.attrs = trace, attrs

    def __enter__(self):
        self.old = self.trace.attrs
        self.trace.attrs = {**self.old, **self.attrs}

    def __exit__(self, *exc):
        self.trace.attrs = self.old
        return False
