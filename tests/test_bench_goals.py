"""benchmarks/goals.py: issue 18's goal table reads raw results of several settings."""
from benchmarks import goals
from benchmarks.run import md_table


def _raw(w4_graphc, w1):
    t = lambda s: {"median_s": s}  # noqa: E731
    return {"W4": {"graphc": t(w4_graphc), "numpy": t(0.010), "torch": t(0.020)},
            "W1": {"graphc": t(w1)},
            "convnets": {"a b16": {"graphc": 1.0, "numpy (tuned)": 2.0, "numpy (einsum)": 3.0,
                                   "torch": 0.5}},
            "xp": {"W4": {"ratio_median_pair": 1.05}}}


def _row(text, rows):
    return next(r for r in rows.splitlines() if r.startswith("| " + text))


def test_a_goal_is_met_only_when_met_in_every_column():
    rows = goals.table({"default threads": _raw(0.008, 1.5e-6),
                        "one thread": _raw(0.0095, 1.9e-6)}, md_table)
    assert rows.splitlines()[0] == ("| goal (issues 17, 18) | default threads | one thread | "
                                    "status |")
    # 0.008 / 0.010 = 0.80x met, 0.0095 / 0.010 = 0.95x not met
    assert _row("W4 LeNet b64 ≤ 0.9x the best hand NumPy", rows) == \
        "| W4 LeNet b64 ≤ 0.9x the best hand NumPy | 0.80x | 0.95x | **not met** |"
    assert _row("W4 LeNet b64 ≤ 0.9x PyTorch eager", rows).endswith("| 0.40x | 0.47x | met |")
    assert _row("W1 ≤ 2 µs", rows).endswith("| 1.5 µs | 1.9 µs | met |")
    assert _row("every conv shape ≤ 0.9x the best hand NumPy", rows).endswith(
        "| 1 of 1 met, worst 0.50x | 1 of 1 met, worst 0.50x | met |")
    assert _row("every conv shape ≤ 0.9x PyTorch eager", rows).endswith("| **not met** |")


def test_goals_not_measured_are_not_called_met():
    rows = goals.table({"default threads": {}}, md_table)
    assert _row("10,000-node graph compiles", rows).endswith("| — | n/a |")
    assert _row('W3 ≤ 0.5x hand NumPy with target="numba"', rows).endswith("| — | n/a |")
