"""Primitive families.  Importing this package registers every primitive."""
from . import elementwise, index, linalg, nn, reduce, shape  # noqa: F401  (registration)
from .elementwise import (abs, add, astype as astype_p, cos, div, eq, exp, expm1, ge, gt, le, log,
                          log1p, logical_and, logical_not, logical_or, lt, maximum, minimum, mul, ne,
                          neg, pow, sign, sin, sqrt, sub, tan, tanh, where)
from .index import getitem, scatter_add
from .linalg import matmul
from .shape import broadcast_to, concatenate, reshape, transpose
from .composite import hint, mean
