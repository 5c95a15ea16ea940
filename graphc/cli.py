"""The ``graphc`` command line.

::

    graphc demo [--out DIR]                       # the tour: the lecture's examples end to end
    graphc trace  FILE.py[:FUNC] [--arg ...] [--grad [--argnums 0,1]] [--values] [--cost]
                                                  # print the evaluation trace (values, FLOPs)
    graphc source FILE.py:FUNC [--arg ...] [--grad [--argnums 0,1]] [-o OUT.py]
    graphc render FILE.py:FUNC [--arg ...] [--grad [--argnums 0,1]] [--collapse] [--flops]
                  -o OUT.svg|png|pdf|dot          # draw the graph (format from the suffix)
    graphc check  FILE.py:FUNC [--arg ...] [--argnums 0,1]   # SymPy verification report
    graphc report FILE.py:FUNC [--arg ...] [--argnums 0,1] [--no-proof] -o OUT.html
                                                  # one HTML page of linked views

``FILE.py:FUNC`` names a function in a Python file; the file is imported as a
module by path (``FILE.py`` alone: its one ``@graphc.example`` function).  Example inputs come from ``@graphc.example(*args, **kwargs)``
on the function, and ``--arg NAME=VALUE`` adds or replaces them by parameter
name:

* ``--arg x=f32[64,1,28,28]``: a random array (normal values, fixed seed; for
  integer dtypes small non-negative integers 0..9).  Dtype codes: ``f16 f32
  f64 i32 i64 bool``.
* ``--arg lr=0.1`` or ``--arg eps=1e-3``: a Python float (traced).
* ``--arg n=3``: a Python int (static: baked into the graph).
* ``--arg training=False``: a Python bool (static).

``trace --grad``, ``source --grad``, ``render --grad``, ``check`` and ``report``
differentiate argument 0, as ``graphc.grad``, ``graphc.render`` and
``graphc.check`` do (the parameters of ``loss(params, x, y)``, not the data);
``--argnums`` chooses instead (``--argnums 0,1``).

Exit status: 0 on success, 1 when graphc reports an error in the traced code
or FILE.py fails to import (printed without a Python traceback, naming the
file:line) or ``graphc check`` finds a mismatch, 2 for a usage error (bad
flags, a missing input, an unknown function, an --argnums out of range).
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import pathlib
import re
import sys


import graphc
from graphc import errors

from .cost import cost_text
from .demo import run_demo
from .target import (ImportFailed, UsageError, example_inputs, load_function,
                     parse_args_option)
from .argnums import normalize_argnums

__all__ = ["main"]

_PROG = "graphc"


def _parse_argnums(text, n_args):
    """``--argnums`` as graphc's ``argnums``, checked against ``n_args`` positional arguments."""
    if text is None:
        return 0
    try:
        nums = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--argnums expects integers like 0 or 0,1, got {text!r}") from None
    if not nums:
        raise UsageError("--argnums expects at least one integer")
    try:
        normalize_argnums(nums, n_args, option=f"--argnums {text}")
    except errors.GradError as e:
        raise UsageError(f"{e.message} ({e.hint})") from None
    return nums[0] if len(nums) == 1 and "," not in text else nums


# --- commands ------------------------------------------------------------------------
def _target(ns):
    fn = load_function(ns.target)
    args, kwargs = example_inputs(fn, parse_args_option(ns.arg))
    return fn, args, kwargs


def cmd_trace(ns) -> int:
    fn, args, kwargs = _target(ns)
    if ns.grad:
        fn = graphc.grad(fn, argnums=_parse_argnums(ns.argnums, len(args)))
        # the lecture's layout: one adjoint line per named value (graphc/trace_display.py)
        print(fn.trace(*args, values=ns.values, **kwargs))
    elif ns.argnums is not None:
        raise UsageError("--argnums only makes sense with --grad")
    else:
        print(graphc.trace(fn, *args, values=ns.values, **kwargs))
    if ns.cost:       # the FLOPs of the graph the generated code computes
        print(cost_text(graphc.trace(fn, *args, **kwargs)))
    return 0


