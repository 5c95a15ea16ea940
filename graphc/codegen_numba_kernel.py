"""The text of one ``@numba.njit`` kernel of the ``"numba"`` target.

A kernel is one loop over the rows of its group (:mod:`graphc.numba_fuse`); inside
it, each *block* of consecutive members with the same dimensions after the rows
(those that are not 1) is one loop nest over them, with one scalar temporary per
value.  A value read by a later block, or at other positions than the loop's (a
product's operand), is kept: in the kernel's output array when the caller reads it
too, else in one row of scratch (a scalar when the row holds one number).

Small products are written as loops here, so that a whole layer of a small network
is one kernel: ``rows @ W`` with ``W`` at most :data:`~graphc.numba_fuse.TINY` by
``TINY`` (each element a short sum, in the order BLAS would add it without FMA),
and ``rows.T @ rows`` with a result of at most ``TINY * TINY`` elements (accumulated
over the rows, like the column sums).  Calling BLAS for them costs microseconds of
overhead for a few hundred multiplications; larger products stay BLAS calls.

Sums over the rows (and ``rows.T @ rows``) accumulate in float64 and are rounded to
the result's dtype at the end: within NumPy's own summation error of its result.
The caller allocates the outputs and passes them in; the kernel returns nothing
(numba boxes each returned array, 0.3-0.5 µs apiece).  An output may instead be
written in place into an input that the kernel alone reads (bias + ReLU on the GEMM
result).

Each fused operation's scalar expression, and the names a select reads, come from
:mod:`graphc.numba_member`.
"""
from __future__ import annotations

import numpy as np

from .naming import Namespace, sanitize
from .numba_fuse import _core, kind, scalar_form
from .numba_member import literal_input, member_text, named_operands, number_text, operand_dtype
from .precedence import prec_of
from .primitive import type_str
from .codegen import _forward_text
from .source_comments import source_text, where_short, with_comment

__all__ = ["DECORATOR", "kernel_text", "blocks_of"]

DECORATOR = '@numba.njit(cache=False, fastmath=False, error_model="numpy")'
_LOOP = ("j", "k", "l", "m", "q", "r") + tuple(f"j{d}" for d in range(6, 32))
_POINTWISE = ("elementwise", "reshape", "sum")


_AFTER = ("sum", "matmul_t", "total")      # complete only after the loop over the rows


def _key(g, m):
    k = kind(g, m)
    if k == "sum":
        return _core(g[g[m].args[0]].shape)
    if k == "matmul_t":
        return _core(g[g[m].args[1]].shape)
    return _core(g[m].shape)


def _pointwise(g, u, a) -> bool:
    """Member ``u`` reads member ``a`` at its own loop position (no other element)."""
    k = kind(g, u)
    if k in _POINTWISE:
        return _core(g[a].shape) == _key(g, u)
    if k == "matmul_t":
        return a == g[u].args[1]
    return k == "matmul" and g[a].shape[1] == 1


def blocks_of(g, grp) -> dict:
    """{member: block number}: consecutive members of one loop over the dimensions
    after the rows; a member that reads one of the block's values at another position
    starts a new block (the whole row of it is then computed)."""
    block, cur, key, n = {}, set(), None, -1
    deferred: dict = {}
    for m in grp.members:
        if kind(g, m) in ("transpose", "total"):
            continue
        if _own_loop(g, m, cur):                # (nothing in the loop reads a sum)
            deferred.setdefault((_key(g, m), _total(g, m)), []).append(m)
            continue
        reads = [a for a in _reads(g, m) if a in cur]
        if _key(g, m) != key or any(not _pointwise(g, m, a) for a in reads):
            n, key, cur = n + 1, _key(g, m), set()
        block[m] = n
        cur.add(m)
    for n, members in enumerate(deferred.values(), n + 1):
        block.update(dict.fromkeys(members, n))
    return block


#: A sum over the rows of float32 values with at least this many per row gets a loop of
#: its own, after the loop computing the row (which it reads back from the cache).
SPLIT_SUM = 16


def _own_loop(g, m, cur) -> bool:
    """Sum member ``m`` adds a float32 row of the current block into float64 sums: it goes
    into a loop of its own after the row's other loops.  In the same loop, LLVM vectorizes
    the whole loop 4 wide (the width of the float64 adds), or not at all when the sum is
    a total (an add chain, in order); apart, the float32 loop runs 8 wide and the column
    sums 4 wide, 1.7x the elements per second when the data are in the cache (the same
    additions in the same order: the same bits)."""
    if kind(g, m) != "sum":
        return False
    (a,) = g[m].args
    return a in cur and g[a].dtype == np.float32 and int(np.prod(_core(g[a].shape))) >= SPLIT_SUM


