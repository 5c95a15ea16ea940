"""graphc.datasets: the IDX reader on tiny files written here, MNIST folders, the digits."""
import gzip

import numpy as np
import pytest

from graphc import GraphcError, datasets

try:
    import sklearn  # noqa: F401
    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False


def _idx_bytes(array, code):
    """An IDX file written independently of graphc.datasets.write_idx."""
    header = bytes([0, 0, code, array.ndim])
    for d in array.shape:
        header += int(d).to_bytes(4, "big")
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                         (np.int32, 0x0C), (np.float32, 0x0D),
                                         (np.float64, 0x0E)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_every_type(tmp_path, dtype, code, gz):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    data = _idx_bytes(array, code)
    path = tmp_path / ("a.gz" if gz else "a")
    path.write_bytes(gzip.compress(data) if gz else data)
    got = datasets.read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    # write_idx is its inverse, byte for byte
    back = datasets.write_idx(tmp_path / ("b.gz" if gz else "b"), array)
    raw = gzip.decompress(back.read_bytes()) if gz else back.read_bytes()
    assert raw == data


def _write_mnist(folder, n_train=12, n_test=5, side=6, gz=True, dotted=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        arrays[split] = (rng.integers(0, 256, (n, side, side), dtype=np.uint8),
                         rng.integers(0, 10, n).astype(np.uint8))
        for kind, a, code in (("images-idx3-ubyte", arrays[split][0], 0x08),
                              ("labels-idx1-ubyte", arrays[split][1], 0x08)):
            name = f"{split}-{kind}"
            if dotted:
                name = name.replace("-idx", ".idx")
            data = _idx_bytes(a, code)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, False), (False, True)])
def test_load_mnist_folder(tmp_path, gz, dotted):
    arrays = _write_mnist(tmp_path / "mnist", gz=gz, dotted=dotted)
    data = datasets.load_mnist(tmp_path / "mnist")
    x_train, y_train, x_test, y_test = data
    assert x_train.shape == (12, 1, 6, 6) and x_test.shape == (5, 1, 6, 6)
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64
    np.testing.assert_array_equal(x_train[:, 0] * 255, arrays["train"][0])
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    assert 0 <= x_train.min() and x_train.max() <= 1 and data.image_shape == (6, 6)
    flat = datasets.load_mnist(tmp_path / "mnist", flat=True, limit=3)
    assert flat.x_train.shape == (3, 36) and flat.x_test.shape == (3, 36)
    assert flat.image_shape == (6, 6)
    np.testing.assert_array_equal(flat.x_train, x_train[:3].reshape(3, 36))


def test_load_prefers_mnist_from_env(tmp_path, monkeypatch):
    _write_mnist(tmp_path)
    monkeypatch.setenv(datasets.MNIST_ENV, str(tmp_path))
    data = datasets.load(flat=True)
    assert data.name == f"6x6 MNIST from {tmp_path}" and data.x_train.shape == (12, 36)
    # an explicit folder wins over the environment
    other = tmp_path / "other"
    _write_mnist(other, n_train=7, side=4)
    assert datasets.load(other).x_train.shape == (7, 1, 4, 4)


@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn is not installed")
def test_load_digits_split(monkeypatch):
    monkeypatch.delenv(datasets.MNIST_ENV, raising=False)
    data = datasets.load()
    x_train, y_train, x_test, y_test = data
    assert data.name == "8x8 digits" and x_train.shape == (1437, 1, 8, 8)
    assert len(x_test) == 360 and set(np.unique(y_test)) == set(range(10))
    flat = datasets.load_digits(flat=True)
    np.testing.assert_array_equal(flat.x_train, x_train.reshape(-1, 64))
    # the split is a function of the seed, and the two halves are disjoint
    a, b = datasets.load_digits(seed=1), datasets.load_digits(seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    train_rows = {row.tobytes() for row in flat.x_train}
    assert sum(row.tobytes() in train_rows for row in flat.x_test) < 10   # (a few duplicates)


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(datasets.DatasetError, match="does not exist") as e:
        datasets.load_mnist(tmp_path / "nowhere")
    assert isinstance(e.value, GraphcError) and "test_datasets.py:" in str(e.value)
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(datasets.DatasetError, match="t10k-labels-idx1-ubyte") as e:
        datasets.load_mnist(tmp_path)
    assert "Hint:" in str(e.value)


def test_bad_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(datasets.DatasetError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "junk")
    full = _idx_bytes(np.zeros((3, 4), np.uint8), 0x08)
    (tmp_path / "short").write_bytes(full[:-2])
    with pytest.raises(datasets.DatasetError, match="truncated"):
        datasets.read_idx(tmp_path / "short")
    # images and labels that disagree in count
    _write_mnist(tmp_path / "m")
    datasets.write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(datasets.DatasetError, match="12 train images but 3 labels"):
        datasets.load_mnist(tmp_path / "m")
    with pytest.raises(datasets.DatasetError, match="cannot hold"):
        datasets.write_idx(tmp_path / "c", np.zeros(2, np.complex128))
