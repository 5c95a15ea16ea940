"""graphc.export writes large constants to a .npz beside the module (API §4): no
multi-megabyte line (a 400x500 constant was one 3.2 MB line of hex), the same bits."""
import subprocess
import sys

import numpy as np
import pytest

import graphc

W = np.random.default_rng(3).normal(size=(400, 500))


def loss(x):
    return np.sum(np.tanh(x @ W.T))


def _export(tmp_path, **kw):
    return graphc.export(graphc.grad(loss), np.ones((3, 500)), path=tmp_path / "loss_grad.py", **kw)


def test_a_large_constant_goes_to_a_npz_beside_the_module(tmp_path):
    path = _export(tmp_path)
    text = path.read_text()
    assert (tmp_path / "loss_grad.npz").is_file()
    assert max(len(line) for line in text.splitlines()) < 200 and "fromhex" not in text
    assert "import numpy as np" in text and "\nimport os" not in text
    x = np.random.default_rng(4).normal(size=(3, 500))
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import loss_grad; "
            "np.save(sys.argv[1] + '/g.npy', loss_grad.loss_grad(np.load(sys.argv[1] + '/x.npy')))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd="/")
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), graphc.grad(loss)(x))


def test_a_small_constant_stays_in_the_module(tmp_path):
    small = np.arange(60.0).reshape(6, 10) / 7
    path = graphc.export(graphc.grad(lambda x: np.sum(x @ small)), np.ones((2, 6)),
                         path=tmp_path / "s.py")
    assert not (tmp_path / "s.npz").exists() and "_CONSTANTS" not in path.read_text()


def test_the_npz_is_never_replaced_silently(tmp_path):
    (tmp_path / "loss_grad.npz").write_bytes(b"mine")
    with pytest.raises(graphc.ExportError, match="will not overwrite"):
        _export(tmp_path)
    assert (tmp_path / "loss_grad.npz").read_bytes() == b"mine"
    assert not (tmp_path / "loss_grad.py").exists()
    _export(tmp_path, overwrite=True)
    assert len(np.load(tmp_path / "loss_grad.npz").files) == 1


def test_nothing_half_done_when_the_module_cannot_be_written(tmp_path, monkeypatch):
    from graphc import _files
    real, calls = _files.write_atomic, []

    def failing(path, data, **kw):
        calls.append(path)
        if str(path).endswith(".py"):
            raise OSError("disk full")
        return real(path, data, **kw)
    monkeypatch.setattr(_files, "write_atomic", failing)
    with pytest.raises(OSError, match="disk full"):
        _export(tmp_path)
    assert [p.suffix for p in calls] == [".npz", ".py"]
    assert list(tmp_path.iterdir()) == []


def test_a_stale_npz_is_refused_not_read(tmp_path):
    """The module checks each constant it reads (dtype, shape, a checksum of its bytes): an
    .npz from another export would otherwise give other numbers without a word."""
    path = _export(tmp_path)
    name = np.load(tmp_path / "loss_grad.npz").files[0]
    np.savez(tmp_path / "loss_grad.npz", **{name: W + 1e-12})
    code = "import sys; sys.path.insert(0, sys.argv[1]); import loss_grad"
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, cwd="/")
    assert run.returncode == 1 and path.exists()
    assert "does not hold the constant" in run.stderr and "export the module again" in run.stderr
