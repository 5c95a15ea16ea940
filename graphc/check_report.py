"""What :func:`graphc.check` returns: a :class:`CheckReport` of one :class:`CheckRow` per
differentiated input, printed as a table (``str``), and shown in notebooks as HTML or
Markdown with the derivatives in LaTeX.

The verdict is never OK for something that was not verified: no rows, a row of zero
elements checked, or a mismatch (API §2).

Examples
--------
>>> report = CheckReport("f", [CheckRow("x", "proved", 0.0, elements=3, checked=3)])
>>> report.ok, str(report).splitlines()[0]
(True, 'graphc.check(f): OK')
>>> CheckReport("f", [CheckRow("x", "proved", 0.0)]).ok      # 0 of 0 elements: not verified
False
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["CheckReport", "CheckRow"]


@dataclass
class CheckRow:
    """One differentiated input: ``status`` is "proved", "numeric" or "mismatch"."""

    input: str
    status: str
    max_error: float
    elements: int = 0
    checked: int = 0
    method: str = ""
    derivative: object = None      # SymPy expression (scalar inputs)
    note: str = ""

    def latex(self) -> str:
        return sp.latex(self.derivative) if self.derivative is not None else ""


@dataclass
class CheckReport:
    """The result of :func:`check`; ``bool(report)`` is ``report.ok``."""

    function: str
    rows: list = field(default_factory=list)
    value: object = None             # SymPy expression of the output (small graphs)
    notes: list = field(default_factory=list)
    # [(condition, "file.py:LINE"), ...]: the decisions of the path checked (graphc/guards.py)
    guards: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # nothing checked is nothing verified: also an input of zero elements (0/0)
        return bool(self.rows) and all(r.status != "mismatch" and r.checked > 0
                                       for r in self.rows)

    def __bool__(self):
        return self.ok

    def _verdict(self):
        if self.ok:
            return "OK"
        if any(r.status == "mismatch" for r in self.rows):
            return "MISMATCH"
        return "NOT ALL CHECKED" if any(r.checked for r in self.rows) else "NOTHING CHECKED"

    def __str__(self):
        head = f"graphc.check({self.function}): {self._verdict()}"
        w = max([len(r.input) for r in self.rows] + [5])
        lines = [head, f"  {'input':<{w}}  {'status':<8}  {'max error':>9}  {'checked':>9}  how"]
        for r in self.rows:
            lines.append(f"  {r.input:<{w}}  {r.status:<8}  {r.max_error:>9.2e}  "
                         f"{f'{r.checked}/{r.elements}':>9}  {r.method}")
        for r in self.rows:
            if r.derivative is not None:
                text = str(r.derivative)
                if len(text) > 300:
                    text = f"({sp.count_ops(r.derivative)} operations; see report.rows[...].derivative)"
                lines.append(f"  d{self.function}/d{r.input} = {text}")
            if r.note:
                lines.append(f"  note ({r.input}): {r.note}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self):
        """A notebook's table (API §11): verdict, one row per input, derivatives, notes."""
        esc = html.escape
        colour = "#15803d" if self.ok else "#b91c1c"
        head = "".join(f"<th style='text-align:left'>{h}</th>"
                       for h in ("input", "status", "max error", "checked", "how"))
        rows = "".join(f"<tr><td><code>{esc(r.input)}</code></td><td>{esc(r.status)}</td>"
                       f"<td>{r.max_error:.2e}</td><td>{r.checked}/{r.elements}</td>"
                       f"<td>{esc(r.method)}</td></tr>" for r in self.rows)
        derivs = "".join(f"<p><code>d{esc(self.function)}/d{esc(r.input)} = "
                         f"{esc(str(r.derivative))}</code></p>"
                         for r in self.rows if r.derivative is not None)
        notes = [f"note ({r.input}): {r.note}" for r in self.rows if r.note] + \
            [f"note: {n}" for n in self.notes]
        return (f"<p><b>graphc.check({esc(self.function)})</b>: "
                f"<b style='color:{colour}'>{self._verdict()}</b></p>"
                f"<table class='graphc-check'><tr>{head}</tr>{rows}</table>{derivs}"
                + "".join(f"<p><i>{esc(n)}</i></p>" for n in notes))

    def _repr_markdown_(self):
        rows = "\n".join(f"| `{r.input}` | {r.status} | {r.max_error:.2e} | {r.checked}/{r.elements} "
                         f"| {r.method} |" for r in self.rows)
        derivs = "\n".join(f"\n$$\\frac{{\\partial {self.function}}}{{\\partial {r.input}}} = {r.latex()}$$"
                           for r in self.rows if r.derivative is not None)
        notes = "\n".join(f"\n*{html.escape(n)}*" for n in self.notes)
        return (f"**graphc.check({self.function})**: {self._verdict()}\n\n"
                "| input | status | max error | checked | how |\n|---|---|---|---|---|\n"
                f"{rows}\n{derivs}{notes}")
