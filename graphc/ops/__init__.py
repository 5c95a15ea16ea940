"""Primitive families.  Importing this package registers every primitive."""
from . import (activation, conv, elementwise, index, linalg, pool, random,  # noqa: F401
               reduce, shape)                                              # (registration)
from . import flips  # noqa: F401  (NumPy functions registered with _numpy_table.implements)
from . import padding, reorder  # noqa: F401  (np.pad/roll/diff, sort/argsort/take/select)
