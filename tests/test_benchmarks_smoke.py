"""The benchmark harness still runs end to end (small data, digits only).

The figures in benchmarks/RESULTS.md come from the full run; this keeps the
harness from rotting between runs without asserting any timing.
"""

import pytest

run_cascade = pytest.importorskip("benchmarks.run_cascade")


def test_quick_benchmark_reports_every_method_and_routing_agrees():
    results = run_cascade.run(quick=True, only=["digits"])
    digits = results["datasets"]["digits"]
    assert digits["routing_matches_offline_exits"]
    for method in ("threshold", "ours"):
        summary = digits["methods"][method]
        assert summary["points"]
        assert 0 <= summary["normalized_auc"] <= 1
    assert digits["oracle"]["test"]["accuracy"] >= max(
        stage["test_accuracy"] for stage in digits["stages"]
    )
    assert digits["wall_clock"]["n_rows"] >= 1
    assert digits["policy_time"]["single_policy_seconds"] > 0
    assert set(results["targets"]) >= {"1_frontier_vs_threshold", "2_wall_clock"}
