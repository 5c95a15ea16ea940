"""Primitive families.  Importing this package registers every primitive."""
from . import (activation, conv, elementwise, index, linalg, pool, random,  # noqa: F401
               reduce, shape)                                              # (registration)
from . import flips  # noqa: F401  (NumPy functions registered with _numpy_table.implements)
from . import assemble, splitting  # noqa: F401  (np.stack/split/tile ...: building and reshaping)
from . import einsum, products  # noqa: F401  (np.einsum, dot/tensordot/outer/.../trace/triu)
from . import predicates, rounding  # noqa: F401  (issue 14: rounding, division, predicates, clip)
from . import decompositions, np_linalg  # noqa: F401  (np.linalg inv solve det slogdet ...)
from . import hyperbolic, logaddexp, transcendental  # noqa: F401  (transcendental ufuncs)
from . import padding, reorder  # noqa: F401  (np.pad/roll/diff, sort/argsort/take/select)
from . import norms, scans, statistics  # noqa: F401  (reductions, scans, np.linalg.norm)
from . import basics  # noqa: F401  (np.where, reshape, transpose, broadcast_to, expand_dims)
from . import guard  # noqa: F401  (issue 15: the decisions Python control flow took)
from . import max_share  # noqa: F401  (issue 18: maximum/minimum's gradient share, one op)