def cmd_source(ns) -> int:
    fn, args, kwargs = _target(ns)
    if ns.grad:
        compiled = graphc.grad(fn, argnums=_parse_argnums(ns.argnums, len(args)))
    elif ns.argnums is not None:
        raise UsageError("--argnums only makes sense with --grad")
    else:
        compiled = fn if isinstance(fn, graphc.Compiled) else graphc.compile(fn)
    if ns.output:
        path = graphc.export(compiled, *args, path=ns.output, overwrite=ns.overwrite, **kwargs)
        print(f"wrote {path} (function {compiled.export_name()})")
    else:
        sys.stdout.write(compiled.source(*args, **kwargs))
    return 0


_RENDER_FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv")


def cmd_render(ns) -> int:
    suffix = pathlib.Path(ns.output).suffix.lower()
    if suffix not in _RENDER_FORMATS:
        raise UsageError(f"cannot tell the format of {ns.output!r} from its suffix: "
                         "use .svg, .png, .pdf or .dot (.dot needs no Graphviz program)")
    if ns.argnums is not None and not ns.grad:
        raise UsageError("--argnums only makes sense with --grad")
    fn, args, kwargs = _target(ns)
    if ns.grad:
        # A @graphc.compile'd function: differentiate the function it wraps.
        base = inspect.unwrap(fn) if isinstance(fn, graphc.Compiled) else fn
        argnums = _parse_argnums(ns.argnums, len(args))     # default 0, as graphc.grad
        graph = graphc.value_and_grad(base, argnums=argnums).graph(*args, **kwargs)
    else:
        graph = graphc.trace(fn, *args, **kwargs)
    if ns.collapse and not any(graph[n].scope for n in graph):
        print(f"{_PROG} render: note: {graph.fn_name} uses no graphc.scope(...) blocks, so "
              "--collapse has nothing to collapse", file=sys.stderr)
    path = graphc.render(graph, path=ns.output, backward=ns.grad, collapse=ns.collapse,
                         flops=ns.flops, overwrite=ns.overwrite)
    print(f"wrote {path}")
    return 0


def cmd_check(ns) -> int:
    fn, args, kwargs = _target(ns)
    # As graphc.check(fn, ...) and graphc.grad: argument 0 (the parameters, by JAX's
    # convention loss(params, x, y)) unless --argnums says otherwise; checking the
    # gradient of the data as well was slow and rarely what was meant.
    argnums = _parse_argnums(ns.argnums, len(args)) if ns.argnums is not None else 0
    report = graphc.check(fn, *args, argnums=argnums, **kwargs)
    print(report)
    return 0 if report.ok else 1


def cmd_report(ns) -> int:
    fn, args, kwargs = _target(ns)
    argnums = _parse_argnums(ns.argnums, len(args)) if ns.argnums is not None else 0
    path = graphc.report(fn, *args, path=ns.output, argnums=argnums, proof=not ns.no_proof,
                         overwrite=ns.overwrite, **kwargs)
    print(f"wrote {path}")
    return 0


def _add_report(sub) -> None:
    p = _target_parser(sub, "report", "write an HTML page of linked views of the graph",
                       "Write one self-contained HTML page (no network) with linked views of "
                       "graphc.value_and_grad(FUNC)'s graph: the drawing, the forward and "
                       "backward evaluation traces with values, the generated code, the SymPy "
                       "proof and the cost. Click a node, a trace row or a code line to see "
                       "the same value in every view.")
    p.add_argument("-o", "--output", required=True, metavar="OUT.html", help="the page to write")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="which positional arguments to differentiate (default 0, as graphc.grad)")
    p.add_argument("--no-proof", action="store_true", help="skip the SymPy proof (graphc.check)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT.html even if graphc did not write it (a page graphc wrote "
                        "is replaced without it)")
    p.set_defaults(run=cmd_report)


def cmd_demo(ns) -> int:
    return run_demo(pathlib.Path(ns.out), overwrite=bool(getattr(ns, "overwrite", False)))


