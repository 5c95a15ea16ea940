"""The edges of a drawing: data flow, the seed's, and the saved values the backward pass reads.

Few saved values are dashed grey edges (``constraint=false``: they never bend
the layout); many (or any in a collapsed drawing) become one small "reads x,
y" box above each reader, so nothing crosses the gap between the sections.
"""
from __future__ import annotations

from .draw_boxes import const_label
from .draw_layout import BACKWARD_EDGE, LARGE, SAVED_EDGE, SEED, esc, esc_label, seed_roots

__all__ = ["add_edges", "add_seed", "pin_floating"]


def add_seed(d):
    """The backward seed ``d_<loss> = 1``, above the backward values that start from it."""
    if not d.has_seed:
        return
    g = d.g
    out = d.names.get(d.seed) if d.seed is not None else g.fn_name
    label = f"d_{out} = 1\\nseed"
    tip = f"the seed of the backward pass: d{out}/d{out} = 1"
    d.add(("backward", None), (SEED, esc_label(label),
                               {"shape": "ellipse", "style": "filled,bold", "fillcolor": "#fecaca",
                                "color": BACKWARD_EDGE, "id": "seed", "tooltip": esc(tip)}))
    d.families.add("seed")
    seen = set()
    for n in seed_roots(g, d.visible):
        dst = d.box_of.get(n, str(n))
        if dst not in seen:
            seen.add(dst)
            d.edges.append((SEED, dst, {"color": BACKWARD_EDGE}))


def pin_floating(d):
    """A backward node computed from forward values only (``cos``, a relu mask) would
    float to the top of the backward pass; an invisible edge from the adjoint computed
    just before it keeps it beside the adjoints that use it."""
    g = d.g
    if not d.has_seed or d.collapsed or not any(g[n].scope for n in d.visible
                                                 if d.drawn_backward(n)):
        return      # only scope clusters suffer from it (they would stand side by side)
    fed = {dst for src, dst, attrs in d.edges if attrs.get("color") == BACKWARD_EDGE}
    roots = set(seed_roots(g, d.visible))
    last = None
    for n in d.visible:
        if not d.drawn_backward(n):
            continue
        if str(n) not in fed and n not in roots and last is not None:
            d.edges.append((str(last), str(n), {"style": "invis"}))
        if g[n].adjoint_of is not None or str(n) in fed:
            last = n


def add_edges(d):
    """Forward, backward and saved-value edges, one per (source, destination) pair.

    In large drawings a value used far away (a saved forward value read by the
    backward pass, a parameter used by every layer) gets a small proxy node
    beside each consumer instead of one long edge: long edges make dot's layout
    quadratic in the graph size.
    """
    g, box_of = d.g, d.box_of
    large = len(d.visible) > LARGE
    # many saved values (or layer boxes): a small "reads x" box beside each reader, no tangle
    n_saved = sum(1 for n in d.visible if d.drawn_backward(n)
                  for a in map(d.drawn, g[n].args) if a in d.vis and g[a].section != "backward")
    proxies = large or bool(d.collapsed) or n_saved > 8
    fanout = {n: sum(1 for u in g.users(n) if u in d.vis) for n in d.visible}
    seen = set()
    reads: dict = {}
    for nid in d.visible:
        dst = box_of.get(nid, str(nid))
        for a in map(d.drawn, g[nid].args):
            src = box_of.get(a, str(a))
            if a not in d.vis or src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            saved = d.drawn_backward(nid) and g[a].section != "backward"
            if saved and proxies:
                reads.setdefault(dst, (nid, []))[1].append(d.names.get(a) or const_label(g[a]))
            elif large and fanout[a] > 3 and a not in box_of:
                _add_proxy_edge(d, nid, a, src, dst, saved)
            else:
                d.edges.append((src, dst, _edge_style(d, nid, saved)))
    add_reads(d, reads)


def add_reads(d, reads):
    """One small "reads x, y" box above each backward reader of saved forward values."""
    for dst, (nid, names) in reads.items():
        names = list(dict.fromkeys(names))
        rows = [", ".join(names[i:i + 3]) for i in range(0, len(names), 3)]
        label = "\\n".join(["reads " + rows[0]] + rows[1:])
        proxy = f"r_{dst}"
        d.add(("backward", None),           # outside scope clusters: they stay compact
              (proxy, esc_label(label), {"shape": "box", "style": "dashed,rounded",
                                          "fontsize": "8", "fillcolor": "#ffffff",
                                          "color": SAVED_EDGE, "fontcolor": "#6b7280"}))
        d.edges.append((proxy, dst, {"color": SAVED_EDGE, "style": "dashed", "arrowsize": "0.4"}))


def _edge_style(d, nid, saved):
    if saved:
        return {"color": SAVED_EDGE, "style": "dashed", "constraint": "false",
                "penwidth": "0.7", "arrowsize": "0.4"}
    if d.drawn_backward(nid):
        return {"color": BACKWARD_EDGE}
    return {}


def _add_proxy_edge(d, nid, a, src, dst, saved):
    proxy = f"p{src}_{dst}"
    d.add(d.cluster_key(nid), (proxy, esc(d.names.get(a) or "value"),
                              {"shape": "box", "style": "dashed,rounded", "fontsize": "8",
                               "fillcolor": "#ffffff", "color": SAVED_EDGE}))
    # a short edge: it keeps its rank constraint
    d.edges.append((proxy, dst, {"color": SAVED_EDGE, "style": "dashed"} if saved else {}))
