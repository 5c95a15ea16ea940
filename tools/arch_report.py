"""Measure the package's architecture: import graph, cycles, module and function sizes.

Run ``python tools/arch_report.py`` for a text report, ``--dot FILE`` to also write
the module import graph (Graphviz source) and ``--json`` for machine-readable output.
Imports inside functions count: a deferred import is still a dependency.
"""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import re
import sys

import networkx as nx

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "graphc"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# Direct reads of networkx node attribute dicts (the IR's storage), allowed in ir.py only.
NODE_DICT = re.compile(r"\.nx\.nodes\b|nodes\(data=")


# docs/architecture.md, "Layers": a module imports only its own layer or lower ones.
LAYERS = {
    "1 ground floor": "gc_pause cells tracebacks pickling errors naming precedence primitive avals pytree signature ir _files "
                      "xp_emit",
    "2 ops": "ops ops._rules ops._samples ops._numpy_table ops.flips ops.assemble ops.splitting ops.einsum ops.products ops.elementwise ops.activation ops.reduce ops.shape "
             "ops.index ops.linalg ops.conv ops.pool ops.random ops.composite "
             "ops.statistics ops.stat_samples ops.scans ops.norms "
             "ops.padding ops.reorder "
             "ops.transcendental ops.hyperbolic ops.logaddexp "
             "ops.decompositions ops.np_linalg "
             "ops.predicates ops.rounding ops.basics ops.guard "
             "ops.array_api ops.xp_einsum ops.xp_index "
             "ops.max_share",
    "3 tracing": "tracing name_pause symdims folding eager rewrites numpy_api ndarray_methods array_coercion autodiff forward user_code random_watch updates numpy_misuse "
                 "shift_invariance trace_stamp const_share tracer_escape "
                 "custom control control.body control.scan control.while_ control.branches control.tangents "
                 "custom_batch batch_rules batch_index batching batch_loops",
    "4 products": "file_marks check_report export_constants passes passes.alias passes.cse passes.dce passes.simplify passes.pool_mask passes.onehot_sum passes.neg_cancel literals codegen codegen_scalar scalar_agreement "
                  "entry_checks loader source_comments interpret symbolic cost draw draw_options "
                  "check_work codegen_writes codegen_workspace codegen_share_check codegen_pool_check codegen_pool_relu codegen_layout codegen_col2im codegen_forms control.emit control.prune guards "
                  "codegen_guards draw_boxes draw_layout draw_edges drawing code_lines report_page "
                  "trace_table trace_loops "
                  "batch_axis batch_axis_index "
                  "codegen_xp xp_helpers xp_workspace "
                  "numba_fuse codegen_numba "
                  "control.emit_xp xp_closure xp_partition "
                  "codegen_numba_kernel numba_member",
    "5 entry points": "capture transforms jvp_vjp jvp_checks second_order compiled argnums api check nn nn._util nn.activations "
                      "nn.conv nn.dropout nn.init nn.losses optim cli demo target datasets guard_paths "
                      "vmap jacobians report trace_display display "
                      "batch_chunks dask_aux dask "
                      "symbolic_dims symbolic_module "
                      "compiled_xp compiled_numba "
                      "check_leaves floats_call "
                      "symbolic_xp",
    "6 package": "",
}


def layer_of() -> dict:
    """``{module: layer number}``; ``graphc`` itself is the top."""
    out = {"graphc": len(LAYERS)}
    for i, mods in enumerate(LAYERS.values(), 1):
        out.update({f"graphc.{m}": i for m in mods.split()})
    return out


def upward_imports(g) -> list:
    """Imports from a module to a module of a higher layer (unlayered modules count as 0)."""
    layer = layer_of()
    return sorted((a, b) for a, b in g.edges if layer.get(b, 0) > layer.get(a, 0))


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom | ast.Import, known) -> set[str]:
    out = set()
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.split(".")[0] == "graphc":
                out.add(a.name)
        return {m for m in out if m in known} | {m.rsplit(".", 1)[0] for m in out
                                                  if m not in known and "." in m}
    base_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level:
        base_parts = base_parts[:len(base_parts) - node.level + 1]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != "graphc":
        return out
    for a in node.names:
        cand = f"{base}.{a.name}"
        out.add(cand if cand in known else base)
    return {m for m in out if m in known}


