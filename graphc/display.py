"""Rich display in notebooks: generated code as highlighted HTML, compiled callables as a summary.

Jupyter shows an object through its ``_repr_html_`` / ``_repr_markdown_``
methods.  :class:`SourceText` is the ``str`` that ``Compiled.source()`` returns:
a plain string everywhere (``print``, ``write``, ``==``), highlighted code in a
notebook.  :func:`compiled_html` and :func:`compiled_markdown` summarize a
:class:`graphc.Compiled`: its transform, function and the signatures compiled so far.
Every piece of user text is escaped; the HTML has no links, scripts or styles
from outside.
"""
from __future__ import annotations

import html

__all__ = ["SourceText", "highlight_html", "compiled_html", "compiled_markdown"]


class SourceText(str):
    """Generated source: a ``str`` that a notebook displays as highlighted code.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> src = graphc.compile(lambda x: np.sin(x) * 2.0).source(0.5)
    >>> isinstance(src, str), "def " in src, src._repr_html_().startswith("<div")
    (True, True, True)
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        return highlight_html(str(self))

    def _repr_markdown_(self) -> str:
        return f"```python\n{self}\n```"


def highlight_html(code: str) -> str:
    """``code`` as an HTML block, highlighted with Pygments when it is installed
    (Jupyter always has it), else escaped in a ``<pre>``."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f'<div class="graphc-source"><pre>{html.escape(code)}</pre></div>'
    body = highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
    return f'<div class="graphc-source">{body}</div>'


def _signatures(compiled) -> list:
    """Text of each compiled signature: the traced graph's inputs with their types."""
    from .primitive import type_str
    out = []
    for entry in list(compiled._cache.values()):
        g = entry.graph          # (guarded paths: the path the last call took)
        text = ", ".join(f"{g[n].name}: {type_str(g[n].shape, g[n].dtype)}" for n in g.inputs)
        paths = getattr(entry, "paths", None)
        n = len(paths) if paths else 0
        out.append(text + (f"; {n} guarded path{'s' if n != 1 else ''}" if paths else ""))
    return out


def _title(compiled) -> str:
    from .capture import function_name
    from .naming import display
    kind = compiled._kind
    name = display(function_name(compiled._fn))
    if kind in ("grad", "value_and_grad"):
        return f"graphc.{kind}({name}, argnums={compiled._argnums!r})"
    return f"graphc.{kind}({name})"


def compiled_markdown(compiled) -> str:
    """A Markdown summary of a compiled callable (notebooks)."""
    sigs = _signatures(compiled)
    lines = [f"**{html.escape(_title(compiled))}**: {len(sigs)} signature{'s' if len(sigs) != 1 else ''} "
             f"compiled (cache size {compiled.cache_size})"]
    lines += [f"- `({s})`" for s in sigs]
    if not sigs:
        lines.append("- none yet: the first call traces and compiles")
    return "\n".join(lines)


def compiled_html(compiled) -> str:
    """An HTML summary of a compiled callable (notebooks)."""
    esc = html.escape
    sigs = _signatures(compiled)
    items = "".join(f"<li><code>({esc(s)})</code></li>" for s in sigs) or \
        "<li>none yet: the first call traces and compiles</li>"
    return (f'<div class="graphc-compiled"><b>{esc(_title(compiled))}</b>: '
            f"{len(sigs)} signature{'s' if len(sigs) != 1 else ''} compiled "
            f"(cache size {compiled.cache_size})<ul>{items}</ul>"
            "<small>.source(*args) shows the generated code, .trace(*args, values=True) "
            "the evaluation trace</small></div>")