def _total(g, m) -> bool:
    """Sum member ``m`` adds a whole row into one number (a chain LLVM keeps scalar):
    apart from the column sums, which vectorize."""
    return set(range(1, len(g[g[m].args[0]].shape))) <= set(g[m].params["axis"])


def _reads(g, m):
    """The values member ``m`` reads (a ``matmul_t``'s first one through its transpose)."""
    args = list(g[m].args)
    if kind(g, m) == "matmul_t":
        args[0] = g[args[0]].args[0]
    return args


class _Kernel:
    """The state of one kernel's text: names, where each value is kept, lines."""

    def __init__(self, em, grp, ins, outs, donors):
        g = self.g = em.g
        self.em, self.grp, self.outs, self.donors = em, grp, outs, donors
        self.ns = Namespace()
        for name in ("i", "p") + _LOOP:
            self.ns.reserve(name)
        self.params = {a: self.ns.new(sanitize(em.ref(a))) for a in ins if not literal_input(g, a)}
        self.block = blocks_of(g, grp)
        self.totals = [m for m in grp.members if kind(g, m) == "total"]
        self.users = {m: [g.users(u)[0] if kind(g, u) == "transpose" and u in grp.members else u
                          for u in g.users(m)] for m in self.block}
        self.users = {m: [u for u in us if u in self.block] for m, us in self.users.items()}
        self.out = {m: self.params[donors[m]] if m in donors else self.ns.new(f"{em.name[m]}_out")
                    for m in outs}
        self.kept = {m for m in self.block if m not in outs and kind(g, m) not in _AFTER
                     and any(self.block[u] != self.block[m] or not _pointwise(g, u, m)
                             for u in self.users[m])}
        self.row = {m: self.ns.new(f"{em.name.get(m) or g.display_name(m, em.name)}_row")
                    for m in self.kept if _core(g[m].shape)}
        self.scalar: dict = {}                      # member -> (text, prec) in its block

    # --- reading values --------------------------------------------------------------
    def dim_vars(self, shape, loop):
        """The index of each dimension of a member-shaped value: rows ``i``, 1 -> ``0``."""
        it = iter(loop)
        return ["i"] + ["0" if d == 1 else next(it) for d in tuple(shape)[1:]]

    def read(self, a, core, here):
        """Member or input ``a`` at the position ``core`` (its dimensions that are not 1)."""
        g = self.g
        if a in self.block and here and self.block.get(here) == self.block[a] \
                and a in self.scalar and _pointwise(g, here, a):
            return self.scalar[a]
        if a in self.row:
            return f"{self.row[a]}[{', '.join(core)}]", 100
        if a in self.block and a not in self.outs:
            return self.scalar[a]                   # one number per row, kept in a local
        if literal_input(g, a):                     # a one-element constant: its number
            return number_text(g[a].value, operand_dtype(g, a, here) if here else g[a].dtype), 100
        name = self.out.get(a) or self.params[a]
        return f"{name}[{', '.join(self.dim_vars(g[a].shape, core))}]", 100

    def operand(self, a, u, loop):
        """Operand ``a`` of elementwise member ``u`` inside ``u``'s loop ``loop``."""
        g = self.g
        node, out = g[a], tuple(g[u].shape)
        if literal_input(g, a):
            return number_text(node.value, operand_dtype(g, a, u)), 100
        if a in self.scalar and len(node.shape) == 0:
            return self.scalar[a]                   # a sum or total, after the loop
        if len(node.shape) == 0:                    # a Python float meets float32 as float32
            weak32 = node.weak and operand_dtype(g, a, u) == np.float32
            return (f"np.float32({self.params[a]})" if weak32 else self.params[a]), 100
        uvars = self.dim_vars(out, loop)
        if a in self.block or kind(g, u) == "reshape":
            core = [v for v, d in zip(uvars[1:], node.shape[1:]) if d != 1] \
                if kind(g, u) != "reshape" else list(loop)
            return self.read(a, core, u)
        lead = len(out) - len(node.shape)
        idx = ["0" if s == 1 else uvars[lead + k] for k, s in enumerate(node.shape)]
        return f"{self.params[a]}[{', '.join(idx)}]", 100

    # --- one member ------------------------------------------------------------------
    def member(self, m, loop):
        """The lines computing member ``m`` inside its block's loop ``loop``."""
        g, k = self.g, kind(self.g, m)
        if k == "sum":
            return self.accumulate(m, loop)
        if k == "matmul_t":
            return self.accumulate_product(m, loop)
        if k == "matmul":
            return self.product(m, loop)
        ref = {a: self.operand(a, m, loop) for a in g[m].args}
        lines = named_operands(g, m, ref, self.ns)
        text = ref[g[m].args[0]][0] if k == "reshape" else member_text(g, m, ref)
        if self.inlined(m):
            self.scalar[m] = (text, prec_of(text))
            return lines
        return lines + [self.assign(m, text)]

    def assign(self, m, text, op="="):
        name = self.scalar[m][0] if m in self.scalar else self.ns.new(self.value_name(m))
        self.scalar[m] = (name, 100)
        return with_comment(f"{name} {op} {text}", type_str((), self.g[m].dtype))

    def value_name(self, m):
        return sanitize(self.em.name.get(m) or self.g.display_name(m, self.em.name))

    def inlined(self, m):
        """Used once, by a member of its block reading it at its position, not kept."""
        g = self.g
        if m in self.outs or m in self.kept or g[m].name or g.n_uses(m) != 1:
            return False
        user = self.users[m][0] if self.users[m] else None
        if user is None or kind(g, user) not in ("elementwise", "reshape", "sum") \
                or self.block[user] != self.block[m]:
            return False
        if kind(g, user) != "elementwise":
            return True
        slot = g[user].args.index(m)            # a template reading its slot twice: a name
        return scalar_form(g[user].op).count("{%d}" % slot) == 1

    def product(self, m, loop):
        """``rows @ W``, W tiny: one short sum per element (BLAS's order, no FMA)."""
        g = self.g
        lhs, rhs = g[m].args
        n_in = g[lhs].shape[1]
        col = loop[0] if g[m].shape[1] != 1 else "0"
        p = "p"
        zero = number_text(0.0, g[m].dtype)
        if literal_input(g, rhs):               # a 1x1 constant
            w = number_text(g[rhs].value, operand_dtype(g, rhs, m))
        elif rhs in self.grp.members:           # W.T read in place: W[j, p]
            w = f"{self.params[g[rhs].args[0]]}[{col}, {p}]"
        else:
            w = f"{self.params[rhs]}[{p}, {col}]"
        term = f"{self.read(lhs, [p] if n_in != 1 else [], m)[0]} * {w}"
        name = self.ns.new(self.value_name(m))
        self.scalar[m] = (name, 100)
        return [f"{name} = {zero}", f"for {p} in range({n_in}):", f"    {name} += {term}"]

    def accumulator(self, m):
        """The float64 array a reduction adds into, created before the loop and copied
        into the output (rounded to its dtype) after it."""
        acc = self.ns.new(f"{self.value_name(m)}_acc")
        shape = tuple(self.g[m].shape) or (1,)
        self.setup.append(f"{acc} = np.zeros({shape!r}, np.float64)")
        if m in self.out:                       # (element by element: `out[...] = acc`
            self.finish += _copy_lines(self.out[m], acc, shape)     # compiles for seconds)
        total = f"{acc}[0]" if self.g[m].dtype == np.float64 else \
            f"np.{self.g[m].dtype.name}({acc}[0])"
        self.scalar[m] = (total, 100)           # (read by a total after the loop, rounded)
        return acc

    def accumulate(self, m, loop):
        """A sum over the rows (and maybe more dimensions): added in float64."""
        g = self.g
        (a,) = g[m].args
        axis, keep = set(g[m].params["axis"]), g[m].params.get("keepdims", False)
        acc = self.accumulator(m)
        avars = self.dim_vars(g[a].shape, loop)
        idx = [("0" if keep else None) if d in axis else v for d, v in enumerate(avars)]
        idx = [v for v in idx if v is not None] or ["0"]
        return [f"{acc}[{', '.join(idx)}] += {self.read(a, list(loop), m)[0]}"]

    def accumulate_product(self, m, loop):
        """``rows_a.T @ rows_b``, tiny: each row's outer product added in float64."""
        g = self.g
        t, b = g[m].args
        a = g[t].args[0]
        acc = self.accumulator(m)
        col = loop[0] if g[m].shape[1] != 1 else "0"
        bval = self.read(b, list(loop), m)[0]
        if g[m].shape[0] == 1:
            return [f"{acc}[0, {col}] += {self.read(a, [], m)[0]} * {bval}"]
        p = "p"
        return [f"for {p} in range({g[m].shape[0]}):",
                f"    {acc}[{p}, {col}] += {self.read(a, [p], m)[0]} * {bval}"]

    # --- the kernel ------------------------------------------------------------------
    def text(self, kname):
        g = self.g
        self.setup: list = []
        self.finish: list = []
        first = g[self.grp.members[0]]
        self._last = (first.section, first.where or first.grad_of)   # (the header says it)
        body, by_block = [], {}
        for m, b in self.block.items():
            by_block.setdefault(b, []).append(m)
        for b, members in sorted(by_block.items()):
            core = _key(g, members[0])
            loop = list(_LOOP[:len(core)])
            lines = []
            for m in members:
                code = self.member(m, loop)
                lines += self.comment(m) + code if code else []
            lines += self.stores(members, loop)
            ind = ""
            for d, v in enumerate(loop):
                body.append(f"{ind}for {v} in range({core[d]}):")
                ind += "    "
            body += [ind + line for line in lines]
        return self.head(kname) + ["    " + line for line in self.scratch() + self.setup] \
            + [f"    for i in range({self.grp.rows}):"] + ["        " + line for line in body] \
            + ["    " + line for line in self.finish + self.epilogue()]

    def comment(self, m):
        """``# grad of: <line>`` where the backward pass of another line starts."""
        node = self.g[m]
        block = (node.section, node.where or node.grad_of)
        if node.section != "backward" or block == self._last:
            self._last = block
            return []
        self._last = block
        head = source_text(node.where) or _forward_text(self.em, node.grad_of)
        return [f"# grad of: {head}"]

    def epilogue(self):
        """The totals: numbers computed from the sums once the loop is done."""
        lines = []
        for m in self.totals:
            ref = {a: self.operand(a, m, []) for a in self.g[m].args}
            lines += named_operands(self.g, m, ref, self.ns)
            text = member_text(self.g, m, ref)
            if m in self.out:
                lines.append(f"{self.out[m]}[0] = {text}")
            self.scalar[m] = (text, prec_of(text))
        return lines

    def stores(self, members, loop):
        g, lines = self.g, []
        for m in members:
            if m in self.outs and kind(g, m) not in _AFTER:
                idx = ", ".join(self.dim_vars(g[m].shape, loop))
                lines.append(f"{self.out[m]}[{idx}] = {self.scalar[m][0]}")
            elif m in self.row:
                lines.append(f"{self.row[m]}[{', '.join(loop)}] = {self.scalar[m][0]}")
        return lines

    def scratch(self):
        g = self.g
        return [f"{name} = np.empty({_core(g[m].shape)!r}, np.{g[m].dtype.name})"
                for m, name in self.row.items()]

    def head(self, kname):
        g, grp = self.g, self.grp
        seen = []
        for m in grp.members:
            line = source_text(g[m].where)
            if line and line not in seen:
                seen.append(line)
        outs = [self.out[m] for m in self.outs if m not in self.donors]
        lines = [DECORATOR, f"def {kname}({', '.join(list(self.params.values()) + outs)}):"]
        return lines + ([f"    # fuses {where_short(g[grp.members[0]].where) or 'the lines'}: {s}"
                         if i == 0 else f"    #       {s}" for i, s in enumerate(seen)]
                        or [f"    # fuses {len(grp.members)} operations"])


def kernel_text(em, kname, grp, ins, outs, donors):
    """The lines of one ``@numba.njit`` kernel ``def kname(inputs, outputs)``: it writes
    into the arrays of ``outs`` (a reduction over all dimensions into a 1-element array)
    and returns nothing (boxing a returned array costs more than the caller's
    ``np.empty``); ``donors`` maps an output to the input whose array it is written into."""
    return _Kernel(em, grp, ins, outs, donors).text(kname)


def _copy_lines(dst, src, shape):
    """``dst[...] = src`` as loops (numba compiles the array assignment for seconds)."""
    idx = list(_LOOP[:len(shape)])
    lines = [f"{'    ' * d}for {v} in range({n}):" for d, (v, n) in enumerate(zip(idx, shape))]
    sub = ", ".join(idx)
    return lines + ["    " * len(shape) + f"{dst}[{sub}] = {src}[{sub}]"]
