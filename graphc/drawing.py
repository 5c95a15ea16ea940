"""A drawing as an object: shown inline in Jupyter, saved to a file, big graphs collapsed.

``graphc.render(..., path=None)`` returns a :class:`Drawing`; with a path it
saves one.  SVG, PNG and PDF need Graphviz's ``dot`` program; ``.dot`` and
``.gv`` are the DOT text and need nothing.  Files are written whole or not at
all (:func:`graphc._files.write_atomic`).
"""
from __future__ import annotations

import html
import pathlib
import shutil
import subprocess

from ._files import check_path, check_target, write_atomic
from .draw import INSTALL_HINT, to_dot
from .draw_options import check_options
from .errors import OptionError, RenderError, RenderPathError
from .file_marks import graphc_wrote, mark
from .ir import install_product

__all__ = ["Drawing", "draw", "render_graph", "graph_values", "dot_available", "AUTO_COLLAPSE"]

# Drawn inline (path=None), a graph with more nodes than this and graphc.scope
# blocks is drawn one box per scope unless collapse= says otherwise.
AUTO_COLLAPSE = 60
_FORMATS = ("svg", "png", "pdf", "dot", "gv")


def dot_available() -> bool:
    return shutil.which("dot") is not None


_NOT_OURS = ("graphc replaces only drawings and pages it wrote itself: pass overwrite=True "
             "to replace it, or choose another path")


class Drawing:
    """A drawn graph: ``.source`` (DOT text), ``.svg()``, ``.save(path)``; Jupyter shows it.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> d = graphc.render(lambda x: np.sum(np.exp(x) * x), np.ones(3), backward=True)
    >>> "cluster_backward" in d.source
    True
    >>> d.save(os.path.join(tempfile.mkdtemp(), "f.dot")).suffix
    '.dot'
    """

    def __init__(self, dot, name="graph"):
        self.dot = dot
        self.name = name

    @property
    def source(self) -> str:
        return self.dot.source

    def __repr__(self) -> str:
        return f"<graphc.Drawing of {self.name}: {self.source.count(' [label=')} nodes>"

    def pipe(self, fmt: str, label: str = "") -> bytes:
        exe = shutil.which("dot")
        if exe is None:
            raise RenderError(f"Graphviz's `dot` program was not found on PATH, so graphc cannot "
                              f"draw {fmt.upper()}", hint=INSTALL_HINT)
        try:
            proc = subprocess.run([exe, f"-T{fmt}"], input=self.source.encode(),
                                  capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RenderError(f"Graphviz's `dot` ({exe}) failed to run: {e}",
                              hint="reinstall Graphviz; " + INSTALL_HINT) from None
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode(errors="replace").strip()[:500] or "no error output"
            raise RenderError(
                f"Graphviz's `dot` ({exe}) failed on {label or 'the ' + fmt + ' drawing'} with exit status "
                f"{proc.returncode}: {err}",
                hint="check the Graphviz installation (`dot -V`); a .dot or .gv file name "
                     "writes the DOT text without running dot")
        return proc.stdout

    def svg(self) -> str:
        """The drawing as SVG text (needs Graphviz's ``dot``)."""
        return self.pipe("svg").decode()

    def _repr_svg_(self):
        return self.svg() if dot_available() else None

    def _repr_html_(self):
        if not dot_available():
            return ("<p>Graphviz's <code>dot</code> is not installed; the DOT text:</p><pre>"
                    + html.escape(self.source) + "</pre>")
        return '<div style="max-width:100%;overflow:auto">' + self.svg() + "</div>"

    def save(self, path, overwrite=False) -> pathlib.Path:
        """Write the drawing to ``path``; the format comes from the suffix.  An existing
        file is replaced if graphc drew it (:mod:`graphc.file_marks`) or with
        ``overwrite=True``; never a directory, link, FIFO or device."""
        path = check_path(path, "graphc.render")
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in _FORMATS:
            raise OptionError(f"cannot render to {path.name}: unknown format {fmt!r}",
                              hint="use a .svg, .png, .pdf, .dot or .gv file name")
        if fmt not in ("dot", "gv") and not dot_available():
            raise RenderError("Graphviz's `dot` program was not found on PATH, so graphc cannot "
                              f"write {path.name}", hint=INSTALL_HINT)
        # dot writes to its stdout; the bytes then go through write_atomic (a fresh
        # O_EXCL temporary file, then a rename), so a failure never leaves a
        # half-written drawing at `path`, and a link, FIFO or device is refused.
        replace = overwrite is True or graphc_wrote(path, fmt)
        check_target(path, replace, "graphc.render", RenderPathError, hint=_NOT_OURS)
        data = mark(fmt, self.source if fmt in ("dot", "gv") else self.pipe(fmt, path.name))
        write_atomic(path, data, overwrite=replace, what="graphc.render", error=RenderPathError,
                     hint=_NOT_OURS)
        return path


def draw(graph, values=None, inline=False, **options) -> Drawing:
    """The :class:`Drawing` of ``graph``; ``inline`` (no file asked for) collapses a big
    graph by scope unless ``collapse=`` is given."""
    if inline and options.get("collapse") is None and len(graph) > AUTO_COLLAPSE \
            and any(graph[n].scope for n in graph):
        options["collapse"] = True
    return Drawing(to_dot(graph, values=values, **options), graph.fn_name)


def render_graph(graph, path, overwrite=False, **kwargs) -> pathlib.Path:
    """Write ``graph`` to ``path``; the format comes from the suffix.

    ``.svg``, ``.png``, ``.pdf`` need Graphviz's ``dot`` program; ``.dot`` and
    ``.gv`` write DOT text and need nothing.
    """
    path = check_path(path, "graphc.render")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise OptionError(f"cannot render to {path.name}: unknown format {fmt!r}",
                          hint="use a .svg, .png, .pdf, .dot or .gv file name")
    values = kwargs.pop("values", None)
    check_options(**kwargs)
    return draw(graph, values=values, **kwargs).save(path, overwrite=overwrite)


def graph_values(graph, fn, args, kwargs) -> dict:
    """``{node id: value}`` of ``graph`` (traced from ``fn(*args, **kwargs)``) on those arguments."""
    from .interpret import evaluate
    from .pytree import flatten
    from .signature import from_function
    _, bound = from_function(fn, list(args), dict(kwargs))
    leaves = iter(flatten(tuple(bound))[0])
    inputs = []
    for nid in graph.inputs:
        inputs.append(graph[nid].value if graph[nid].closure else next(leaves, None))
    if any(type(x).__name__ == "Spec" or x is None for x in inputs):
        raise OptionError("values=True needs real example arguments, not graphc.Spec placeholders",
                          hint="pass arrays (np.ones(shape)) to draw values, or drop values=True")
    return evaluate(graph, inputs)


def _graph_svg(graph) -> str | None:
    """``Graph._repr_svg_``: big graphs collapsed by scope."""
    if not dot_available():
        return None
    return draw(graph, inline=True).svg()


install_product("render", render_graph)
install_product("svg", _graph_svg)
