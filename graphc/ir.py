"""The IR: a program-ordered DAG of typed nodes (shown as a networkx graph).

Node ids are integers handed out in program order, so sorting ids gives the
order the user's program ran in (and the reverse sweep walks them backwards).
Each node holds one :class:`Node`; its ordered argument tuple ``args`` is the
truth.  The graph stores ``{nid: Node}`` and, per node, ``{user: slots}`` (plain
ints: dicts the garbage collector never scans); ``Graph.nx``, the networkx
``MultiDiGraph`` with one edge per argument position (``x * x`` has two edges,
keys 0 and 1, each with an ``argnum`` attribute), is built from them when read.

:class:`Graph` is the only code that touches networkx: everything else reads
``g[nid].op`` and asks ``g.users(nid)``, ``g.replace_uses(old, new)`` and
``g.display_name(nid)``.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import networkx as nx
import numpy as np

from .naming import sanitize
from .primitive import REGISTRY, Aval, type_str

__all__ = ["Graph", "Node"]

# GRAPHC_DEBUG=1 runs Graph.check() after every pass (see graphc/passes).
DEBUG = os.environ.get("GRAPHC_DEBUG", "") not in ("", "0")

# Attributes a name travels with when one node stands in for another (replace_uses).
_CARRIED = ("name", "hint", "adjoint_of", "tangent_of")
# An adjoint of one of these, applied to an argument, is that argument's gradient when
# it has the argument's shape and dtype: named d_<argument> (a bias's d_c1b, not d_reshape_3)
_PASS_THROUGH = ("reshape", "astype", "broadcast_to")


@dataclass(slots=True, eq=False)
class Node(Mapping):
    """One operation of the IR.

    Attributes
    ----------
    op : str
        The primitive's name, or ``"input"`` / ``"const"``.
    args : tuple of int
        Argument node ids, in argument order.
    aval : Aval
        Shape, dtype and weak-scalar flag of the result.
    params : dict
        Static parameters of the primitive (axis, shape, ...).
    name : str or None
        The user's variable name, where known.
    where : str or None
        ``"file.py:LINE"`` of the user's line that made it.
    value : object
        A constant's value (``op == "const"``) or a closed-over array's value at trace time.
    hint : str or None
        A name suggested by a composite (``sigmoid``) when the user gave none.
    section : str or None
        ``"forward"`` or ``"backward"``.
    grad_of : int or None
        For a backward node, the forward node whose rule built it.
    adjoint_of : int or None
        For an adjoint, the forward value it is the derivative with respect to.
    tangent_of : int or None
        For a tangent (forward mode, section ``"tangent"``), the value it is the tangent of.
    scope : str or None
        The ``graphc.scope`` path it was made in.
    rewrite : str or None
        The stable rewrite (``rewrites.py``) that made it.
    closure : str or None
        For an input read from a closed-over or global array: the keyword it is passed as.
    recompute : bool
        A backward node recomputing a forward value of a ``graphc.checkpoint`` function
        (rematerialization) instead of reading it kept from the forward pass.
    bodies : tuple of Graph
        Sub-graphs of a structured control-flow node (a loop's body, a branch of an
        ``if``; see :data:`SUBGRAPH_OPS`); empty for every other node.

    A node also reads as a read-only mapping (``node["op"]``, ``node["shape"]``), the
    attribute view of ``graph.nx`` that the public contract promises.
    """

    op: str = ""
    args: tuple = ()
    aval: Aval | None = None
    params: dict = field(default_factory=dict)
    name: str | None = None
    where: str | None = None
    value: Any = None
    hint: str | None = None
    section: str | None = None
    grad_of: int | None = None
    adjoint_of: int | None = None
    tangent_of: int | None = None
    scope: str | None = None
    rewrite: str | None = None
    closure: str | None = None
    recompute: bool = False
    bodies: tuple = ()

    @property
    def shape(self) -> tuple:
        return self.aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self.aval.dtype

    @property
    def weak(self) -> bool:
        return self.aval.weak

    # Identity, not content: two equal-looking nodes are still two operations.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    # --- read-only mapping view (networkx's node attribute dict) ---------------
    def __getitem__(self, key):
        if _STRICT:
            _refuse_internal_mapping_read(key)
        if key in _KEYS:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(_KEYS)

    def __len__(self):
        return len(_KEYS)

    def update(self, attrs=(), **kw):
        """Set attributes (networkx fills a fresh node through this)."""
        for k, v in dict(attrs, **kw).items():
            if k in ("shape", "dtype", "weak"):
                raise TypeError("set a node's aval, not its shape/dtype/weak")
            setattr(self, k, v)

    def copy(self) -> "Node":
        return replace(self, params=dict(self.params),
                       bodies=tuple(b.copy() for b in self.bodies))


# GRAPHC_STRICT_NODES=1: package code reading a node as a mapping is a bug (tests set it).
_STRICT = os.environ.get("GRAPHC_STRICT_NODES", "") not in ("", "0")


def _refuse_internal_mapping_read(key):
    import sys
    frame = sys._getframe(2)
    caller = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    pkg = os.path.dirname(os.path.abspath(__file__))
    if os.path.abspath(frame.f_code.co_filename).startswith(pkg + os.sep):
        raise AssertionError(f"graphc reads node[{key!r}] in {caller}: use node.{key}")


_KEYS = tuple(f.name for f in fields(Node)) + ("shape", "dtype", "weak")


class _NodeGraph(nx.MultiDiGraph):
    node_attr_dict_factory = Node


def _networkx(graph) -> _NodeGraph:
    """The networkx view of ``graph``: its Node objects as the node attribute dicts
    (shared: a node's attributes read the same either way), one edge per argument."""
    g = _NodeGraph()
    nodes, succ, pred = graph._nodes, g._succ, g._pred
    for nid, node in nodes.items():
        succ[nid], pred[nid], g._node[nid] = {}, {}, node
    for nid, node in nodes.items():
        for i, a in enumerate(node.args):
            if a in succ:             # (what networkx does to the edges of a removed node)
                keys = succ[a].get(nid)
                if keys is None:
                    keys = succ[a][nid] = pred[nid][a] = {}
                keys[i] = {"argnum": i}
    return g


class Graph:
    """A computation graph: inputs, program-ordered nodes, outputs.

    Attributes
    ----------
    nx : networkx.MultiDiGraph
        The IR as a networkx graph, built when first read (and again after graphc
        changes the graph).  Each node's attribute mapping is its :class:`Node`
        (``graph.nx.nodes[n]["op"]``, read-only); edges carry ``argnum``.
    inputs, outputs : list of int
        Node ids, in order.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> g = graphc.trace(lambda x: np.exp(x) * 2.0, np.ones(3))
    >>> [g[n].op for n in g.order()]
    ['input', 'exp', 'const', 'mul']
    """

    def __init__(self, fn_name: str = "f"):
        # {nid: Node} in program order; {nid: {user nid: argument slots that read nid}}
        # (no networkx graph, 3 dicts per node and 2 per edge, until ``nx`` is read)
        self._nodes: dict[int, Node] = {}
        self._users: dict[int, dict] = {}
        self._nx = None
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.fn_name = fn_name
        self.signature = None     # signature.Signature: how args/results map to leaves
        self._next = 0

    @property
    def nx(self) -> nx.MultiDiGraph:
        g = self._nx
        if g is None:
            g = self._nx = _networkx(self)
        return g

    # --- building ------------------------------------------------------------
    def add_node(self, op: str, args=(), aval: Aval | None = None, *, params=None,
                 name=None, where=None, **attrs) -> int:
        if not (type(aval) is Aval and type(aval.shape) is tuple
                and isinstance(aval.dtype, np.dtype)):   # (an Aval is frozen: share it)
            aval = Aval(tuple(aval.shape), np.dtype(aval.dtype), aval.weak)
        return self.insert(Node(op, tuple(args), aval, dict(params) if params else {}, name, where, **attrs))

    def insert(self, node: Node) -> int:
        """Add a made ``node`` (canonical aval, tuple args, own params: graphc/tracing.py)."""
        nid, users, args = self._next, self._users, node.args
        for a in args:
            u = users.get(a)
            if u is None:
                for b in args:
                    users.get(b, {}).pop(nid, None)
                raise KeyError(f"node {a} (an argument of a new {node.op!r} node) is not in the graph")
            u[nid] = u.get(nid, 0) + 1
        self._next, self._nodes[nid], users[nid], self._nx = nid + 1, node, {}, None
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
        """Replace a node's arguments, keeping the use counts in step."""
        args = tuple(args)
        users = self._users
        for a in args:
            if a not in users:
                raise KeyError(f"node {a} (a new argument of node {nid}) is not in the graph")
        node = self._nodes[nid]
        for a in node.args:
            u = users.get(a)          # (None: a node removed before its users)
            if u is not None and nid in u:
                if u[nid] > 1:
                    u[nid] -= 1
                else:
                    del u[nid]
        node.args = args
        for a in args:
            u = users[a]
            u[nid] = u.get(nid, 0) + 1
        self._nx = None

    def replace_uses(self, old: int, new: int, carry=_CARRIED) -> None:
        """Point every use of ``old`` (and the outputs) at ``new``.

        The user's ``name`` (and a composite's ``hint``) moves to ``new`` when
        ``new`` has none and is not an input (an input keeps the user's parameter
        name); so does ``adjoint_of`` (``d_<name>``).
        ``carry`` names the attributes that move; pass ``()`` for none.
        """
        src, dst = self[old], self[new]
        if dst.op != "input":
            for attr in carry:
                if getattr(dst, attr) is None and getattr(src, attr) is not None:
                    setattr(dst, attr, getattr(src, attr))
        nodes = self._nodes
        for user in self.users(old):
            self.set_args(user, tuple([new if a == old else a for a in nodes[user].args]))
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_nodes(self, nids) -> None:
        """Remove nodes (ids not in the graph are skipped, as networkx does)."""
        nodes, users = self._nodes, self._users
        for n in nids:
            node = nodes.pop(n, None)
            if node is None:
                continue
            for a in node.args:
                u = users.get(a)
                if u is not None:
                    u.pop(n, None)
            del users[n]
        self._nx = None

    def node_map(self) -> Mapping:
        """``{nid: Node}`` of the live nodes (not in program order): for passes that read
        many nodes (``nid in m``, ``m[nid]``); never modify it, use the methods above."""
        return self._nodes

    # --- reading -------------------------------------------------------------
    def __getitem__(self, nid: int) -> Node:
        return self._nodes[nid]

    def __contains__(self, nid) -> bool:
        try:
            return nid in self._nodes
        except TypeError:             # (unhashable)
            return False

    def __iter__(self):
        """Node ids in program order."""
        return iter(self.order())

    def nodes(self):
        """``(nid, node)`` pairs in program order."""
        nodes = self._nodes
        return [(n, nodes[n]) for n in self.order()]

    def aval(self, nid: int) -> Aval:
        return self[nid].aval

    def order(self) -> list[int]:
        """Node ids in program order."""
        return sorted(self._nodes)

    def users(self, nid: int) -> list[int]:
        """Distinct nodes that use ``nid``, in program order."""
        return sorted(self._users[nid])

    def ancestors(self, nid: int) -> set:
        """Every node ``nid`` depends on (not itself)."""
        # (nx.ancestors' breadth-first walk, in its order: the distinct arguments of
        # each node in argument order)
        nodes = self._nodes
        seen, out, queue = {nid}, set(), deque((nid,))
        while queue:
            for a in nodes[queue.popleft()].args:
                if a not in seen:
                    seen.add(a)
                    out.add(a)
                    queue.append(a)
        return out

    def use_counts(self) -> dict:
        """``{nid: n_uses(nid)}`` for every node, in one read of the adjacency."""
        return {n: sum(u.values()) for n, u in self._users.items()}

    def n_uses(self, nid: int) -> int:
        """How many argument slots read ``nid`` (``x * x`` counts twice)."""
        return sum(self._users[nid].values())

    def display_name(self, nid: int, names: Mapping | None = None) -> str:
        """The name a node would like, before uniquing: one rule for code, trace and drawings.

        The user's name; else ``d_<name of its primal>`` for an adjoint and
        ``dot_<name of its primal>`` for a tangent (``names``, when given, holds the
        final names already chosen for earlier nodes, so ``d_x_1`` follows ``x_1``);
        else a composite's hint; else the op.  The adjoint of an unnamed reshape,
        ``astype`` or ``broadcast_to`` of an argument used only there, with the
        argument's shape and dtype, is the argument's gradient: ``d_<argument>``.
        """
        return self._display_name(nid, names, set())

    def _display_name(self, nid, names, seen):
        node = self[nid]
        if node.name:
            return node.name
        primal = node.adjoint_of
        # (CSE can merge an adjoint into a forward value whose own adjoint is the first:
        # x*x is d(x*x*x)'s adjoint and vice versa; such a cycle names by op)
        if primal is not None and primal in self._nodes and node.op != "input" \
                and primal not in seen:
            seen.add(nid)
            primal = self._argument_of(nid, primal)
            base = (names or {}).get(primal) or self._display_name(primal, names, seen)
            return "d_" + sanitize(base)
        primal = node.tangent_of
        if primal is not None and primal in self._nodes and node.op != "input":
            base = (names or {}).get(primal) or self.display_name(primal, names)
            return "dot_" + sanitize(base)
        return node.hint or node.op

    def _argument_of(self, adjoint, primal):
        """The argument whose gradient ``adjoint`` is, when ``primal`` only reshapes, casts
        or broadcasts it (see :meth:`display_name`); else ``primal``."""
        p = self[primal]
        if p.name or p.op not in _PASS_THROUGH or not p.args:
            return primal
        arg = p.args[0]
        a, adj = self[arg], self[adjoint]
        if a.op != "input" or self.n_uses(arg) != 1 or adj.shape != a.shape \
                or adj.dtype != a.dtype:
            return primal
        return arg

    def copy(self) -> "Graph":
        g = Graph(self.fn_name)
        for nid, node in self.nodes():
            g._nodes[nid] = node.copy()
            g._users[nid] = dict(self._users[nid])
        g.inputs, g.outputs = list(self.inputs), list(self.outputs)
        g.signature, g._next = self.signature, self._next
        return g

    def __len__(self) -> int:
        return len(self._nodes)

    def check(self) -> None:
        """Check the invariants every pass relies on; raises AssertionError naming the node."""
        ins = {}                # {nid: {argument: slots}}, from the use counts
        for a, u in self._users.items():
            for v, k in u.items():
                ins.setdefault(v, {})[a] = k
        for nid, node in self.nodes():
            assert isinstance(node, Node), f"node {nid}: not a Node"
            assert isinstance(node.aval, Aval) and isinstance(node.aval.dtype, np.dtype), \
                f"node {nid}: aval {node.aval!r}"
            assert isinstance(node.params, dict), f"node {nid}: params {node.params!r}"
            assert ins.get(nid, {}) == {a: node.args.count(a) for a in node.args}, \
                f"node {nid}: use counts != args"
            assert all(a < nid for a in node.args), f"node {nid}: not in program order"
            assert node.op in ("input", "const") or node.op in REGISTRY \
                or node.op in SUBGRAPH_OPS, f"node {nid}: unknown op {node.op!r}"
            for body in node.bodies:       # sub-graphs keep the same invariants
                try:
                    body.check()
                except AssertionError as e:
                    raise AssertionError(f"node {nid} ({node.op}) body: {e}") from None
            assert node.section in (None, "forward", "backward", "tangent"), \
                f"node {nid}: section"
            for ref in (node.grad_of, node.adjoint_of, node.tangent_of):
                assert ref is None or isinstance(ref, int), f"node {nid}: reference {ref!r}"
        for n, u in self._users.items():
            assert n in self._nodes and all(v in self._nodes for v in u), \
                f"node {n}: users {u} not in the graph"
        for o in self.outputs + self.inputs:
            assert o in self._nodes, f"input/output {o} missing"

    def debug_check(self, after: str) -> "Graph":
        """``check()`` when GRAPHC_DEBUG is set (after every pass); returns the graph."""
        if DEBUG:
            try:
                self.check()
            except AssertionError as e:
                raise AssertionError(f"graph invalid after {after}: {e}") from None
        return self

    # --- products (installed by the modules that make them; see _install) ----
    def cost(self):
        """FLOPs and bytes of the graph (see :class:`graphc.cost.Cost`)."""
        return _PRODUCTS["cost"](self)

    def __str__(self) -> str:
        return _PRODUCTS["text"](self)

    def __repr__(self) -> str:
        ins = ", ".join(f"{self[i].name}: {type_str(self[i].shape, self[i].dtype)}"
                        for i in self.inputs)
        return f"<graphc.Graph {self.fn_name}({ins}): {len(self)} nodes>"

    def to_dot(self, **kwargs):
        return _PRODUCTS["to_dot"](self, **kwargs)

    def render(self, path, **kwargs):
        return _PRODUCTS["render"](self, path, **kwargs)

    def _repr_svg_(self):
        return _PRODUCTS["svg"](self)       # big graphs collapsed by scope (graphc/drawing.py)


# Structured control-flow ops (graphc/control): {op: handler}.  Their nodes hold
# sub-graphs in ``Node.bodies``; the handlers (installed from above) emit, evaluate,
# differentiate and cost them.  Not primitives: not in REGISTRY.
SUBGRAPH_OPS: dict = {}


# The graph's products (text, drawing, cost) live in the modules above the IR; they
# register here at import, so the IR never imports upward.  graphc/__init__.py imports
# them all, so a Graph reachable by a user always has them.
_PRODUCTS: dict = {}


def install_product(name: str, fn) -> None:
    """Register ``fn`` as the implementation of a Graph product (``text``, ``cost``, ...)."""
    _PRODUCTS[name] = fn
