"""Graph -> Graphviz: the forward graph, and the backward graph beside it.

Nodes are labelled with the user's name, the operation (a math symbol where
one reads better) and the type (``f32[64,6,24,24]``).  Inputs, parameters,
constants, intermediates and outputs are drawn distinctly and operations are
coloured by family from one fixed map.  Backward nodes sit in their own
cluster with red edges; dashed grey edges show the forward values the
backward pass reads.  Scopes (``with graphc.scope("conv1"):``) become
clusters, or single boxes with ``collapse=``.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess

from ._files import check_path, check_target, write_atomic
from .errors import OptionError, RenderError
from .ir import install_product
from .primitive import REGISTRY, type_str

__all__ = ["to_dot", "render_graph", "FAMILY_COLORS"]

FAMILY_COLORS = {
    "input": "#fde68a", "parameter": "#fbbf24", "const": "#f3f4f6", "output": "#86efac",
    "elementwise": "#bfdbfe", "reduce": "#c7d2fe", "shape": "#e5e7eb", "linalg": "#fca5a5",
    "index": "#ddd6fe", "nn": "#a7f3d0", "conv": "#f9a8d4", "random": "#fed7aa",
}
_BACKWARD_EDGE = "#dc2626"
_LARGE = 300
_SAVED_EDGE = "#9ca3af"

INSTALL_HINT = ("install Graphviz's `dot` program: `sudo apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`; "
                "`make demo` does it for you when run as root. DOT text (.dot/.gv) needs no dot program.")


# Control characters (NUL above all, which ends a C string inside dot) are shown
# as their Unicode "control picture" (NUL -> U+2400 ␀): visible, and never DOT syntax.
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421}


def _esc(text: str) -> str:
    return str(text).translate(_CONTROL_PICTURES).replace("\\", "\\\\").replace('"', '\\"') \
        .replace("<", "‹").replace(">", "›").replace("{", "(").replace("}", ")").replace("|", "¦")


def _op_label(node) -> str:
    prim = REGISTRY.get(node.op)
    return prim.label_text(node.params) if prim is not None else node.op


def _kind(g, nid, params, outputs):
    node = g[nid]
    if node.op == "input":
        return "parameter" if nid in params else "input"
    if node.op == "const":
        return "const"
    prim = REGISTRY.get(node.op)
    return prim.family if prim else "elementwise"


def _names(g):
    from .naming import Namespace
    ns = Namespace()
    names = {}
    for nid in g.order():
        node = g[nid]
        primal = node.adjoint_of
        if primal is not None and primal in names and g[nid].op != "input":
            names[nid] = ns.new("d_" + names[primal])
        elif node.op == "const":
            names[nid] = None
        else:
            names[nid] = ns.new(node.name or node.hint or node.op)
    return names


def _scalar_const(g, nid):
    node = g[nid]
    return node.op == "const" and node.shape == ()


def _const_text(node):
    value = node.value
    try:
        import numpy as np
        if np.ndim(value) == 0:
            v = value.item() if hasattr(value, "item") else value
            return f"{v:.4g}" if isinstance(v, float) else str(v)
    except Exception:  # pragma: no cover - drawing must never fail on a constant
        pass
    return "const"


def to_dot(graph, *, backward=None, collapse=None, flops=False, legend=True, rankdir="TB"):
    """Draw ``graph`` as a :class:`graphviz.Digraph`.

    Parameters
    ----------
    backward : bool, optional
        Draw the backward part in its own cluster (default: when there is one).
        ``False`` draws the forward part only.
    collapse : bool or iterable of str, optional
        Draw each scope (or the named ones) as a single box with its input and
        output shapes.
    flops : bool
        Add each operation's FLOP count to its label.
    """
    import graphviz
    g = graph
    has_backward = any(g[n].section == "backward" for n in g)
    show_backward = has_backward if backward is None else (backward and has_backward)
    names = _names(g)
    outputs = set(g.outputs)
    params = {g[n].adjoint_of for n in g}
    costs = g.cost().by_node if flops else {}
    graph_attr = {"rankdir": rankdir, "fontname": "Helvetica", "label": _esc(f"{g.fn_name}"),
                  "labelloc": "t", "fontsize": "16"}
    if len(g) > _LARGE:
        # dot's network-simplex and crossing minimization are superlinear: cap
        # their iterations so thousands of nodes lay out in seconds.
        graph_attr.update(nslimit="1", nslimit1="1", mclimit="0.2", searchsize="10",
                          splines="line", remincross="false")
    _check_options(collapse=collapse, flops=flops, legend=legend, rankdir=rankdir,
                   backward=backward)
    dot = graphviz.Digraph(name=_esc(g.fn_name), graph_attr=graph_attr,
                           node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled",
                                      "shape": "box"},
                           edge_attr={"arrowsize": "0.6"})
    visible = [n for n in g.order()
               if (show_backward or g[n].section != "backward")
               and not _scalar_const(g, n)]
    vis = set(visible)
    collapsed = _collapsed_scopes(g, visible, collapse)
    box_of = {}
    for n in visible:
        scope = g[n].scope
        top = _matching_scope(scope, collapsed)
        if top is not None:
            # no ":" in ids: dot reads "a:b" as node a, port b
            box_of[n] = "scope__" + _cluster_id(top) + ("__bwd" if g[n].section == "backward" else "")

    clusters: dict = {}

    def cluster_for(nid):
        node = g[nid]
        section = node.section if show_backward else "forward"
        key = ("backward" if section == "backward" else "forward", node.scope)
        return key

    families = set()
    for nid in visible:
        if nid in box_of:
            continue
        node = g[nid]
        kind = _kind(g, nid, params, outputs)
        families.add(kind)
        attrs = {"fillcolor": FAMILY_COLORS.get(kind, "#ffffff")}
        typ = type_str(node.shape, node.dtype)
        if node.op == "input":
            label = f"{names[nid]}\\n{typ}"
            attrs["shape"] = "box"
            attrs["style"] = "filled,rounded,bold"
        elif node.op == "const":
            label = _const_text(node) + (f"\\n{typ}" if node.shape != () else "")
            attrs.update(shape="plaintext", style="filled", fontsize="9")
        else:
            op = _op_label(node)
            if any(_scalar_const(g, a) for a in node.args):
                parts = [_const_text(g[a]) if _scalar_const(g, a) else "·"
                         for a in node.args]
                prim = REGISTRY.get(node.op)
                if len(parts) == 2 and prim is not None and prim.prec < 100:
                    op = f"{parts[0]} {op} {parts[1]}"        # 1 − ·, · ^ 2, 2 × ·
                else:
                    op = f"{op}({', '.join(parts)})"         # max(·, 0.5)
            label = f"{names[nid]} = {op}\\n{typ}"
            if flops and costs.get(nid):
                label += f"\\n{costs[nid]:,} FLOPs"
            attrs["shape"] = "ellipse" if REGISTRY[node.op].elementwise else "box"
        if nid in outputs:
            attrs["peripheries"] = "2"
            attrs["penwidth"] = "1.5"
        if node.section == "backward":
            attrs["style"] = attrs.get("style", "filled") + ",dashed"
        clusters.setdefault(cluster_for(nid), []).append((str(nid), _esc_label(label), attrs))

    # collapsed scopes: one box each, with the shapes going in and out
    for box, members in _group(box_of).items():
        # Shapes that cross the box's border within its own section (saved values
        # read by the backward pass show as dashed edges instead).
        section = g[members[0]].section or "forward"
        same = lambda n: (g[n].section or "forward") == section  # noqa: E731
        ins = sorted({type_str(g[a].shape, g[a].dtype)
                      for m in members for a in g[m].args
                      if box_of.get(a) != box and not _scalar_const(g, a) and same(a)})
        outs = sorted({type_str(g[m].shape, g[m].dtype) for m in members
                       if any(box_of.get(u) != box and same(u) for u in g.users(m) if u in vis)
                       or m in outputs})
        bwd = box.endswith("__bwd")
        scope = g[members[0]].scope
        scope = _matching_scope(scope, collapsed)
        label = f"{'∂ ' if bwd else ''}{scope}\\n{len(members)} ops\\nin: {', '.join(ins) or '-'}\\nout: {', '.join(outs) or '-'}"
        attrs = {"fillcolor": "#fef3c7" if not bwd else "#fee2e2", "shape": "box3d"}
        key = ("backward" if bwd else "forward", None)
        clusters.setdefault(key, []).append((box, _esc_label(label), attrs))

    # Edges.  In large drawings a value used far away (a saved forward value read
    # by the backward pass, a parameter used by every layer) gets a small proxy
    # node beside each consumer instead of one long edge: long edges make dot's
    # layout quadratic in the graph size.
    large = len(visible) > _LARGE
    fanout = {n: sum(1 for u in g.users(n) if u in vis) for n in visible}
    edges, seen_edges = [], set()
    for nid in visible:
        node = g[nid]
        dst = box_of.get(nid, str(nid))
        for a in node.args:
            if a not in vis:
                continue
            src = box_of.get(a, str(a))
            if src == dst or (src, dst) in seen_edges:
                continue
            seen_edges.add((src, dst))
            a_bwd = g[a].section == "backward"
            saved = node.section == "backward" and show_backward and not a_bwd
            if large and (saved or fanout[a] > 3) and a not in box_of:
                proxy = f"p{src}_{dst}"
                clusters.setdefault(cluster_for(nid), []).append(
                    (proxy, _esc(names.get(a) or "value"),
                     {"shape": "box", "style": "dashed,rounded", "fontsize": "8",
                      "fillcolor": "#ffffff", "color": _SAVED_EDGE}))
                src = proxy
                saved_style = {"color": _SAVED_EDGE, "style": "dashed"}  # short: keep it ranked
                edges.append((src, dst, saved_style if saved else {}))
                continue
            if saved:
                edges.append((src, dst, {"color": _SAVED_EDGE, "style": "dashed", "constraint": "false"}))
            elif node.section == "backward" and show_backward:
                edges.append((src, dst, {"color": _BACKWARD_EDGE}))
            else:
                edges.append((src, dst, {}))

    def emit_scopes(target, section, items):
        for scope, nodes in sorted(items.items(), key=lambda kv: kv[0] or ""):
            if scope is None:
                for nid, label, attrs in nodes:
                    target.node(nid, label, **attrs)
                continue
            with target.subgraph(name=_cluster_id(f"cluster_{section}_{scope}")) as c:
                c.attr(label=_esc(scope), style="rounded,dashed", color="#9ca3af", fontsize="12")
                for nid, label, attrs in nodes:
                    c.node(nid, label, **attrs)

    by_section: dict = {}
    for (section, scope), nodes in clusters.items():
        by_section.setdefault(section, {}).setdefault(scope, []).extend(nodes)
    for section in sorted(by_section, key=lambda s: s != "forward"):
        if not show_backward:
            emit_scopes(dot, section, by_section[section])
            continue
        # scopes nest inside their section's cluster
        with dot.subgraph(name=f"cluster_{section}") as c:
            c.attr(label=section, style="rounded", fontsize="12",
                   color="#dc2626" if section == "backward" else "#2563eb")
            emit_scopes(c, section, by_section[section])

    for src, dst, attrs in edges:
        dot.edge(src, dst, **attrs)
    if legend:
        _legend(dot, families, show_backward)
    return dot


def _esc_label(label):
    # keep our own "\n" line breaks, escape everything else
    return "\\n".join(_esc(part) for part in label.split("\\n"))


def _cluster_id(name):
    """A DOT-safe id for ``name``, distinct for distinct names.

    Names that are already safe keep their id; any other gets a short hash of the
    exact name, so scopes "layer 1", "layer_1" and "layer.1" stay three clusters.
    """
    import hashlib
    import re
    safe = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if safe == name:
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}_{digest}"


# The drawing options of render / to_dot, and the values each accepts.
DRAW_OPTIONS = {
    "backward": "True, False or None",
    "collapse": "True, False, None, a scope name or a list of scope names",
    "flops": "True or False",
    "legend": "True or False",
    "rankdir": "'TB', 'LR', 'BT' or 'RL'",
}
_RANKDIRS = ("TB", "LR", "BT", "RL")


def _valid_option(name, value) -> bool:
    import numpy as np
    bools = (bool, np.bool_)
    if name == "backward":
        return value is None or isinstance(value, bools)
    if name in ("flops", "legend"):
        return isinstance(value, bools)
    if name == "rankdir":
        return isinstance(value, str) and value in _RANKDIRS
    if name == "collapse":
        if value is None or isinstance(value, (*bools, str)):
            return True
        try:
            items = list(value)
        except TypeError:
            return False
        return all(isinstance(v, str) for v in items)
    return False


def _check_options(**options) -> None:
    """OptionError naming the first drawing option with a value it does not take."""
    for name, value in options.items():
        if name not in DRAW_OPTIONS:
            raise OptionError(f"{name}={value!r} is not a drawing option",
                              hint="drawing options are " + _options_text())
        if not _valid_option(name, value):
            raise OptionError(f"drawing option {name}={value!r} is not valid: {name} takes "
                              f"{DRAW_OPTIONS[name]}",
                              hint=f"pass {name}= one of: {DRAW_OPTIONS[name]}")


def _options_text() -> str:
    return ", ".join(f"{k}= ({v})" for k, v in DRAW_OPTIONS.items())


def _collapsed_scopes(g, visible, collapse):
    if not collapse:
        return set()
    scopes = {g[n].scope for n in visible} - {None}
    tops = {s.split("/")[0] for s in scopes}
    if collapse is True:
        return tops
    if isinstance(collapse, str):
        collapse = [collapse]
    return {c for c in collapse if c in scopes or c in tops}


def _matching_scope(scope, collapsed):
    if scope is None:
        return None
    parts = scope.split("/")
    for i in range(1, len(parts) + 1):
        if "/".join(parts[:i]) in collapsed:
            return "/".join(parts[:i])
    return None


def _group(box_of):
    out = {}
    for n, b in box_of.items():
        out.setdefault(b, []).append(n)
    return out


def _legend(dot, families, show_backward):
    with dot.subgraph(name="cluster_legend") as c:
        c.attr(label="legend", style="rounded", color="#d1d5db", fontsize="10")
        order = ["input", "parameter", "const", "elementwise", "reduce", "shape", "linalg",
                 "index", "nn", "conv", "random"]
        prev = None
        for fam in order:
            if fam not in families:
                continue
            nid = f"legend_{fam}"
            c.node(nid, fam, fillcolor=FAMILY_COLORS[fam], fontsize="9",
                   shape="plaintext" if fam == "const" else "box")
            if prev:
                c.edge(prev, nid, style="invis")
            prev = nid
        c.node("legend_output", "output", fillcolor="#ffffff", peripheries="2", fontsize="9")
        if prev:
            c.edge(prev, "legend_output", style="invis")
        if show_backward:
            c.node("legend_bwd", "backward (∂)", fillcolor="#ffffff", style="filled,dashed", fontsize="9")
            c.edge("legend_output", "legend_bwd", style="invis")


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_graph(graph, path, **kwargs) -> pathlib.Path:
    """Write ``graph`` to ``path``; the format comes from the suffix.

    ``.svg``, ``.png``, ``.pdf`` need Graphviz's ``dot`` program; ``.dot`` and
    ``.gv`` write DOT text and need nothing.
    """
    path = check_path(path, "graphc.render")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png", "pdf", "dot", "gv"):
        raise OptionError(f"cannot render to {path.name}: unknown format {fmt!r}",
                          hint="use a .svg, .png, .pdf, .dot or .gv file name")
    _check_options(**kwargs)
    dot = to_dot(graph, **kwargs)
    exe = None
    if fmt not in ("dot", "gv"):
        exe = shutil.which("dot")
        if exe is None:
            raise RenderError("Graphviz's `dot` program was not found on PATH, so graphc cannot "
                              f"write {path.name}", hint=INSTALL_HINT)
    # dot writes to its stdout, never to a file name it was given; the bytes then
    # go through write_atomic (a fresh O_EXCL temporary file, then a rename), so a
    # failure (dot crashing, a full disk) never leaves a half-written drawing at
    # `path`, and a link, FIFO or device at `path` is refused, never written.
    check_target(path, True, "graphc.render", RenderError)
    if exe is None:
        data = dot.source
    else:
        try:
            proc = subprocess.run([exe, f"-T{fmt}"], input=dot.source.encode(),
                                  capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RenderError(f"Graphviz's `dot` ({exe}) failed to run: {e}",
                              hint="reinstall Graphviz; " + INSTALL_HINT) from None
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode(errors="replace").strip()[:500] or "no error output"
            raise RenderError(
                f"Graphviz's `dot` ({exe}) failed on {path.name} with exit status "
                f"{proc.returncode}: {err}",
                hint="check the Graphviz installation (`dot -V`); a .dot or .gv file name "
                     "writes the DOT text without running dot")
        data = proc.stdout
    write_atomic(path, data, overwrite=True, what="graphc.render", error=RenderError)
    return path


install_product("to_dot", to_dot)


install_product("render", render_graph)
