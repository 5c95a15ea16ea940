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
    """

    forward_flops: int = 0
    backward_flops: int = 0
    bytes: int = 0
    by_node: dict = field(default_factory=dict)

    @property
    def total_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    def __str__(self):
        ratio = f", backward/forward {self.backward_flops / self.forward_flops:.2f}" \
            if self.forward_flops and self.backward_flops else ""
        return (f"Cost(forward {self.forward_flops:,} FLOPs, backward {self.backward_flops:,} "
                f"FLOPs{ratio}, {self.bytes:,} bytes)")


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
        else:
            cost.forward_flops += flops
    return cost


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
