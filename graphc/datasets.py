"""Small image data sets for the examples: scikit-learn's 8x8 digits, or MNIST from a folder.

graphc downloads nothing.  :func:`load_digits` uses the 1,797 8x8 digits that
scikit-learn ships with itself; :func:`load_mnist` reads the four MNIST IDX
files (``train-images-idx3-ubyte`` and friends, optionally gzipped) from a
folder you already have.  :func:`load` picks MNIST when it is given a folder
(or the ``GRAPHC_MNIST`` environment variable names one) and the digits
otherwise, which is what ``examples/softmax_regression.py``,
``examples/mlp_dropout.py`` and ``examples/lenet.py`` call.

Every loader returns a :class:`Dataset`: ``(x_train, y_train, x_test,
y_test)`` with images as float64 in [0, 1], shaped ``(N, 1, H, W)`` (or
``(N, H*W)`` with ``flat=True``), and labels as int64.
"""
from __future__ import annotations

import gzip
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from .errors import GraphcError

__all__ = ["Dataset", "DatasetError", "load", "load_digits", "load_mnist", "read_idx",
           "write_idx", "MNIST_ENV"]

#: Environment variable naming a folder of MNIST IDX files, read by :func:`load`.
MNIST_ENV = "GRAPHC_MNIST"

# The four files of the MNIST distribution, by role.  Some mirrors write a dot
# before "idx" instead of a dash (train-images.idx3-ubyte); both spellings are tried.
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DatasetError(GraphcError, ValueError):
    """A data file that is missing, or is not what its name says."""


