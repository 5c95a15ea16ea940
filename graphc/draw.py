"""Graph -> Graphviz: the forward graph, and the backward graph beside it.

Nodes are labelled with the user's name, the operation (a math symbol where
one reads better) and the type (``f32[64,6,24,24]``).  Inputs, parameters,
constants, intermediates and outputs are drawn distinctly and operations are
coloured by family from one fixed map.  Backward nodes sit in their own
cluster, right of the forward one, with red edges from the seed
(``d_loss = 1``); the forward values the backward pass reads are dashed grey
edges, or "reads x, y" boxes when there are many (graphc/draw_edges.py).
Scopes (``with graphc.scope("conv1"):``) become clusters, or single boxes
named by what the layer computes with ``collapse=`` (graphc/draw_boxes.py).
Legend, seed, layout order and tooltips: graphc/draw_layout.py; the drawing
object Jupyter shows and files: graphc/drawing.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .codegen_guards import guard_text
from .draw_boxes import const_label as _const_text, is_scalar_const as _scalar_const, layer_text
from .draw_edges import add_edges, add_seed, pin_floating
from .draw_layout import (FAMILY_COLORS, RECOMPUTE_COLOR, LARGE as _LARGE, SEED as _SEED, cluster_id as _cluster_id,
                          collapsed_scopes as _collapsed_scopes, emit_clusters, esc as _esc,
                          esc_label as _esc_label, esc_lines as _esc_lines, group as _group,
                          matching_scope as _matching_scope, order_sections, seed_target,
                          tooltip, value_text)
from .draw_options import DRAW_OPTIONS
from .draw_options import check_options
from .errors import OptionError
from .ir import Graph, install_product
from .naming import Namespace
from .ir import SUBGRAPH_OPS
from .primitive import REGISTRY, type_str
from .source_comments import where_short

__all__ = ["to_dot", "FAMILY_COLORS", "DRAW_OPTIONS", "INSTALL_HINT"]

# Drawings of more nodes than this draw reshapes/transposes as edges (plumbing=None).
_PLUMBING_AUTO = 40
_PLUMBING_OPS = {"reshape", "transpose", "contiguous", "expand_dims", "squeeze", "astype",
                 "identity", "broadcast_to"}
_RECOMPUTE = {"color": RECOMPUTE_COLOR, "penwidth": "2"}   # a checkpoint's recomputed forward node

INSTALL_HINT = ("install Graphviz's `dot` program: `sudo apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`; "
                "`make demo` does it for you when run as root. DOT text (.dot/.gv) needs no dot program.")


def _op_label(node) -> str:
    prim = REGISTRY.get(node.op)
    if prim is None and node.op in SUBGRAPH_OPS:      # a loop or branch: "scan × 1000"
        return SUBGRAPH_OPS[node.op].label(node)
    return prim.label_text(node.params) if prim is not None else node.op


def _kind(g, nid, params):
    node = g[nid]
    if node.op == "input":
        return "parameter" if nid in params else "input"
    if node.op == "const":
        return "const"
    prim = REGISTRY.get(node.op)
    return prim.family if prim else "elementwise"


def _names(g):
    """Each node's drawn name: ``Graph.display_name`` made unique; constants show their value."""
    ns = Namespace()
    names = {}
    for nid in g:
        names[nid] = None if g[nid].op == "const" else ns.new(g.display_name(nid, names))
    return names


@dataclass
class _Drawing:
    """What one drawing knows about its graph, and the DOT items it has collected.

    ``visible`` lists the drawn nodes in program order (``vis`` is the same as a
    set); ``params`` holds every node that has an adjoint (inputs among them
    are drawn as parameters); ``box_of`` maps each node inside a collapsed
    scope to the id of that scope's box; ``clusters`` maps ``(section, scope)``
    to ``(id, label, attrs)`` items in the order they are added.
    """
    g: Graph
    show_backward: bool
    flops: bool
    names: dict
    visible: list
    vis: set
    outputs: set
    params: set
    costs: dict
    collapsed: set
    values: dict | None = None
    code: object = None
    seed: int | None = None
    has_seed: bool = False
    through: dict = field(default_factory=dict)
    box_of: dict = field(default_factory=dict)
    clusters: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    families: set = field(default_factory=set)

    def add(self, key, item):
        self.clusters.setdefault(key, []).append(item)

    def drawn(self, nid):
        """The drawn node standing for ``nid`` (its source, for a reshape drawn as an edge)."""
        while nid in self.through:
            nid = self.through[nid]
        return nid

    def section(self, nid):
        """``"backward"`` or ``"forward"``: the section ``nid`` is drawn in."""
        return "backward" if self.g[nid].section == "backward" else "forward"

    def drawn_backward(self, nid):
        return self.show_backward and self.g[nid].section == "backward"

    def cluster_key(self, nid):
        node = self.g[nid]
        return ("backward" if self.drawn_backward(nid) else "forward", node.scope)


