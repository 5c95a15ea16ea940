"""Write docs/ops.md, the op reference, from graphc's primitive registry.

    python tools/make_op_reference.py            # rewrites docs/ops.md
    python tools/make_op_reference.py --check    # exit 1 if docs/ops.md is stale

Everything on the page comes from the records in ``graphc.primitive.REGISTRY``
(name, family, drawing label, NumPy emission, whether VJP/JVP rules and SymPy
semantics exist, the FLOP rule, the record's doc) and from the tables in
``graphc/numpy_api.py`` that route NumPy calls to primitives, so the page
cannot drift from the code: ``tests/test_docs.py`` fails when it is stale.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import pkgutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import graphc  # noqa: E402,F401  (registers every primitive)
import graphc.ops  # noqa: E402
from graphc import numpy_api  # noqa: E402
from graphc.primitive import REGISTRY, Primitive  # noqa: E402

OUT = ROOT / "docs" / "ops.md"

# The order families appear in, then any family a new primitive brings.
FAMILY_ORDER = ["elementwise", "reduce", "shape", "index", "linalg", "nn", "conv", "random"]
FAMILY_TITLES = {"elementwise": "Elementwise", "reduce": "Reductions", "shape": "Shape",
                 "index": "Indexing", "linalg": "Linear algebra", "nn": "Neural-network",
                 "conv": "Convolution", "random": "Random"}

# FLOP rules shared by many records (graphc/ops/_rules.py), in words.
FLOP_RULES = {"size_flops": "1 per output element", "zero_flops": "0",
              "input_flops": "1 per input element", "_matmul_flops": "2·m·k·n"}

OPERATORS = {"__add__": "+", "__sub__": "-", "__mul__": "*", "__truediv__": "/",
             "__pow__": "**", "__matmul__": "@", "__neg__": "unary -", "__abs__": "abs()",
             "__gt__": ">", "__ge__": ">=", "__lt__": "<", "__le__": "<=", "__eq__": "==",
             "__ne__": "!=", "__and__": "&", "__or__": "|", "__invert__": "~"}


def defining_modules() -> dict:
    """``{primitive name: "graphc/ops/<file>.py"}``: the module whose source builds the record
    (``name="exp"``; other modules may import the record under the same name)."""
    where = {}
    for info in pkgutil.iter_modules(graphc.ops.__path__, "graphc.ops."):
        source = inspect.getsource(importlib.import_module(info.name))
        for name in REGISTRY:
            if f'name="{name}"' in source:
                where.setdefault(name, info.name.replace(".", "/") + ".py")
    return where


def numpy_entry_points() -> dict:
    """``{primitive name: ["np.exp", "+", ...]}``: the NumPy calls that bind it directly."""
    entry = {}
    for ufunc, fn in numpy_api.UFUNCS.items():
        if isinstance(fn, Primitive):
            entry.setdefault(fn.name, []).append(f"`np.{ufunc.__name__}`")
    for method, fn in numpy_api.TRACER_METHODS.items():
        if isinstance(fn, Primitive) and method in OPERATORS:
            entry.setdefault(fn.name, []).append(f"`{OPERATORS[method]}`".replace("|", "\\|"))
    return entry


def flop_rule(prim: Primitive, module: str) -> str:
    if prim.flops is None:
        return "not counted"
    name = getattr(prim.flops, "__name__", "")
    if name in FLOP_RULES:
        return FLOP_RULES[name]
    doc = inspect.getdoc(prim.flops)
    if doc:
        return doc.splitlines()[0]
    source = _lambda_source(prim.flops)
    return f"`{source}`" if source else f"own rule (in `{module}`)"


def _lambda_source(fn) -> str | None:
    """The text of a one-line ``lambda ...: ...`` (None for anything else)."""
    if getattr(fn, "__name__", "") != "<lambda>":
        return None
    try:
        text = " ".join(inspect.getsource(fn).split())
    except (OSError, TypeError):
        return None
    # the record's flops=lambda, not another lambda that starts on the same line
    anchor = text.find("flops=lambda")
    start = anchor + len("flops=") if anchor >= 0 else text.find("lambda")
    if start < 0:
        return None
    body = text.find(":", start)          # the lambda's parameters hold no ':' here
    depth = 0
    for i in range(body, len(text)):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return text[start:i].strip()
            depth -= 1
        elif ch == "," and depth == 0:
            return text[start:i].strip()
    return text[start:].strip()


def emission(prim: Primitive) -> str:
    if isinstance(prim.numpy, str):
        return "`" + prim.numpy.replace("|", "\\|") + "`"
    kind = "statements" if prim.never_inline_args else "expression"
    name = getattr(prim.numpy, "__name__", "<lambda>")
    return f"custom {kind}" if name == "<lambda>" else f"{kind} from `{name}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _numpy_name(f) -> str:
    mod = getattr(f, "__module__", "") or ""
    return ("np.linalg." if "linalg" in mod else "np.") + f.__name__


def _first_sentence(fn) -> str:
    doc = inspect.getdoc(fn) or ""
    para = doc.split("\n\n")[0].replace("\n", " ").strip()
    return _cell(para)


def _impl_module(fn) -> str:
    mod = getattr(fn, "__module__", "") or ""
    return f"`{mod.replace('.', '/')}.py`" if mod.startswith("graphc") else ""


def numpy_function_section() -> list:
    """The NumPy functions traced into primitives: where each is built, and its conventions."""
    rows = []
    for f, fn in numpy_api.UFUNCS.items():
        if not isinstance(fn, Primitive):
            rows.append((_numpy_name(f), fn))
    for f, fn in numpy_api.FUNCTIONS.items():
        rows.append((_numpy_name(f), fn))
    lines = ["## NumPy functions built from primitives", "",
             "These NumPy functions work on traced values and are traced into the primitives "
             "above; their gradients follow from the primitives' rules. **built in** names the "
             "module; **notes** is the implementation's own summary (conventions at "
             "non-differentiable points included).", "",
             "| NumPy | built in | notes |", "| --- | --- | --- |"]
    for name, fn in sorted(rows, key=lambda r: r[0]):
        lines.append(f"| `{name}` | {_impl_module(fn)} | {_first_sentence(fn)} |")
    methods = sorted(m for m in numpy_api.TRACER_METHODS if not m.startswith("__"))
    lines += ["", "Array methods: " + ", ".join(f"`.{m}()`" for m in methods)
              + "; indexing `x[...]` records `getitem`.", ""]
    return lines


def render() -> str:
    where = defining_modules()
    entry = numpy_entry_points()
    families = {}
    for prim in REGISTRY.values():
        families.setdefault(prim.family, []).append(prim)
    order = [f for f in FAMILY_ORDER if f in families] + sorted(set(families) - set(FAMILY_ORDER))

    lines = [
        "# Op reference",
        "",
        "<!-- Generated by tools/make_op_reference.py from graphc.primitive.REGISTRY; do not "
        "edit. Regenerate with: python tools/make_op_reference.py -->",
        "",
        f"graphc has {len(REGISTRY)} primitives. Each is one `Primitive` record in `graphc/ops/` "
        "(see [architecture](architecture.md#adding-a-primitive)) holding its shape rule, "
        "its NumPy emission, its gradient (VJP) and forward-mode (JVP) rules, its SymPy semantics, its drawing label and its FLOP "
        "count. Everything else (`np.mean`, `np.clip`, `np.stack`, `graphc.nn.softmax`, "
        "`cross_entropy`, `conv2d` ...) is a composite: built from these primitives while tracing, "
        "so it needs no gradient rule of its own.",
        "",
        "Columns: **op** is the IR node's `op` attribute; **NumPy** the calls on traced values "
        "that record it directly; **emits** the generated code (`{0}`, `{1}` are the arguments, "
        "`{axis}` etc. static parameters); **grad** whether it has a VJP rule (comparisons and "
        "integer ops have none: no gradient flows through them); **jvp** whether it has a "
        "forward-mode rule (`graphc.jvp`); **FLOPs** the lecture's cost "
        "model used by `graph.cost()`.",
        "",
    ]
    for family in order:
        prims = sorted(families[family], key=lambda p: p.name)
        lines += [f"## {FAMILY_TITLES.get(family, family.capitalize())}", ""]
        modules = sorted({where.get(p.name, "?") for p in prims})
        lines += [f"Defined in {', '.join(f'`{m}`' for m in modules)}.", ""]
        lines += ["| op | label | NumPy | emits | grad | jvp | SymPy | FLOPs |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for p in prims:
            numpy_calls = ", ".join(entry.get(p.name, []))
            lines.append(
                f"| `{p.name}` | {_cell(p.label or p.name)} | {numpy_calls} "
                f"| {emission(p)} | {'yes' if p.differentiable else 'no'} "
                f"| {'yes' if callable(p.jvp) else 'no'} | {'yes' if p.sympy else 'no'} "
                f"| {_cell(flop_rule(p, where.get(p.name, '?')))} |")
        notes = [p for p in prims if p.doc]
        if notes:
            lines += [""] + [f"- `{p.name}`: {_cell(p.doc)}" for p in notes]
        lines.append("")
    lines += numpy_function_section()
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if docs/ops.md differs from the registry")
    parser.add_argument("--out", default=str(OUT), metavar="PATH")
    ns = parser.parse_args(argv)
    text = render()
    path = pathlib.Path(ns.out)
    if ns.check:
        if not path.is_file() or path.read_text() != text:
            print(f"{path} is stale: run `python tools/make_op_reference.py`", file=sys.stderr)
            return 1
        print(f"{path} is up to date ({len(REGISTRY)} primitives)")
        return 0
    path.write_text(text)
    print(f"wrote {path} ({len(REGISTRY)} primitives)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
