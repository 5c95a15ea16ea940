"""The primitive record and its registry.

A primitive is defined once, in one record, holding everything graphc knows
about it: the shape/dtype rule, the NumPy emission used by generated code (and,
compiled from that same text, by eager evaluation), the vector-Jacobian
product written in graphc's own ops, the SymPy semantics, a drawing label and
a FLOP count.  Adding an op means adding one record; the test-suite walks
:data:`REGISTRY`, so a new primitive cannot skip the gradient checks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .precedence import ATOM, wrap

__all__ = ["Aval", "Primitive", "REGISTRY", "primitive", "Emit", "NOT_DIFFERENTIABLE"]


@dataclass(frozen=True)
class Aval:
    """Abstract value: what graphc knows about an array while tracing.

    ``weak`` marks a Python scalar (NEP 50): it takes the dtype of the array
    it meets instead of promoting it (``x32 * 2.0`` stays float32).
    """

    shape: tuple
    dtype: np.dtype
    weak: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def short(self) -> str:
        """``f32[64,10]`` style text used in comments and drawings."""
        return type_str(self.shape, self.dtype)

    def np_proxy(self):
        """What ``np.result_type`` should see for this value (NEP 50)."""
        if self.weak:
            return {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}[self.dtype.kind]
        return self.dtype


_KIND = {"f": "f", "i": "i", "u": "u", "b": "bool", "c": "c"}


def type_str(shape, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        prefix = "bool"
    else:
        prefix = f"{_KIND.get(dtype.kind, dtype.kind)}{dtype.itemsize * 8}"
    return f"{prefix}[{','.join(str(d) for d in shape)}]"


class Emit:
    """Context handed to a callable emitter.

    ``args`` are the argument expressions (already parenthesized for a call
    slot), ``out`` the name the result is bound to, ``avals`` the input avals
    and ``aval`` the output aval.  A callable emitter returns either one
    expression (str) or a list of statements that assign ``out``.
    """

    def __init__(self, args, out, avals, aval, atoms):
        self.args = args
        self.out = out
        self.avals = avals
        self.aval = aval
        self.atoms = atoms  # args wrapped so they can take `.attr` / `[i]`


class _NotDifferentiable:
    """The type of :data:`NOT_DIFFERENTIABLE` (one instance, a readable repr)."""

    def __repr__(self):
        return "NOT_DIFFERENTIABLE"


#: ``vjp=NOT_DIFFERENTIABLE`` declares that a primitive has no gradient (comparisons,
#: integer and boolean ops, piecewise-constant selections).  ``vjp=None`` on a
#: primitive reached by a gradient is a missing rule: autodiff raises ``GradError``.
NOT_DIFFERENTIABLE = _NotDifferentiable()


@dataclass(frozen=True, eq=False, kw_only=True)
class Primitive:
    """Everything about one primitive operation.

    Built with keyword arguments only (through :func:`primitive`).

    Attributes
    ----------
    name : str
        The ``op`` attribute of IR nodes (NumPy's name where it has one).
    shape : callable
        ``(*in_avals, **params) -> Aval``; raises ``ShapeError`` on bad input.
    numpy : str or callable
        Emission.  A template such as ``"np.exp({0})"`` or ``"{0} * {1}"``
        (params are available by name, e.g. ``{axis}``), or a callable
        ``(e: Emit, **params) -> str | list[str]``.
    prec : int
        Python precedence of the emitted expression (100 = atom/call); used
        to parenthesize when codegen inlines one expression into another.
    vjp : callable, NOT_DIFFERENTIABLE or None
        ``(ct, *inputs, out=..., **params) -> tuple`` of cotangents, one per
        input (None for an input that gets no gradient), built from graphc ops.
        :data:`NOT_DIFFERENTIABLE` declares that the primitive has no gradient
        (comparisons, integer ops); ``None`` (the default) means the rule is
        missing, and differentiating through the primitive is a ``GradError``.
    jvp : callable or None
        The forward-mode rule ``(tangents, *inputs, out=..., **params) -> tangent``:
        ``tangents`` holds one tangent per input (None where it is symbolically
        zero, never all None); the result is the output's tangent (None for zero),
        at the output's shape or one that broadcasts to it, built from graphc ops
        (:mod:`graphc.forward` calls it while tracing under ``graphc.jvp``).
    batch : callable or None
        The batching rule for ``vmap`` (the op on a batched axis).  Not used
        yet: reserved for the batching transform.
    shape_symbolic : callable or None
        The shape rule over symbolic dimensions.  Not used yet: reserved for
        shapes with symbolic sizes.
    sympy : callable or None
        Same math on SymPy scalars (``elementwise=True``) or on object arrays.
    sympy_at_point : bool
        The value is piecewise constant in the inputs (argmax) or a pure
        function of static data (the dropout mask): ``graphc.symbolic``
        evaluates it with NumPy at the numeric point of the check, which fixes
        the branch exactly as the generated code does, instead of using ``sympy``.
    logic_operands : bool
        The ``sympy`` rule takes boolean operands as logic values (True/False,
        SymPy relations); otherwise an elementwise rule sees them as the numbers
        0 and 1 (``ct * mask``).
    label : str
        Short text for drawings (``×``, ``exp``, ``σ``) and the op reference.
    label_detail : callable or None
        ``(params) -> str | None``: what the drawing adds after the label for
        these params (``Σ axis=1``, ``reshape (2, 3)``); see :meth:`label_text`.
    family : str
        Colour family for drawings: elementwise, reduce, shape, linalg, index, ...
    elementwise : bool
        The op maps elements to elements (its ``sympy`` rule is vectorized).
    flops : callable
        ``(out_aval, *in_avals, **params) -> int`` FLOPs, lecture's cost model.
    slots : tuple of int, optional
        Minimum precedence of each argument slot of a template; derived from
        the template when omitted.
    identities : tuple
        For binary ops, the identity element of each argument position
        (``mul``: ``(1, 1)``, ``sub``: ``(None, 0)``): ``x * 1`` is recorded as ``x``.
    never_inline_args : bool
        The emitter returns statements (which may use an argument twice), so
        codegen never inlines an argument expression into it.
    inplace_ufunc : str or None
        The NumPy ufunc that computes the op into an ``out=`` array
        (``"np.add"``): codegen may then write a large result into the buffer
        of an argument that dies at this statement.
    inplace_extra_args : tuple of str
        Arguments of ``inplace_ufunc`` after the node's own (relu: ``("0.0",)``).
    fresh_result : bool
        The result is always a new array that nothing else refers to (no
        view), so its buffer may be overwritten once it is dead.
    nonfinite_hint : str or None
        What to do when this op turns finite inputs into a NaN or an infinity
        (the hint of ``NonFiniteError`` under ``check_finite=True``).
    samples : callable or None
        ``(draw) -> list[Sample]`` (``graphc.ops._samples``; ``draw`` hands out
        seeded random arrays): the inputs, params and an independent NumPy
        reference the registry-driven tests check the op on.
    doc : str
        One line for the op reference (docs/ops.md).
    array_api : str, callable or None
        The emission for the ``"array-api"`` target (:mod:`graphc.codegen_xp`):
        a template against ``xp`` (``"xp.acos({0})"``; dtype params are spelled
        ``xp.float32``) or a callable like ``numpy``'s.  None: derived from a
        ``numpy`` template whose every call is a same-named standard function
        (``np.exp`` -> ``xp.exp``) or that is pure operators (``{0} + {1}``);
        otherwise the op has no array-API form (a clear error at compile time).
    scalar : str or None
        The op on Python floats (:mod:`graphc.codegen_scalar`): a template like
        ``numpy``'s with the same value as NumPy's float64 scalars wherever both are
        finite (``"math.exp({0})"``, ``"{0} / {1}"``); None: no such form.
    scalar_masks : tuple of int
        Argument positions where an infinity or a nan can give a finite result of the
        scalar form (``math.exp(-inf) == 0.0``, ``x / inf == 0.0``): the scalar code
        checks those values (elsewhere a non-finite argument gives a non-finite result).
    scalar_quiet : str or None
        Where ``scalar`` does not give NumPy's bits on this CPU (NumPy's own SIMD
        ``exp``, ``log``, ... on AVX-512), the scalar code calls NumPy's function on the
        Python float instead, under this condition on the arguments (``"{0} < 709.0"``):
        a range in which NumPy's function sets no floating-point flag but underflow, so
        it warns nothing that the fallback to NumPy's code would warn again.  Outside
        it, NumPy's code runs.  None: such an op keeps NumPy's code.
    """

    name: str
    shape: Callable[..., Aval]
    numpy: Any
    prec: int = 100
    vjp: Callable[..., tuple] | _NotDifferentiable | None = None
    jvp: Callable[..., Any] | None = None
    batch: Callable[..., Any] | None = None
    shape_symbolic: Callable[..., Any] | None = None
    sympy: Callable[..., Any] | None = None
    sympy_at_point: bool = False
    logic_operands: bool = False
    label: str | None = None
    label_detail: Callable[[dict], str | None] | None = None
    family: str = "elementwise"
    elementwise: bool = False
    flops: Callable[..., int] | None = None
    slots: tuple | None = None
    identities: tuple = ()
    never_inline_args: bool = False
    inplace_ufunc: str | None = None
    inplace_extra_args: tuple = ()
    fresh_result: bool = False
    nonfinite_hint: str | None = None
    samples: Callable[..., list] | None = None
    doc: str = ""
    array_api: Any = None
    scalar: str | None = None
    scalar_masks: tuple = ()
    scalar_quiet: str | None = None
    _impl_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __call__(self, *args, **params):
        return _HOOKS["bind"](self, args, params)

    def __repr__(self):
        return f"<primitive {self.name}>"

    def label_text(self, params: dict) -> str:
        """The drawing label of a node with ``params`` (``Σ axis=1``)."""
        label = self.label or self.name
        detail = self.label_detail(params) if self.label_detail is not None else None
        return f"{label} {detail}" if detail else label

    @property
    def differentiable(self) -> bool:
        """Whether the record has a gradient rule."""
        return self.vjp is not None and self.vjp is not NOT_DIFFERENTIABLE

    # --- emission --------------------------------------------------------
    def slot_prec(self, i: int, n_args: int, tmpl=None) -> int:
        """Minimum precedence an argument expression needs in slot ``i`` (of ``tmpl``,
        by default the NumPy emission)."""
        if tmpl is None:
            if self.slots is not None:
                return self.slots[min(i, len(self.slots) - 1)]
            tmpl = self.numpy
        if callable(tmpl):
            return 100
        key = (tmpl, i, self.prec)
        prec = _SLOT_PREC.get(key)
        if prec is None:              # (once per template and slot, not once per node)
            prec = _SLOT_PREC[key] = self._slot_prec(i, tmpl)
        return prec

    def slot_precs(self, n_args: int) -> list:
        """``[slot_prec(i, n_args) for each slot]`` of the NumPy emission (cached)."""
        precs = _SLOT_PRECS_N.get((self, n_args))
        if precs is None:
            precs = _SLOT_PRECS_N[self, n_args] = [self.slot_prec(i, n_args)
                                                    for i in range(n_args)]
        return precs

    def _slot_prec(self, i: int, tmpl: str) -> int:
        m = re.search(r"\{%d\}" % i, tmpl)
        if m is None:
            return 0
        after = tmpl[m.end():m.end() + 1]
        before = tmpl[:m.start()].rstrip()
        if after in (".", "["):
            return 100
        if before.endswith(("(", ",", "[")):
            return 0
        if m.start() == 0:
            return self.prec          # left operand of a left-assoc operator
        return self.prec + 1          # right operand (or operand of unary op)

    def emit(self, args, out, avals, aval, params, atoms=None) -> str | list:
        if callable(self.numpy):
            if atoms is None:
                atoms = [wrap(a, ATOM) for a in args]
            return self.numpy(Emit(args, out, avals, aval, atoms), **params)
        if not params:
            return self.numpy.format(*args)
        fmt_params = {k: _param_text(v) for k, v in params.items()}
        return self.numpy.format(*args, **fmt_params)

    # --- eager evaluation, compiled from the emission --------------------
    def impl(self, params: dict) -> Callable:
        """A NumPy function that computes this primitive with ``params``.

        Built from the same emission text the code generator writes, so eager
        evaluation and generated code cannot disagree.
        """
        key = _params_key(params)
        fn = self._impl_cache.get(key)
        if fn is None:
            fn = self._build_impl(params)
            if len(self._impl_cache) >= 64:   # params hold shapes: bounded, so no leak
                self._impl_cache.clear()
            self._impl_cache[key] = fn
        return fn

    def _build_impl(self, params):
        return _HOOKS["impl"](self, params)


def _param_text(v) -> str:
    """Text of a static param inside generated code."""
    if isinstance(v, np.dtype):
        return f"np.{v.name}"
    if isinstance(v, type) and issubclass(v, np.generic):
        return f"np.{np.dtype(v).name}"
    if not _is_plain(v):    # bind normalizes params; anything else is never spelled
        raise TypeError(f"refusing to write a parameter of type {type(v).__name__} into code")
    return repr(v)


def _is_plain(v) -> bool:
    t = type(v)
    if v is None or t in (bool, int, float):
        return True
    if t is str:
        return v in _PARAM_STRINGS
    if t in (tuple, list):
        return all(_is_plain(x) for x in v)
    if t is slice:
        return _is_plain((v.start, v.stop, v.step))
    return False


def _params_key(params: dict):
    if not params:
        return ()                     # (== _freeze({}): the common case of no params)
    return _freeze(params)


def _freeze(v):
    # (module level: a recursive closure made a garbage cycle per call, which the
    # collector then had to find among the objects of a large build)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, slice):
        return ("slice", v.start, v.stop, v.step)
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    return v


REGISTRY: dict[str, Primitive] = {}
_SLOT_PREC: dict = {}     # (template, slot, prec) -> Primitive.slot_prec's answer
_SLOT_PRECS_N: dict = {}  # (primitive, number of args) -> Primitive.slot_precs's answer


def primitive(**fields) -> Primitive:
    """Create and register a :class:`Primitive` (each name once)."""
    prim = Primitive(**fields)
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name!r} defined twice")
    REGISTRY[prim.name] = prim
    return prim


def params_key(params: dict):
    """A hashable key for a params dict (used by caches and CSE)."""
    return _params_key(params)


# --- params that may be written into generated code ----------------------------------
# Every param value ends up in generated (and eagerly exec'd) source text through
# repr()/format().  A user's int/float/str subclass with a custom __repr__, __str__
# or __format__ would become code, so params are rebuilt from plain Python values
# when an op is bound (graphc/tracing.py's bind), and codegen refuses anything else.
_PARAM_STRINGS = frozenset({"slice", "array", "int", "none", "ellipsis"})


def plain_param(v, what="param"):
    """``v`` rebuilt from plain ``bool``/``int``/``float``/whitelisted ``str``/None,
    tuples, lists and slices of those, and NumPy dtypes of supported kinds.

    Raises ``UnsupportedError`` for anything else (its repr is never trusted).
    """
    import operator
    t = type(v)
    if v is None or t is bool or t is int or t is float:
        return v
    if t is tuple and all(type(x) is int for x in v):
        return v                      # (axes, shapes: already plain, and immutable)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (float, np.floating)):
        return float.__float__(v) if isinstance(v, float) else float(v)
    if isinstance(v, int):
        return int.__int__(v)
    if isinstance(v, str):
        s = str.__str__(v)
        if s in _PARAM_STRINGS:
            return s
    elif isinstance(v, tuple):
        return tuple(plain_param(x, what) for x in v)
    elif isinstance(v, list):
        return [plain_param(x, what) for x in v]
    elif isinstance(v, slice):
        return slice(plain_param(v.start, what), plain_param(v.stop, what),
                     plain_param(v.step, what))
    elif isinstance(v, np.dtype) or isinstance(v, type) and issubclass(v, np.generic):
        dt = np.dtype(v)
        if dt.kind in "biuf" and dt.isbuiltin:
            return np.dtype(dt.name)
    elif isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return np.array(v, dtype=np.dtype(v.dtype.name))
    elif hasattr(type(v), "__index__"):     # NumPy integers, objects usable as an index
        return int.__int__(operator.index(v))
    from .errors import UnsupportedError
    raise UnsupportedError(
        f"{what} of type {type(v).__name__} cannot be used: generated code spells "
        "parameters from plain Python ints, floats and bools only",
        hint="pass plain ints (e.g. int(n)) for shapes, axes and indices")


def plain_params(prim, params: dict) -> dict:
    """``params`` with every value passed through :func:`plain_param`."""
    out = {}
    for k, v in params.items():       # (ints, None and int tuples inline: the common ones)
        t = type(v)
        if t is int or v is None or t is tuple and all([type(x) is int for x in v]):
            out[k] = v
        else:
            out[k] = plain_param(v, f"{prim.name}'s parameter {k}")
    return out


# --- what the layers above hand down at import ---------------------------------------
# A primitive is applied by the tracer (graphc/tracing.py's bind) and evaluated eagerly
# by a function compiled from its emission (graphc/eager.py).  Both live above this
# module, so they install themselves here when imported (graphc/__init__ imports both)
# instead of this module importing upwards.
def _not_installed(what):
    def missing(*args):
        raise RuntimeError(f"no {what} installed: import graphc (not graphc.primitive alone)")
    return missing


_HOOKS: dict[str, Callable] = {"bind": _not_installed("binder"),
                               "impl": _not_installed("implementation builder")}


def set_binder(fn: Callable) -> None:
    """Install ``fn(prim, args, params)``, which applies a primitive (``prim(*args)``)."""
    _HOOKS["bind"] = fn


def set_impl_builder(fn: Callable) -> None:
    """Install ``fn(prim, params) -> callable``, the eager implementation of a primitive."""
    _HOOKS["impl"] = fn