def to_dot(graph, *, backward=None, collapse=None, flops=False, legend=True, rankdir="TB",
           dpi=None, size=None, values=None, plumbing=None, tooltips=True):
    """Draw ``graph`` as a :class:`graphviz.Digraph`.

    Parameters
    ----------
    backward : bool, optional
        Draw the backward part in its own cluster (default: when there is one).
        ``False`` draws the forward part only.
    collapse : bool or iterable of str, optional
        Draw each scope (or the named ones) as a single box named by what the
        layer computes (``conv 3×3, 1→8 · relu``), with its named inputs and outputs.
    flops : bool
        Add each operation's FLOP count to its label.
    legend : bool
        A one-row legend under the title.
    rankdir : str
        ``"TB"`` (default), ``"LR"``, ``"BT"`` or ``"RL"``.
    dpi : number, optional
        Resolution of PNG output (Graphviz's ``dpi``).
    size : (width, height) in inches, optional
        Scale the drawing to fit this box (``(13.33, 7.5)``: a 16:9 slide).
    values : mapping, optional
        ``{node id: value}`` (``graphc.render(..., values=True)`` computes it):
        scalars and small arrays are written into labels, every value into tooltips.
    plumbing : bool, optional
        Draw reshapes, transposes and copies as nodes (default: in drawings of at
        most 40 nodes; larger ones draw them as edges).
    tooltips : bool
        Give each node a tooltip (its user line, generated-code line, type, value).
    """
    check_options(collapse=collapse, flops=flops, legend=legend, rankdir=rankdir,
                  backward=backward, dpi=dpi, size=size, plumbing=plumbing)
    if values is not None and not hasattr(values, "get"):
        raise OptionError(f"to_dot(values={values!r:.40}): values takes the node values "
                          "(a mapping), which only a call with example arguments has",
                          hint="use graphc.render(fn, *args, values=True)")
    d = _drawing(graph, backward, collapse, flops, plumbing)
    d.values = values
    d.code = _code_map(graph) if tooltips else None
    for nid in d.visible:
        if nid not in d.box_of:
            d.add(d.cluster_key(nid), _node_item(d, nid))
    for box, members in _group(d.box_of).items():
        d.add(("backward" if box.endswith("__bwd") else "forward", None), _box_item(d, box, members))
    add_edges(d)
    add_seed(d)             # its edges after the forward ones: dot's first ordering follows them
    pin_floating(d)
    dot = _digraph(graph, rankdir, dpi, size)
    emit_clusters(dot, d, legend)
    for src, dst, attrs in d.edges:
        dot.edge(src, dst, **attrs)
    for nid in d.visible:           # a loop's or branch's bodies: one cluster each
        if graph[nid].bodies:
            SUBGRAPH_OPS[graph[nid].op].draw(dot, graph, nid, _esc)
    if d.has_seed:
        order_sections(dot, _forward_anchor(d), _SEED)
    dot.node_ids = _node_ids(d)     # graphc.report links views through them
    return dot


def _node_ids(d):
    """``{node id: SVG id}`` of every node the drawing shows (in a box, or as its source)."""
    ids = {}
    for n in d.g.order():
        m = d.drawn(n)
        if m in d.box_of:
            ids[n] = d.box_of[m]
        elif m in d.vis:
            ids[n] = f"v{m}"
    return ids


def _code_map(graph):
    """Where each node is computed in the generated code (None if it cannot be generated)."""
    from .code_lines import code_map
    try:
        return code_map(graph)
    except Exception:   # a drawing never fails for its tooltips
        return None


def _forward_anchor(d):
    """The first drawn forward node (or its box): the left end of the section order."""
    for n in d.visible:
        if d.section(n) == "forward":
            return d.box_of.get(n, str(n))
    return None