def import_graph() -> nx.DiGraph:
    known = modules()
    g = nx.DiGraph()
    for mod, path in known.items():
        g.add_node(mod)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for dep in _resolve(mod, path.name == "__init__.py", node, known):
                    if dep != mod and not mod.startswith(dep + "."):
                        g.add_edge(mod, dep)
    return g


def cycles(g: nx.DiGraph) -> list[list[str]]:
    """Strongly connected components with more than one module, largest first."""
    return sorted((sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1),
                  key=len, reverse=True)


def long_functions(limit=MAX_FUNCTION_LINES):
    out = []
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append((n, f"{mod}.{node.name}", node.lineno))
    return sorted(out, reverse=True)


def long_modules(limit=MAX_MODULE_LINES):
    out = []
    for mod, path in modules().items():
        n = len(path.read_text().splitlines())
        if n > limit:
            out.append((n, mod))
    return sorted(out, reverse=True)


def node_dict_reads():
    out = []
    for mod, path in modules().items():
        if mod == "graphc.ir":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if NODE_DICT.search(line):
                out.append(f"{path.relative_to(ROOT)}:{i}")
    return out


def report() -> dict:
    g = import_graph()
    return {"modules": len(g), "imports": g.number_of_edges(),
            "cycles": cycles(g), "unlayered": sorted(set(g) - set(layer_of())),
            "upward_imports": upward_imports(g), "long_modules": long_modules(),
            "long_functions": long_functions(), "node_dict_reads": node_dict_reads()}


def to_dot(g: nx.DiGraph, omit=("graphc.errors",)) -> str:
    """Graphviz source of the import graph, one box per layer; modules in a cycle are red.

    ``omit`` leaves out modules nearly everything imports (the error classes), whose
    edges would hide the structure; a note in the drawing says so.
    """
    cyc = {m for c in cycles(g) for m in c}
    layer = layer_of()
    g = g.subgraph([m for m in g if m not in omit])

    def short(m):
        return m.removeprefix("graphc.") if m != "graphc" else "graphc"

    lines = ["digraph imports {", "  rankdir=BT; nodesep=0.12; ranksep=0.9;",
             "  node [shape=box, fontname=Helvetica, fontsize=10, height=0.25];",
             "  edge [color=\"#00000030\", arrowsize=0.4];"]
    # One band per layer, ground floor at the bottom; the band's title leads it.
    for i, title in enumerate(LAYERS, 1):
        mods = sorted(m for m in g if layer.get(m) == i)
        lines.append(f'  "layer {i}" [label="{title}", shape=plaintext, fontsize=12];')
        if i > 1:
            lines.append(f'  "layer {i - 1}" -> "layer {i}" [style=invis];')
        lines.append("  { rank=same; " + f'"layer {i}"; ' + " ".join(
            f'"{short(m)}"' + (' [style=filled, fillcolor="#f4cccc"]' if m in cyc else "") + ";"
            for m in mods) + " }")
    for m in sorted(m for m in g if m not in layer):
        lines.append(f'  "{short(m)}" [color=red];')
    for a, b in sorted(g.edges):
        lines.append(f'  "{short(a)}" -> "{short(b)}";')
    if omit:
        lines.append(f'  note [shape=plaintext, label="not drawn: {", ".join(omit)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--dot", metavar="FILE")
    a = p.parse_args(argv)
    r = report()
    if a.dot:
        pathlib.Path(a.dot).write_text(to_dot(import_graph()))
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['modules']} modules, {r['imports']} import edges")
    print(f"import cycles (SCCs > 1 module): {[len(c) for c in r['cycles']]}")
    for c in r["cycles"]:
        print("  " + ", ".join(m.removeprefix("graphc.") for m in c))
    print(f"modules without a layer: {r['unlayered']}")
    print(f"imports going up a layer: {len(r['upward_imports'])}")
    for a, b in r["upward_imports"]:
        print(f"  {a} -> {b}")
    print(f"modules over {MAX_MODULE_LINES} lines: {len(r['long_modules'])}")
    for n, m in r["long_modules"]:
        print(f"  {n:5d} {m}")
    print(f"functions over {MAX_FUNCTION_LINES} lines: {len(r['long_functions'])}")
    for n, f, line in r["long_functions"]:
        print(f"  {n:5d} {f} (line {line})")
    print(f"node attribute dict reads outside ir.py: {len(r['node_dict_reads'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
