"""Primitive families.  Importing this package registers every primitive."""
from . import (activation, conv, elementwise, index, linalg, pool, random,  # noqa: F401
               reduce, shape)                                              # (registration)
from . import flips  # noqa: F401  (NumPy functions registered with _numpy_table.implements)
from . import norms, scans, statistics  # noqa: F401  (reductions, scans, np.linalg.norm)