# --- argument parsing ----------------------------------------------------------------
_ARG_HELP = ("an example input, bound by parameter name: NAME=DTYPE[SHAPE] for a random array "
             "(e.g. x=f32[64,1,28,28]; dtypes f16 f32 f64 i32 i64 bool; fixed seed), "
             "NAME=NUMBER (0.1 is a traced float, 3 a static int) or NAME=True/False; "
             "repeatable; overrides @graphc.example")


def build_parser() -> argparse.ArgumentParser:
    """The ``graphc`` parser: one subcommand per ``cmd_*``, run by ``main``."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Trace NumPy functions into a graph, differentiate them, generate "
                    "readable NumPy source, draw the graph and verify gradients with SymPy.",
        epilog="FILE.py:FUNC names a function in a Python file; its inputs come from "
               "@graphc.example(...) on the function, or from --arg.")
    parser.add_argument("--version", action="version", version=f"graphc {graphc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_trace, _add_source, _add_render, _add_check, _add_report):
        add(sub)
    for q in sub.choices.values():          # a usage error prints its command's usage line
        q.set_defaults(subparser=q)
    return parser


def _add_demo(sub) -> None:
    from .demo import DEMO_STEPS
    steps = "\n".join(f"  {i}. {(s.__doc__ or s.__name__).strip().splitlines()[0]}"
                      for i, s in enumerate(DEMO_STEPS, 1))
    p = sub.add_parser("demo", help="the tour: the lecture's examples end to end",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="A tour of about twenty seconds, in "
                                   f"{len(DEMO_STEPS)} steps:\n{steps}\n\n"
                                   "It writes its files (the lecture's example, the exported "
                                   "gradient module, the drawings) into DIR and ends with the "
                                   "list of them; running it again replaces the files it wrote "
                                   "itself and refuses to touch any others.")
    p.add_argument("--out", default="graphc-demo", metavar="DIR",
                   help="folder for the files the demo writes (default: ./graphc-demo/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace regular files in DIR that the demo did not write itself")
    p.set_defaults(run=cmd_demo)


def _target_parser(sub, name, help_, description):
    """A subcommand on ``FILE.py:FUNC``, with its ``--arg`` inputs."""
    q = sub.add_parser(name, help=help_, description=description)
    q.add_argument("target", metavar="FILE.py:FUNC",
                   help="the function to trace (FILE.py alone: its one @graphc.example function)")
    q.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help=_ARG_HELP)
    return q


def _add_trace(sub) -> None:
    p = _target_parser(sub, "trace", "print the evaluation trace",
                       "Print the evaluation trace of FUNC: one line per operation.")
    p.add_argument("--grad", action="store_true",
                   help="the trace of graphc.grad(FUNC): forward and backward pass")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="with --grad: which positional arguments to differentiate (default 0)")
    p.add_argument("--values", action="store_true",
                   help="show each value for the example inputs (scalars in full, arrays "
                        "summarized); with --grad the backward pass shows each adjoint")
    p.add_argument("--cost", action="store_true",
                   help="add graph.cost(): FLOPs forward/backward, bytes, FLOPs by op")
    p.set_defaults(run=cmd_trace)


def _add_source(sub) -> None:
    p = _target_parser(sub, "source", "print the generated NumPy source",
                       "Print the generated NumPy module for FUNC (stdout: the module alone), "
                       "or write it with -o.")
    p.add_argument("--grad", action="store_true",
                   help="the source of graphc.grad(FUNC) instead of graphc.compile(FUNC)")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="with --grad: which positional arguments to differentiate "
                        "(default 0, as graphc.grad; e.g. 0,1)")
    p.add_argument("-o", "--output", metavar="OUT.py",
                   help="write the module to OUT.py with graphc.export instead of printing it")
    p.add_argument("--overwrite", action="store_true",
                   help="with -o: replace OUT.py if it exists (graphc.export(..., overwrite=True))")
    p.set_defaults(run=cmd_source)


def _add_render(sub) -> None:
    p = _target_parser(sub, "render", "draw the graph with Graphviz",
                       "Draw FUNC's graph (with --grad: the forward graph and the backward graph "
                       "beside it, differentiating argument 0 as graphc.grad does unless "
                       "--argnums says otherwise) to OUT; the format comes from its suffix. .svg, .png and .pdf "
                       "need Graphviz's `dot` program; .dot writes the DOT text and needs "
                       "nothing.")
    p.add_argument("-o", "--output", required=True, metavar="OUT.svg|png|pdf|dot",
                   help="the file to write")
    p.add_argument("--grad", action="store_true",
                   help="draw the graph of graphc.value_and_grad(FUNC): forward and backward")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="with --grad: which positional arguments to differentiate (default 0, "
                        "as graphc.grad and graphc.render; e.g. 0,1)")
    p.add_argument("--collapse", action="store_true",
                   help="draw each graphc.scope(...) block as one box with its input and "
                        "output shapes")
    p.add_argument("--flops", action="store_true",
                   help="add each operation's FLOP count to its label")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT even if graphc did not write it (a drawing graphc wrote "
                        "is replaced without it)")
    p.set_defaults(run=cmd_render)


def _add_check(sub) -> None:
    p = _target_parser(sub, "check", "verify the gradient with SymPy",
                       "Verify FUNC's gradient three ways: SymPy's derivative of the traced "
                       "expression, graphc's backward graph evaluated on SymPy symbols, and the "
                       "numbers of the generated NumPy code (graphs too large for SymPy are "
                       "checked by finite differences; the report says so). Exit status 1 on a "
                       "mismatch.")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="which positional arguments to differentiate (default 0, as "
                        "graphc.check and graphc.grad; e.g. 0,1)")
    p.set_defaults(run=cmd_check)


def _depth(text: str, pos: int) -> int:
    return text.count("(", 0, pos) - text.count(")", 0, pos)


def _argnums_flag(m: re.Match) -> str:
    return "--argnums " + ",".join(re.findall(r"-?\d+", m.group(1)))


# graphc's hints speak Python (graphc.export(..., overwrite=True)); the command line's
# speak flags.  argnums inside a call written in the hint (grad(inner, argnums=0)) is
# advice about the user's code and stays.
_CLI_SPELLINGS = [
    (re.compile(r"\boverwrite=True\b"), lambda m: "--overwrite", False),
    (re.compile(r"(?<!-)\bargnums=(\(\s*-?\d+(?:\s*,\s*-?\d+)*\s*,?\s*\)|-?\d+)"),
     _argnums_flag, True),
    (re.compile(r"(?<!-)\bargnums\b(?!=)"), lambda m: "--argnums", True),
]


def cli_hint(hint: str) -> str:
    """An API hint in command-line terms: ``overwrite=True`` -> ``--overwrite``."""
    for pattern, spell, top_level_only in _CLI_SPELLINGS:
        hint = pattern.sub(lambda m: m.group(0) if top_level_only and _depth(m.string, m.start())
                           else spell(m), hint)
    return hint


def _error_text(e: graphc.GraphcError) -> str:
    text = str(e)
    if e.hint:
        text = text.replace(f"Hint: {e.hint}", f"Hint: {cli_hint(e.hint)}")
    return text


def main(argv=None) -> int:
    """Run the ``graphc`` command line; return the exit status."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
    if not getattr(ns, "run", None):
        parser.print_help()
        return 2
    try:
        return ns.run(ns)
    except UsageError as e:
        ns.subparser.print_usage(sys.stderr)
        print(f"{_PROG} {ns.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportFailed as e:
        print(f"{_PROG} {ns.command}: error: {e}", file=sys.stderr)
        return 1
    except graphc.GraphcError as e:
        print(f"{_PROG} {ns.command}: error: {_error_text(e)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `graphc source ... | head`: stop quietly, and keep Python's exit-time flush quiet too.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


# Frames below main (bin/graphc, runpy, a test runner) are never "the user's line".
errors.ENTRY_POINTS.add(main.__code__)

if __name__ == "__main__":
    raise SystemExit(main())