@dataclass(frozen=True)
class Dataset:
    """Training and test split of an image classification data set.

    Unpacks as ``x_train, y_train, x_test, y_test = dataset``; ``name`` says
    which data set it is.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = ""

    @property
    def image_shape(self) -> tuple:
        """``(H, W)`` of one image (``(8, 8)`` for the digits, ``(28, 28)`` for MNIST)."""
        if self.x_train.ndim == 4:
            return tuple(self.x_train.shape[2:])
        side = int(round(np.sqrt(self.x_train.shape[1])))
        return (side, side)

    def __iter__(self):
        return iter((self.x_train, self.y_train, self.x_test, self.y_test))


def _shape_images(images: np.ndarray, flat: bool) -> np.ndarray:
    """``(N, H, W)`` -> ``(N, H*W)`` or ``(N, 1, H, W)`` (NCHW, one channel)."""
    if flat:
        return images.reshape(len(images), -1)
    return images[:, None, :, :]


def load_digits(*, flat: bool = False, n_test: int = 360, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits, split into training and test images.

    Parameters
    ----------
    flat : bool
        ``True``: images as ``(N, 64)`` rows; ``False``: ``(N, 1, 8, 8)``.
    n_test : int
        How many of the 1,797 images to hold out for testing, chosen at random.
    seed : int
        Seed of the random split.

    Returns
    -------
    Dataset
        Pixels scaled from 0..16 to [0, 1]; labels 0..9 as int64.

    Examples
    --------
    >>> from graphc import datasets
    >>> x_train, y_train, x_test, y_test = datasets.load_digits(flat=True)
    >>> x_train.shape, x_test.shape, y_train.dtype
    ((1437, 64), (360, 64), dtype('int64'))
    >>> float(x_train.min()), float(x_train.max())
    (0.0, 1.0)
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as e:
        raise ImportError("the 8x8 digits come with scikit-learn: pip install scikit-learn "
                          f"(or point {MNIST_ENV} at a folder of MNIST IDX files)") from e
    digits = sklearn_digits()
    x = _shape_images(digits.images / 16.0, flat)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:n_test], order[n_test:]
    return Dataset(x[train], y[train], x[test], y[test], "8x8 digits")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the format MNIST is distributed in), gzipped or not.

    The header is two zero bytes, a type code (``0x08`` unsigned bytes, ...,
    ``0x0E`` float64), the number of dimensions, then each dimension as a
    big-endian 32-bit integer; the data follows in row-major order.

    Parameters
    ----------
    path : str or pathlib.Path
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        The array, in native byte order.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from graphc import datasets
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny-idx2-ubyte"
    >>> _ = datasets.write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> datasets.read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {path}: {e}",
                           hint="check the path; MNIST files are named like "
                                "train-images-idx3-ubyte or train-images-idx3-ubyte.gz") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (its first bytes are {data[:4].hex()})",
                           hint="IDX files start with two zero bytes, a type code and the "
                                "number of dimensions; is this the decompressed file?")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{path} is truncated or padded: its header says {shape} "
                           f"({expected} bytes of data) but it holds {len(data) - header}",
                           hint="download the file again")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path, array) -> pathlib.Path:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`; useful for small test files.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from graphc import datasets
    >>> path = datasets.write_idx(pathlib.Path(tempfile.mkdtemp()) / "x.gz",
    ...                           np.array([1.5, -2.0]))
    >>> datasets.read_idx(path)
    array([ 1.5, -2. ])
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DatasetError(f"IDX files cannot hold {array.dtype} values",
                           hint="use uint8, int8, int16, int32, float32 or float64")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(_IDX_DTYPES[code]).tobytes()
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


def _find_mnist_file(folder: pathlib.Path, stem: str) -> pathlib.Path:
    dotted = stem.replace("-idx", ".idx")                 # train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder} has no {stem} (nor {stem}.gz)",
                       hint=f"the folder needs the four MNIST files: "
                            f"{', '.join(MNIST_FILES.values())} (gzipped or not)")


def load_mnist(folder, *, flat: bool = False, limit: int | None = None) -> Dataset:
    """MNIST (or any data set in its IDX layout, such as Fashion-MNIST) from ``folder``.

    Parameters
    ----------
    folder : str or pathlib.Path
        Holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
        possibly gzipped (``.gz``).  Nothing is downloaded.
    flat : bool
        ``True``: images as ``(N, H*W)`` rows; ``False``: ``(N, 1, H, W)``.
    limit : int, optional
        Keep only the first ``limit`` training and test images.

    Returns
    -------
    Dataset
        Pixels scaled from 0..255 to [0, 1]; labels as int64.

    Examples
    --------
    A folder with tiny files in MNIST's layout (five 4x4 training images, two
    test images):

    >>> import numpy as np, pathlib, tempfile
    >>> from graphc import datasets
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> for split, n in (("train", 5), ("t10k", 2)):
    ...     _ = datasets.write_idx(folder / f"{split}-images-idx3-ubyte.gz",
    ...                            rng.integers(0, 256, (n, 4, 4), dtype=np.uint8))
    ...     _ = datasets.write_idx(folder / f"{split}-labels-idx1-ubyte.gz",
    ...                            np.arange(n, dtype=np.uint8))
    >>> data = datasets.load_mnist(folder)
    >>> data.x_train.shape, data.y_test, data.image_shape
    ((5, 1, 4, 4), array([0, 1]), (4, 4))
    """
    folder = pathlib.Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"MNIST folder {folder} does not exist",
                           hint=f"pass the folder that holds {MNIST_FILES['x_train']} and "
                                "the other three MNIST files")
    arrays = _read_mnist_arrays(folder, limit)

    def images(a):
        scale = 255.0 if a.dtype == np.uint8 else 1.0
        return _shape_images(a.astype(np.float64) / scale, flat)

    return Dataset(images(arrays["x_train"]), arrays["y_train"].astype(np.int64),
                   images(arrays["x_test"]), arrays["y_test"].astype(np.int64),
                   f"{'x'.join(map(str, arrays['x_train'].shape[1:]))} MNIST from {folder}")


def _read_mnist_arrays(folder: pathlib.Path, limit: int | None) -> dict:
    """The four MNIST arrays by role (``x_train`` ...): images 3-d, labels 1-d, as many of each."""
    arrays = {}
    for role, stem in MNIST_FILES.items():
        path = _find_mnist_file(folder, stem)
        arrays[role] = read_idx(path)[:limit]
        expected_ndim = 3 if role.startswith("x") else 1
        if arrays[role].ndim != expected_ndim:
            raise DatasetError(f"{path} holds a {arrays[role].ndim}-d array; "
                               f"{'images' if expected_ndim == 3 else 'labels'} are "
                               f"{expected_ndim}-d", hint="are the file names swapped?")
    for split in ("train", "test"):
        n_x, n_y = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_x != n_y:
            raise DatasetError(f"MNIST in {folder}: {n_x} {split} images but {n_y} labels",
                               hint="the image and label files come from different sets")
    return arrays


def load(mnist=None, *, flat: bool = False, limit: int | None = None, seed: int = 0) -> Dataset:
    """MNIST from a folder when there is one, else scikit-learn's 8x8 digits.

    Parameters
    ----------
    mnist : str or pathlib.Path, optional
        Folder of MNIST IDX files (see :func:`load_mnist`).  When omitted, the
        ``GRAPHC_MNIST`` environment variable is used if set.
    flat : bool
        ``True``: images as rows ``(N, H*W)``; ``False``: ``(N, 1, H, W)``.
    limit : int, optional
        For MNIST, keep only the first ``limit`` training and test images.
    seed : int
        Seed of the digits' random train/test split.

    Examples
    --------
    >>> from graphc import datasets
    >>> data = datasets.load(flat=True)        # GRAPHC_MNIST unset: the 8x8 digits
    >>> data.name, data.image_shape
    ('8x8 digits', (8, 8))
    """
    if mnist is None:
        mnist = os.environ.get(MNIST_ENV) or None
    if mnist is not None:
        return load_mnist(mnist, flat=flat, limit=limit)
    return load_digits(flat=flat, seed=seed)