def _differentiated(g):
    """Inputs whose gradient the graph returns (through the reshapes a layer made of them)."""
    out = set()
    for o in g.outputs:
        p = g[o].adjoint_of if g[o].section == "backward" else None
        while p is not None and g[p].op in _PLUMBING_OPS and g[p].args:
            p = g[p].args[0]
        if p is not None and g[p].op == "input":
            out.add(p)
    return out


def _plumbing(g, visible):
    """Reshapes, transposes and copies of one drawn value: drawn as an edge, not a node."""
    outputs = set(g.outputs)
    out = {}
    for n in visible:
        node = g[n]
        args = [a for a in node.args if not _scalar_const(g, a)]
        if node.op in _PLUMBING_OPS and len(args) == 1 and n not in outputs:
            out[n] = args[0]
    return out


def _drawing(g, backward, collapse, flops, plumbing=None) -> _Drawing:
    has_backward = any(g[n].section == "backward" for n in g)
    show_backward = has_backward if backward is None else (backward and has_backward)
    visible = [n for n in g.order()
               if (show_backward or g[n].section != "backward") and not _scalar_const(g, n)]
    through = {}
    if (plumbing is False or plumbing is None and len(visible) > _PLUMBING_AUTO) and not collapse:
        through = _plumbing(g, visible)
        visible = [n for n in visible if n not in through]
    d = _Drawing(g=g, show_backward=show_backward, flops=flops, names=_names(g),
                 visible=visible, vis=set(visible), outputs=set(g.outputs),
                 params={g[n].adjoint_of for n in g} | _differentiated(g),
                 costs=g.cost().by_node if flops else {},
                 collapsed=_collapsed_scopes(g, visible, collapse), through=through)
    for n in visible:
        top = _matching_scope(g[n].scope, d.collapsed)
        if top is None and g[n].op == "const":
            top = _const_scope(g, n, d)     # a constant only one layer reads: inside its box
        if top is not None:
            # no ":" in ids: dot reads "a:b" as node a, port b
            d.box_of[n] = "scope__" + _cluster_id(top) + ("__bwd" if d.section(n) == "backward" else "")
    if show_backward:
        has_seed, d.seed = seed_target(g)
        d.seed = d.seed if has_seed else None
        d.has_seed = has_seed
    return d


def _const_scope(g, n, d):
    scopes = {_matching_scope(g[u].scope, d.collapsed) for u in g.users(n)
              if u in d.vis and d.section(u) == d.section(n)}
    if len(scopes) == 1 and None not in scopes:
        return scopes.pop()
    return None


def _digraph(g, rankdir, dpi=None, size=None):
    import graphviz
    # comment: the mark that says graphc drew it (graphc/file_marks.py); dot copies it into SVG
    graph_attr = {"comment": "Generated by graphc",
                  "rankdir": rankdir, "fontname": "Helvetica", "label": _esc(f"{g.fn_name}"),
                  "labelloc": "t", "fontsize": "16", "newrank": "true", "nodesep": "0.3",
                  "ranksep": "0.35"}
    if dpi is not None:
        graph_attr["dpi"] = str(float(dpi))
    if size is not None:
        w, h = size
        graph_attr["size"] = f"{float(w):g},{float(h):g}!"      # "!": scale up to fit, too
    if len(g) > _LARGE:
        # dot's network-simplex and crossing minimization are superlinear: cap
        # their iterations so thousands of nodes lay out in seconds.
        graph_attr.update(nslimit="1", nslimit1="1", mclimit="0.2", searchsize="10",
                          splines="line", remincross="false")
    return graphviz.Digraph(name=_esc(g.fn_name), graph_attr=graph_attr,
                            node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled",
                                       "shape": "box"},
                            edge_attr={"arrowsize": "0.6"})


# -- one node --------------------------------------------------------------------------

