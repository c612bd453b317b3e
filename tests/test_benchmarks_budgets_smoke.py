"""The budget benchmark still runs end to end (small data, one cascade).

The figures in benchmarks/RESULTS.md come from the full run; this keeps the
harness from rotting and checks that what it reports is consistent.
"""

import numpy as np
import pytest

run_budgets = pytest.importorskip("benchmarks.run_budgets")


def test_quick_budget_benchmark_compares_the_default_with_the_baseline():
    result = run_budgets.run_setup("cascade", "digits", True, (0.25, 0.5))
    reached = [p for p in result["points"] if "ours" in p]
    assert reached
    for point in reached:
        ours, baseline = point["ours"], point["baseline"]
        # Both are within the budget on the policy rows they were chosen on.
        assert ours["policy_rows_spent"] <= 1 + 1e-9
        assert baseline["policy_rows_spent"] <= 1 + 1e-9
        assert ours["budget_status"] in ("spent", "saturated")
        assert point["gain_points"] == pytest.approx(
            100 * (ours["test_accuracy"] - baseline["test_accuracy"])
        )
    assert result["timing"]["frontier_seconds"] > 0
    summary = run_budgets.summary([result])
    assert np.isfinite(summary["mean_gain_over_datasets"])
    text = run_budgets.markdown(
        [result], {"date": "-", "seconds": 0.0, "environment": "-"}
    )
    assert run_budgets.BEGIN in text and run_budgets.END in text
