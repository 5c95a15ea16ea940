"""Primitive families.  Importing this package registers every primitive."""
from . import elementwise, index, linalg, nn, reduce, shape  # noqa: F401  (registration)