def _node_item(d, nid):
    """``(id, label, attrs)`` of one drawn node: its shape, colour and label."""
    g, node = d.g, d.g[nid]
    kind = _kind(g, nid, d.params)
    d.families.add(kind)
    attrs = {"fillcolor": FAMILY_COLORS.get(kind, "#ffffff")}
    typ = type_str(node.shape, node.dtype)
    if node.op == "input":
        label = f"{d.names[nid]}\\n{typ}"
        attrs.update(shape="box", style="filled,rounded,bold")
    elif node.op == "const":
        label = _const_text(node) + (f"\\n{typ}" if node.shape != () else "")
        if node.adjoint_of is not None and d.names.get(node.adjoint_of):
            # an adjoint constant folding made (the seed through a mean): named as one
            label = f"d_{d.names[node.adjoint_of]} = {label}"
        attrs.update(shape="plaintext", style="filled", fontsize="9")
    elif node.op == "guard":              # a decision the trace took: a diamond
        label = f"{guard_text(g, nid)}\\n{where_short(node.where) or 'guard'}"
        attrs.update(shape="diamond", fontsize="9")
    else:
        label = f"{d.names[nid]} = {_op_text(g, node)}\\n{typ}"
        if d.flops and d.costs.get(nid):
            label += f"\\n{d.costs[nid]:,} FLOPs"
        prim = REGISTRY.get(node.op)
        attrs["shape"] = "ellipse" if prim is not None and prim.elementwise else \
            "box3d" if node.bodies else "box"
    if d.values is not None and nid in d.values and node.op not in ("const", "guard"):
        shown = value_text(d.values[nid], short=True)
        if shown:
            label += f"\\n= {shown}"
    if nid in d.outputs:
        attrs.update(peripheries="2", penwidth="1.5")
    if node.section == "backward":
        attrs["style"] = attrs.get("style", "filled") + ",dashed"
    attrs["id"] = f"v{nid}"
    attrs["tooltip"] = _esc_lines(tooltip(node, typ, d.code, nid, d.values))
    if node.recompute:
        attrs.update(_RECOMPUTE)
        d.families.add("recomputed")
    return str(nid), _esc_label(label), attrs


def _op_text(g, node):
    """The operation's label, with its scalar constant arguments written in."""
    op = _op_label(node)
    if not any(_scalar_const(g, a) for a in node.args):
        return op
    parts = [_const_text(g[a]) if _scalar_const(g, a) else "·" for a in node.args]
    prim = REGISTRY.get(node.op)
    if len(parts) == 2 and prim is not None and prim.prec < 100:
        return f"{parts[0]} {op} {parts[1]}"        # 1 − ·, · ^ 2, 2 × ·
    return f"{op}({', '.join(parts)})"              # max(·, 0.5)


# -- collapsed scopes --------------------------------------------------------------------

def _box_item(d, box, members):
    """One collapsed scope's box: the scope, what it computes, its named inputs and outputs."""
    g = d.g
    bwd = box.endswith("__bwd")
    ins, outs = _box_values(d, box, members)
    scope = next(_matching_scope(g[m].scope, d.collapsed) for m in members
                 if _matching_scope(g[m].scope, d.collapsed) is not None or m == members[-1])
    forward = [n for n in d.visible if d.section(n) == "forward"
               and d.box_of.get(n) == box.removesuffix("__bwd")] if bwd else ()
    lines = [f"{'∂ ' if bwd else ''}{scope}", layer_text(g, members, bwd, forward)]
    lines += [f"in: {t}" for t in ins] + [f"out: {t}" for t in outs]
    wheres = sorted({where_short(g[m].where) for m in members if g[m].where})
    attrs = {"fillcolor": "#fef3c7" if not bwd else "#fee2e2", "shape": "box3d",
             "id": box, "tooltip": _esc_lines("\n".join([lines[1]] + wheres[:6]))}
    if bwd:
        attrs["style"] = "filled,dashed"
    return box, _esc_label("\\n".join(lines)), attrs


def _box_values(d, box, members):
    """``name type`` of the values going into and out of ``box``, in program order.

    Only values crossing the box's border within its own section count: saved
    values read by the backward pass show as dashed edges instead.
    """
    g, box_of = d.g, d.box_of
    section = g[members[0]].section or "forward"

    def crosses(n):
        return box_of.get(n) != box and (g[n].section or "forward") == section

    def text(n):
        name = d.names.get(n) or _const_text(g[n])
        return f"{name} {type_str(g[n].shape, g[n].dtype)}"
    ins = [a for m in sorted(members) for a in g[m].args if crosses(a) and not _scalar_const(g, a)]
    outs = [m for m in sorted(members)
            if any(crosses(u) for u in g.users(m) if u in d.vis) or m in d.outputs]
    return [text(n) for n in dict.fromkeys(ins)], [text(n) for n in dict.fromkeys(outs)]


# -- edges -------------------------------------------------------------------------------


# -- clusters ----------------------------------------------------------------------------


install_product("to_dot", to_dot)

