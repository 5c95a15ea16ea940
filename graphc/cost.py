"""The lecture's cost model: FLOPs and bytes of a graph.

One unit per scalar arithmetic operation or function evaluation; a matmul of
(m, k) x (k, n) costs 2·m·k·n.  Shape operations and constants are free.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import install_product
from .ir import SUBGRAPH_OPS
from .primitive import REGISTRY


@dataclass
class Cost:
    """FLOPs of a graph, split into its forward and backward parts.

    Attributes
    ----------
    forward_flops, backward_flops, total_flops : int
    bytes : int
        Bytes of every value the graph computes (inputs and constants excluded).
    by_node : dict
        Node id -> FLOPs.
    recomputed_flops : int
        The part of ``backward_flops`` that recomputes forward values
        (``graphc.checkpoint``: nodes with ``node.recompute``).
    saved_bytes : int
        Bytes of the forward values the backward pass reads: kept alive from the
        forward pass to the backward pass (inputs and constants excluded).
    recomputed_bytes : int
        Bytes of the recomputed values the backward pass reads: what a gradient
        without ``checkpoint`` would have kept, rebuilt instead.
    """

    forward_flops: int = 0
    backward_flops: int = 0
    bytes: int = 0
    by_node: dict = field(default_factory=dict)
    recomputed_flops: int = 0
    saved_bytes: int = 0
    recomputed_bytes: int = 0

    @property
    def total_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    def __str__(self):
        ratio = f", backward/forward {self.backward_flops / self.forward_flops:.2f}" \
            if self.forward_flops and self.backward_flops else ""
        remat = f", recomputed {self.recomputed_flops:,} FLOPs" if self.recomputed_flops else ""
        return (f"Cost(forward {self.forward_flops:,} FLOPs, backward {self.backward_flops:,} "
                f"FLOPs{ratio}{remat}, {self.bytes:,} bytes)")


def graph_cost(graph) -> Cost:
    cost = Cost()
    for nid in graph.order():
        node = graph[nid]
        prim = REGISTRY.get(node.op)
        if prim is None and node.op in SUBGRAPH_OPS:   # a loop: its body times its trip count
            flops = SUBGRAPH_OPS[node.op].cost(graph, nid)
        elif prim is None:
            continue
        out = graph.aval(nid)
        ins = [graph.aval(a) for a in node.args]
        if prim is not None:
            flops = int(prim.flops(out, *ins, **node.params)) if prim.flops else 0
        cost.by_node[nid] = flops
        cost.bytes += out.size * out.dtype.itemsize
        if node.section == "backward":
            cost.backward_flops += flops
            cost.recomputed_flops += flops if node.recompute else 0
        else:
            cost.forward_flops += flops
    _residuals(graph, cost)
    return cost


def _residuals(graph, cost) -> None:
    """Bytes the backward pass reads from the forward pass, and from recomputations."""
    saved, rebuilt = set(), set()
    for nid in graph.order():
        node = graph[nid]
        if node.section != "backward":
            continue
        for a in node.args:
            arg = graph[a]
            if arg.recompute:
                if not node.recompute:        # read by the backward pass proper
                    rebuilt.add(a)
            elif arg.section != "backward" and arg.op not in ("input", "const"):
                saved.add(a)
    for nids, attr in ((saved, "saved_bytes"), (rebuilt, "recomputed_bytes")):
        setattr(cost, attr, sum(graph.aval(n).size * graph.aval(n).dtype.itemsize for n in nids))


def cost_text(graph) -> str:
    """``graph.cost()`` as comment lines, as ``graphc trace --cost`` prints them.

    The totals (forward and, when there is one, backward FLOPs with their ratio;
    bytes of the values), then the FLOPs by op, largest first, with each op's
    share of the total.

    Parameters
    ----------
    graph : graphc.Graph

    Returns
    -------
    str
        Lines starting with ``#``, after one empty line.
    """
    c = graph_cost(graph)
    lines = ["", "# cost (the lecture's model: one unit per scalar operation, "
             "a matmul (m,k)x(k,n) is 2mkn)",
             f"#   forward  {c.forward_flops:>15,} FLOPs"]
    if c.backward_flops:
        lines.append(f"#   backward {c.backward_flops:>15,} FLOPs   "
                     f"(backward/forward {c.backward_flops / max(c.forward_flops, 1):.2f}; "
                     f"Baur-Strassen bound 5)")
    lines.append(f"#   values   {c.bytes:>15,} bytes")
    if c.recomputed_flops:
        lines.append(f"#   recomputed {c.recomputed_flops:>13,} FLOPs   (graphc.checkpoint; "
                     "part of backward)")
        lines.append(f"#   kept     {c.saved_bytes:>15,} bytes   (forward values the backward "
                     f"reads; {c.recomputed_bytes:,} bytes recomputed instead)")
    by_op: dict = {}
    for nid, flops in c.by_node.items():
        op = graph[nid].op
        by_op[op] = by_op.get(op, 0) + flops
    total = max(c.total_flops, 1)
    ranked = sorted(((f, op) for op, f in by_op.items() if f), reverse=True)
    for flops, op in ranked:
        lines.append(f"#     {op:<14} {flops:>15,}  {100 * flops / total:5.1f}%")
    return "\n".join(lines)


install_product("cost", graph_cost)
