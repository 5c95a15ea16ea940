"""``graphc demo``: the tour, a list of small steps.

The lecture's autodiff example traced, differentiated, compiled, proved with
SymPy and drawn; then XOR and a small CNN trained by compiled train steps.
Each step is a function of a :class:`DemoContext` whose docstring's first line
is its title.  The demo writes only into its ``--out`` folder, and replaces
only files it wrote itself (listed in the folder's manifest).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import stat
import sys
import textwrap
from dataclasses import dataclass, field

import numpy as np

import graphc

from ._files import write_atomic
from .target import UsageError, load_function, load_module

__all__ = ["run_demo"]


@dataclass
class DemoContext:
    """What the demo steps share: where to write, and what they wrote."""

    out: pathlib.Path
    written: list = field(default_factory=list)
    values: dict = field(default_factory=dict)
    overwrite: bool = False          # --overwrite: may replace regular files it did not write
    owned: set = field(default_factory=set)   # names listed in the folder's manifest


# The demo lists the files it wrote in this manifest, and replaces only those (or,
# with --overwrite, other regular files): it never clobbers a file it did not write.
_DEMO_MANIFEST = ".graphc-demo-files"


def _read_demo_manifest(out: pathlib.Path) -> set:
    path = out / _DEMO_MANIFEST
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):   # never read a FIFO or follow a link
            return set()
        return set(path.read_text(errors="replace").split("\n")) - {""}
    except OSError:
        return set()


def _demo_claim(ctx: "DemoContext", name: str, header: str | None = None) -> pathlib.Path:
    """``ctx.out / name`` if the demo may write it, else a UsageError that says how."""
    path = ctx.out / name
    if not os.path.lexists(path) or name in ctx.owned:
        return path
    if header is not None and path.is_file() and not path.is_symlink():
        with open(path, errors="replace") as f:
            if f.read(len(header)) == header:   # written by an older demo, before the manifest
                return path
    if ctx.overwrite and path.is_file() and not path.is_symlink():
        return path
    raise UsageError(f"{path} exists and was not written by graphc demo; graphc demo only "
                     "replaces files it wrote itself (and never links, folders, FIFOs or devices)."
                     " Pass --overwrite to replace it, or --out NEW_DIR to write elsewhere")


def _demo_record(ctx: "DemoContext", path: pathlib.Path) -> None:
    """Note ``path`` as written by the demo, in ``ctx.written`` and the manifest."""
    ctx.written.append(path)
    if path.name not in ctx.owned:
        ctx.owned.add(path.name)
        write_atomic(ctx.out / _DEMO_MANIFEST, "".join(f"{n}\n" for n in sorted(ctx.owned)),
                     overwrite=True, what="graphc demo")


# Written into the demo folder and imported from there: graphc names values after the
# variables of code outside the graphc package, and points at its file:line.
_LECTURE_FILE = "autodiff_trace.py"
_LECTURE_HEADER = "# Written by `graphc demo`: the lecture's evaluation-trace example."
_LECTURE_SOURCE = _LECTURE_HEADER + """
import numpy as np

import graphc


