"""benchmarks/blockers.py checks the work it times before timing it (timing itself is not tested)."""
import numpy as np
import pytest

from benchmarks import blockers


@pytest.fixture
def once(monkeypatch):
    """Time nothing: each measured function runs once and reports 1 s."""
    def run_once(fn, inner=0, repeats=0):
        fn()
        return 1.0
    monkeypatch.setattr(blockers, "best", run_once)


def test_threads_split_is_the_copy(once):
    out = blockers.threads(log=lambda *a: None)
    assert set(out) == {"handoff", "copy_one", "copy_two"}


def test_worker_runs_both_halves():
    done = []
    worker = blockers._Worker()
    worker.both(done.append, ("theirs",), ("mine",))
    assert sorted(done) == ["mine", "theirs"]


def test_transcendentals_match_numpy(once):
    pytest.importorskip("numba")
    lines = []
    out = blockers.transcendentals(log=lines.append)
    assert set(out) == {"exp", "log1p", "1/x"}
    assert lines[0].startswith("| op") and len(lines) == 5


def test_w3_kernel_is_found(once):
    pytest.importorskip("numba")
    lines = []
    out = blockers.w3_kernel(log=lines.append)
    assert set(out) == {"call", "kernel", "hand"}, lines
    assert np.isfinite(list(out.values())).all()
