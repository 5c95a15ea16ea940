"""The IR: a program-ordered DAG of primitives over networkx.

Node ids are integers handed out in program order, so sorting ids gives the
order the user's program ran in (and the reverse sweep walks them backwards).
Each node's ordered argument tuple ``args`` is the truth; the networkx edges
mirror it, one edge per argument position (``x * x`` has two edges, keys 0
and 1, each with an ``argnum`` attribute).
"""
from __future__ import annotations

import networkx as nx
import numpy as np

from .primitive import REGISTRY, Aval, type_str

__all__ = ["Graph"]


class Graph:
    """A computation graph: inputs, program-ordered nodes, outputs.

    Attributes
    ----------
    nx : networkx.MultiDiGraph
        The IR.  Node attributes: ``op``, ``shape``, ``dtype``, ``name``,
        ``params``, ``where``, plus ``args`` (ordered argument ids), ``weak``,
        ``hint`` (a name hint from composites), ``value`` (constants),
        ``section`` (``"forward"``/``"backward"``) and ``grad_of``.
    inputs, outputs : list of int
        Node ids, in order.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> g = graphc.trace(lambda x: np.exp(x) * 2.0, np.ones(3))
    >>> [g.nx.nodes[n]["op"] for n in g.order()]
    ['input', 'exp', 'const', 'mul']
    """

    def __init__(self, fn_name: str = "f"):
        self.nx = nx.MultiDiGraph()
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.fn_name = fn_name
        self.signature = None     # codegen.Signature: how args/results map to leaves
        self._next = 0

    # --- building ------------------------------------------------------------
    def add_node(self, op: str, args=(), aval: Aval | None = None, *, params=None,
                 name=None, where=None, **attrs) -> int:
        nid = self._next
        self._next += 1
        self.nx.add_node(nid, op=op, args=tuple(args), shape=tuple(aval.shape),
                         dtype=np.dtype(aval.dtype), weak=aval.weak, params=dict(params or {}),
                         name=name, where=where, **attrs)
        for i, a in enumerate(args):
            self.nx.add_edge(a, nid, key=i, argnum=i)
        return nid

    def add_input(self, aval: Aval, name: str, where=None, **attrs) -> int:
        nid = self.add_node("input", (), aval, name=name, where=where, **attrs)
        self.inputs.append(nid)
        return nid

    def add_const(self, value, *, weak=False, where=None, **attrs) -> int:
        arr = np.asarray(value)
        return self.add_node("const", (), Aval(arr.shape, arr.dtype, weak), where=where,
                             value=value if weak else arr, **attrs)

    def set_args(self, nid: int, args) -> None:
        """Replace a node's arguments, keeping edges in step."""
        for a, _, k in list(self.nx.in_edges(nid, keys=True)):
            self.nx.remove_edge(a, nid, key=k)
        self.nx.nodes[nid]["args"] = tuple(args)
        for i, a in enumerate(args):
            self.nx.add_edge(a, nid, key=i, argnum=i)

    def replace_uses(self, old: int, new: int) -> None:
        """Point every use of ``old`` (and the outputs) at ``new``."""
        for user in {v for _, v in self.nx.out_edges(old)}:
            args = tuple(new if a == old else a for a in self.nx.nodes[user]["args"])
            self.set_args(user, args)
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_nodes(self, nids) -> None:
        self.nx.remove_nodes_from(nids)

    # --- reading -------------------------------------------------------------
    def node(self, nid: int) -> dict:
        return self.nx.nodes[nid]

    def aval(self, nid: int) -> Aval:
        d = self.nx.nodes[nid]
        return Aval(d["shape"], d["dtype"], d["weak"])

    def order(self) -> list[int]:
        """Node ids in program order."""
        return sorted(self.nx.nodes)

    def users(self, nid: int) -> list[int]:
        """Distinct nodes that use ``nid``, in program order."""
        return sorted({v for _, v in self.nx.out_edges(nid)})

    def copy(self) -> "Graph":
        g = Graph(self.fn_name)
        g.nx = self.nx.copy()
        for n in g.nx.nodes:  # params/args dicts must not be shared between copies
            g.nx.nodes[n]["params"] = dict(g.nx.nodes[n]["params"])
        g.inputs, g.outputs = list(self.inputs), list(self.outputs)
        g.signature, g._next = self.signature, self._next
        return g

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def lint(self) -> None:
        """Check the invariants every pass relies on; raises AssertionError."""
        for nid in self.nx.nodes:
            d = self.nx.nodes[nid]
            edges = sorted((k, a) for a, _, k in self.nx.in_edges(nid, keys=True))
            assert [a for _, a in edges] == list(d["args"]), f"node {nid}: edges != args"
            assert all(a < nid for a in d["args"]), f"node {nid}: not in program order"
            assert d["op"] in ("input", "const") or d["op"] in REGISTRY, d["op"]
        for o in self.outputs:
            assert o in self.nx, f"output {o} missing"

    # --- cost ---------------------------------------------------------------
    def cost(self):
        """FLOPs and bytes of the graph (see :class:`graphc.cost.Cost`)."""
        from .cost import graph_cost
        return graph_cost(self)

    # --- text ----------------------------------------------------------------
    def __str__(self) -> str:
        from .codegen import graph_text
        return graph_text(self)

    def __repr__(self) -> str:
        ins = ", ".join(f"{self.node(i)['name']}: {type_str(self.node(i)['shape'], self.node(i)['dtype'])}"
                        for i in self.inputs)
        return f"<graphc.Graph {self.fn_name}({ins}): {len(self)} nodes>"

    # --- drawing -------------------------------------------------------------
    def to_dot(self, **kwargs):
        from .draw import to_dot
        return to_dot(self, **kwargs)

    def render(self, path, **kwargs):
        from .draw import render_graph
        return render_graph(self, path, **kwargs)

    def _repr_svg_(self):
        return self.to_dot().pipe(format="svg").decode()