@graphc.example(1.5, 0.5)
def f(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    z6 = z4 * z5
    return z6
"""


def _write_demo_file(ctx: "DemoContext", name: str, text: str, header: str) -> pathlib.Path:
    """Write ``text`` to the demo folder; never replace a file the demo did not write."""
    path = _demo_claim(ctx, name, header)
    write_atomic(path, text, overwrite=True, what="graphc demo")
    _demo_record(ctx, path)
    return path


def _lecture_closed_form(w1, w2):
    """Hand-derived partial derivatives of the lecture's f = z4 * z5."""
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z4 = 3 * z1 - np.exp(2 * w2)
    z5 = z2 + z4
    dz1 = (1 / w2, -w1 / w2 ** 2)                      # dz1/dw1, dz1/dw2
    dz4 = (3 * dz1[0], 3 * dz1[1] - 2 * np.exp(2 * w2))
    dz2 = tuple(2 * np.pi * np.cos(2 * np.pi * z1) * d for d in dz1)
    return tuple(dz4[i] * z5 + z4 * (dz2[i] + dz4[i]) for i in range(2))


_W = (1.5, 0.5)


def _lecture(ctx: DemoContext):
    """``(f, df)``: the lecture's f, loaded from the demo folder, and its compiled gradient."""
    if "f" not in ctx.values:
        path = _write_demo_file(ctx, _LECTURE_FILE, _LECTURE_SOURCE, _LECTURE_HEADER)
        ctx.values["f"] = load_function(f"{path}:f")
        ctx.values["df"] = graphc.grad(ctx.values["f"], argnums=(0, 1))
    return ctx.values["f"], ctx.values["df"]


def step_example(ctx: DemoContext) -> None:
    """The lecture's example: f(w1, w2), every intermediate named"""
    _lecture(ctx)
    print(f"An ordinary NumPy function (written to {ctx.out / _LECTURE_FILE}):\n")
    print(_LECTURE_SOURCE.split("\n\n\n", 1)[1].rstrip())


def step_trace(ctx: DemoContext) -> None:
    """Its evaluation trace at (w1, w2) = (1.5, 0.5), with values and adjoints"""
    f, df = _lecture(ctx)
    print("graphc.trace(f, 1.5, 0.5, values=True): one line per operation, with your names\n"
          "and the value each computed:\n")
    print(graphc.trace(f, *_W, values=True))
    text = str(df.trace(*_W, values=True))
    print("\ndf.trace(1.5, 0.5, values=True) adds the backward pass, one adjoint d_<name> per\n"
          "value (the lecture's table):\n")
    print(text[text.index("    # seed"):])


def step_gradient(ctx: DemoContext) -> None:
    """Reverse-mode gradient vs. the closed form"""
    _, df = _lecture(ctx)
    got = df(*_W)
    want = _lecture_closed_form(*_W)
    print("graphc.grad(f, argnums=(0, 1))(1.5, 0.5), next to the hand-derived derivatives:\n")
    print(f"    {'':8}{'graphc':>22}{'closed form':>22}{'|difference|':>14}")
    for name, g, w in zip(("df/dw1", "df/dw2"), got, want):
        print(f"    {name:8}{float(g):22.12f}{float(w):22.12f}{abs(float(g) - float(w)):14.1e}")
    ok = all(np.isclose(g, w, rtol=1e-12, atol=0) for g, w in zip(got, want))
    print("\n    they agree to 12 significant digits" if ok else "\n    MISMATCH")
    print("\n    closed form, by the chain rule through z6 = z4 * z5:")
    print("      df/dw1 = 3/w2 * z5 + z4 * (2 pi cos(2 pi z1) / w2 + 3/w2)")
    print("      df/dw2 = dz4 * z5 + z4 * (2 pi cos(2 pi z1) * dz1 + dz4),")
    print("               with dz1 = -w1 / w2**2 and dz4 = 3 dz1 - 2 exp(2 w2)")


def step_source(ctx: DemoContext) -> None:
    """The generated NumPy source of the gradient"""
    _, df = _lecture(ctx)
    print("df.source(1.5, 0.5): forward lines keep your names, adjoints are d_<name>:\n")
    print(df.source(*_W).rstrip())


def step_export(ctx: DemoContext) -> None:
    """A standalone module that imports only NumPy"""
    _, df = _lecture(ctx)
    path = graphc.export(df, *_W, path=_demo_claim(ctx, "f_grad.py"), overwrite=True)
    _demo_record(ctx, path)
    spec = importlib.util.spec_from_file_location("_graphc_demo_f_grad", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    again = module.f_grad(*_W)
    same = all(float(a) == float(b) for a, b in zip(again, df(*_W)))
    print(f"graphc.export(df, 1.5, 0.5, path={str(path)!r})")
    print(f"    imported on its own: f_grad(1.5, 0.5) = "
          f"({float(again[0]):.6f}, {float(again[1]):.6f})"
          + ("  (identical to graphc's)" if same else "  (DIFFERS from graphc's)"))


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in str(text).splitlines())


def step_proof(ctx: DemoContext) -> None:
    """SymPy proves the gradient: graphc.check"""
    f, _ = _lecture(ctx)
    report = graphc.check(f, *_W, argnums=(0, 1))
    print("graphc.check(f, 1.5, 0.5, argnums=(0, 1)) checks three things against each other:\n"
          "SymPy's derivative of the traced expression, graphc's backward graph evaluated on\n"
          "SymPy symbols, and the numbers the generated NumPy code returns.\n")
    print(_indent(report))
    if report.ok and all(r.status == "proved" for r in report.rows):
        print("\n    proved: the backward graph equals SymPy's derivative for every (w1, w2),\n"
              "    not only at (1.5, 0.5); above, both partial derivatives in closed form.")
    elif not report.ok:
        print("\n    MISMATCH")


def _dot_available() -> bool:
    return shutil.which("dot") is not None


def _render_suffixes() -> tuple:
    return (".svg", ".png") if _dot_available() else (".dot",)


def _render_all(ctx: DemoContext, what, args, stem: str, **opts) -> list:
    """Render to ``stem``.svg and .png (or .dot without Graphviz); return the paths."""
    paths = []
    for suffix in _render_suffixes():
        path = graphc.render(what, *args, path=_demo_claim(ctx, stem + suffix), **opts)
        _demo_record(ctx, path)
        paths.append(path)
    return paths


def _dot_hint() -> None:
    if not _dot_available():
        from .draw import INSTALL_HINT
        print("    Graphviz's `dot` program is missing, so these are DOT text (.dot) files;\n"
              f"    for SVG and PNG, {INSTALL_HINT}")


def step_images(ctx: DemoContext) -> None:
    """The graph, drawn: forward, and forward + backward"""
    f, _ = _lecture(ctx)
    print("graphc.render(f, 1.5, 0.5, path=...) draws the traced graph with Graphviz; with\n"
          "backward=True, argnums=(0, 1) the backward graph of both gradients sits beside it\n"
          "(red edges from the seed d_z6 = 1; dashed grey edges are the forward values the\n"
          "backward pass reads):\n")
    for stem, backward in (("f_forward", False), ("f_backward", True)):
        opts = {"backward": True, "argnums": (0, 1)} if backward else {}
        for path in _render_all(ctx, f, _W, stem, **opts):
            print(f"    {path}")
    _dot_hint()


# The examples the demo runs.  graphc names values after the variables of code outside
# the graphc package, so the functions it traces live in files imported by path:
# examples/ beside the package in a checkout or editable install, or the copy that
# `pip install` puts in <prefix>/share/graphc/examples (pyproject's data-files).
DEMO_EXAMPLES = ("logic_gates.py", "lenet.py")


def _examples_dir():
    """The folder holding the demo's example files, if there is one."""
    for folder in (pathlib.Path(graphc.__file__).resolve().parent.parent / "examples",
                   pathlib.Path(sys.prefix) / "share" / "graphc" / "examples"):
        if all((folder / name).is_file() for name in DEMO_EXAMPLES):
            return folder
    return None


class _NoExamples(Exception):
    """The demo's example files are not installed."""


def _example_module(ctx: DemoContext, name: str):
    """Import examples/``name`` by path."""
    key = ("module", name)
    if key not in ctx.values:
        folder = _examples_dir()
        if folder is None:
            raise _NoExamples(f"examples/{name} was not found beside graphc nor in "
                              f"{pathlib.Path(sys.prefix) / 'share' / 'graphc' / 'examples'}; "
                              "run the demo from a source checkout (make demo)")
        ctx.values[key] = load_module(folder / name)
        ctx.values.setdefault("examples", {})[name] = folder / name
    return ctx.values[key]


DEMO_XOR_STEPS = 300       # full-batch Adam steps per logic-gate model
DEMO_DIGITS_STEPS = 300    # Adam steps of 64 digits for the CNN


def step_xor(ctx: DemoContext) -> None:
    """Logic gates: one linear unit learns OR and AND, XOR needs a hidden layer"""
    lg = _example_module(ctx, "logic_gates.py")
    path = ctx.values["examples"]["logic_gates.py"]
    print(f"{path}:\n"
          "labels +-1 on the four corners of the unit square, the logistic loss, and one\n"
          "compiled train step per model: graphc.compile of value_and_grad(loss) followed\n"
          "by graphc.optim.adam's update.\n")
    lg.run(steps=DEMO_XOR_STEPS, out=lambda line: print("    " + line))
    opt = graphc.optim.adam(0.1)
    params = lg.init_mlp(np.random.default_rng(0))
    step = lg.make_train_step(lg.mlp_loss, opt)
    src = step.source(params, opt.init(params), lg.X, lg.GATES["XOR"])
    print(f"\n    The XOR train step is one generated NumPy function of {len(src.splitlines())} "
          "lines:\n    forward, backward and Adam update, with no Python-level autodiff left.")
    print("    (Gradient descent leaves the linear XOR unit at w = 0, b = 0, every score 0;\n"
          "    the 75% is the best over all lines, found by search.)")


def _have_sklearn() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def step_digits(ctx: DemoContext) -> None:
    """A LeNet-style CNN on 8x8 digits"""
    if not _have_sklearn():
        print("This step needs scikit-learn for its bundled 8x8 digits, and it is not installed;\n"
              "skipping it. Install it with `pip install scikit-learn` (or `pip install -e "
              "'.[test]'`\nin a checkout) and run `graphc demo` again.")
        return
    lenet = _example_module(ctx, "lenet.py")
    path = ctx.values["examples"]["lenet.py"]
    print(f"{path}:\n"
          f"conv-relu-pool twice, two dense layers, cross-entropy; {DEMO_DIGITS_STEPS} Adam steps "
          "of 64\nimages, each one call of a compiled train step.\n")
    params, acc, seconds = lenet.train(steps=DEMO_DIGITS_STEPS, progress=lenet.progress_bar)
    print(f"\n    test accuracy: {acc:.1%} on {lenet.N_TEST} held-out digits "
          f"({seconds:.1f} s of training)")
    x_train, y_train, _, _ = lenet.load_digits()
    graph = graphc.value_and_grad(lenet.loss).graph(params, x_train[:64], y_train[:64])
    print("\n    The graph of its train step's value_and_grad(loss) for a batch of 64, forward +\n"
          "    backward, one box per graphc.scope layer (graphc.render(graph, path=...,\n"
          "    backward=True, collapse=True)):")
    for p in _render_all(ctx, graph, (), "lenet_backward", backward=True, collapse=True):
        print(f"    {p}")
    _dot_hint()


DEMO_STEPS = [step_example, step_trace, step_gradient, step_source, step_export, step_proof,
              step_images, step_xor, step_digits]


# Every file the demo may write, checked before it writes any (see _demo_claim).
_DEMO_STEMS = ("f_forward", "f_backward", "lenet_backward")


def run_demo(out, overwrite: bool = False) -> int:
    """Run the tour, writing into the folder ``out``; return the exit status (0).

    Every file the demo may write is checked first, so a refused one stops it
    before it writes anything (a :class:`~graphc.target.UsageError`).
    """
    ctx = DemoContext(out=pathlib.Path(out), overwrite=overwrite)
    ctx.owned = _read_demo_manifest(ctx.out)
    _claim_all(ctx)
    ctx.out.mkdir(parents=True, exist_ok=True)
    print("graphc demo: the lecture's autodiff example traced, differentiated, compiled, proved\n"
          "with SymPy and drawn; then XOR and a small CNN trained by compiled train steps.")
    _run_steps(ctx)
    _print_summary(ctx)
    return 0


def _claim_all(ctx: DemoContext) -> None:
    """Refuse now any file the demo would later be refused to write."""
    _demo_claim(ctx, _LECTURE_FILE, _LECTURE_HEADER)
    for name in ("f_grad.py", *(s + x for s in _DEMO_STEMS for x in _render_suffixes())):
        _demo_claim(ctx, name)


def _run_steps(ctx: DemoContext) -> None:
    """Each step under its numbered title; a step whose examples are missing is skipped."""
    n = len(DEMO_STEPS)
    for i, step in enumerate(DEMO_STEPS, 1):
        title = (step.__doc__ or step.__name__).strip().splitlines()[0]
        print(f"\n=== {i}/{n}  {title} " + "=" * max(3, 70 - len(title)))
        sys.stdout.flush()
        try:
            step(ctx)
        except _NoExamples as e:
            print(f"    skipped: {e}")


def _print_summary(ctx: DemoContext) -> None:
    """The files written, and commands to try next."""
    print("\n=== Summary " + "=" * 66)
    print(f"wrote {len(dict.fromkeys(ctx.written))} file"
          f"{'s' if len(dict.fromkeys(ctx.written)) != 1 else ''} "
          f"to {ctx.out.resolve()}{os.sep}:")
    for p in dict.fromkeys(ctx.written):
        print(f"    {p}")
    print("try:")
    print(f"    graphc trace  {ctx.out / _LECTURE_FILE}:f")
    print(f"    graphc check  {ctx.out / _LECTURE_FILE}:f --argnums 0,1")
    lenet = ctx.values.get("examples", {}).get("lenet.py")
    if lenet is not None:
        print(f"    graphc render {lenet}:loss --grad --collapse -o lenet.svg")
        others = sorted(p.name for p in lenet.parent.glob("*.py") if p.name not in DEMO_EXAMPLES)
        if others:
            print(f"and the lecture's other examples, in {lenet.parent}{os.sep}:")
            print(textwrap.fill(", ".join(others), width=90, initial_indent="    ",
                                subsequent_indent="    "))
            print(f"    (run one with: python {lenet.parent / others[0]})")
