"""The benchmark harness still runs end to end (small data, digits only).

The figures in benchmarks/RESULTS.md come from the full run; this keeps the
harness from rotting between runs without asserting any timing.
"""

import numpy as np
import pytest

run_cascade = pytest.importorskip("benchmarks.run_cascade")


def test_quick_benchmark_reports_every_method_and_routing_agrees(monkeypatch, tmp_path):
    # The smoke run caches its stages in a folder of its own: it used to clear
    # and refill benchmarks/_cache/digits, the full runs' cache.
    cache = tmp_path / "cache"
    (cache / "digits").mkdir(parents=True)
    (cache / "digits" / "kept").write_text("a full run's cache")
    monkeypatch.setattr(run_cascade, "CACHE", cache)
    results = run_cascade.run(quick=True, only=["digits"])
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")) == [
        "digits",
        "digits/kept",
    ]
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


def test_quick_routing_benchmark_counts_every_row_at_every_exit_it_reaches():
    run_routing = pytest.importorskip("benchmarks.run_routing")
    results = run_routing.run(quick=True)
    assert len(results["rows"]) == len(run_routing.FAMILIES) * len(run_routing.CLASSES)
    for row in results["rows"]:
        # Every row is decided at least once; none more than at every stage.
        assert row["n_rows"] <= row["row_exits"] <= row["n_rows"] * 5
        assert sum(row["exit_rates"]) == pytest.approx(1.0)
        assert row["us_per_row_exit"] > 0
    assert "us per row and exit" in run_routing.markdown(results)


def test_quick_dask_benchmark_predicts_lazily_as_in_memory():
    pytest.importorskip("distributed")
    run_dask = pytest.importorskip("benchmarks.run_dask")
    # Workers as threads: the harness, without the worker processes' imports.
    results = run_dask.run(quick=True, n_rows=150_000, processes=False)
    assert results["lazy_equals_in_memory"]
    assert sum(results["class_counts"]) == 150_000
    assert results["n_chunks"] == 3
    for timing in (
        results["seconds"]["dask_generate"],
        results["seconds"]["dask_generate_and_predict"],
    ):
        assert timing["wall"] > 0 and timing["cpu"] > 0
    assert len(results["workers"]) == 2
    for worker in results["workers"].values():
        assert worker["peak_bytes"] >= worker["before_bytes"] > 0
    report = run_dask.markdown(results)
    assert "Peak memory per worker" in report and "CPU us per row" in report


def test_regression_summary_counts_one_stage_points_split_by_split():
    """A point whose splits each answer every row at one stage (not the same
    one) is level with random deferral; a split that mixes stages makes it a
    point the learned policy must win."""
    run_regression = pytest.importorskip("benchmarks.run_regression")

    def split(rates, learned, random):
        return {
            "exit_rates": rates,
            "learned_mse": learned,
            "random_mse": random,
            "heuristic_mse": random,
            "one_stage": max(rates) == 1.0,
            "heuristic": "disagreement",
            "learned_scores": "one exit for every row",
            "other_heuristic_mse": {"disagreement": random, "uncertainty": random},
        }

    one_stage_each = [[split([1.0, 0.0], 2.0, 2.0)], [split([0.0, 1.0], 3.0, 3.0)]]
    mixed = [[split([1.0, 0.0], 2.0, 2.0)], [split([0.5, 0.5], 3.1, 3.0)]]
    points = run_regression._mean_points(one_stage_each)
    points += run_regression._mean_points(mixed)
    assert [p["one_stage"] for p in points] == [True, False]
    summary = run_regression.summary(points)
    assert summary["n_one_stage"] == 1
    assert summary["n_worse_than_random"] == 1
    assert not summary["beats_random_everywhere"]
    # The mixed point's splits differ from random by 0 and 0.1: mean 0.05,
    # standard error 0.05, so behind, but within two standard errors.
    assert points[1]["vs_random_standard_error"] == pytest.approx(0.05)
    assert points[1]["n_splits_not_one_stage"] == 1
    assert summary["n_worse_than_random_beyond_noise"] == 0
    assert run_regression._vs_random(points[1]) == "-2.0% ± 4.0%"
    far = run_regression._mean_points(
        [[split([0.5, 0.5], 3.0, 2.0)], [split([0.5, 0.5], 3.1, 2.0)]]
    )
    assert run_regression.summary(far)["n_worse_than_random_beyond_noise"] == 1


def test_regression_combined_figures_average_splits_and_count_each_budget_once():
    """The combined answers' summary: a budget the budgets and the grid share
    counts once; the last exit is compared with the best single stage."""
    run_regression = pytest.importorskip("benchmarks.run_regression")
    grid = run_regression.GRID
    budgets = run_regression.BUDGETS
    shared = [f for f in budgets if f in grid]
    assert shared, "the test needs a budget on the grid"

    def split(offset):
        return {
            "kinds": ["stage", "linear"],
            "last_exit_mse": 1.0 + offset,
            "exit_mse": [3.0, 1.0 + offset],
            "points": [2.0 + offset for _ in budgets],
            "curve": [(2.5 + offset, f) for f in grid],
        }

    # A budget's fraction is the mean over its splits: 0.1 comes back as
    # 0.10000000000000002, still the grid's 0.1.
    points = [
        {"fraction": float(np.mean([f] * 30)), "learned_mse": 2.2} for f in budgets
    ]
    stage_curve = [[(2.4, f) for f in grid]]
    combined = run_regression._combined_summary(
        [split(0.0), split(0.2)], points, np.array([3.0, 1.5]), stage_curve
    )
    fractions = [p["fraction"] for p in combined["by_budget"]]
    assert fractions == pytest.approx(sorted(set(budgets) | set(grid)))
    assert combined["last_exit_mse"] == pytest.approx(1.1)
    assert combined["kinds"] == "stage / linear x2"
    at_shared = next(
        p for p in combined["by_budget"] if p["fraction"] == pytest.approx(shared[0])
    )
    # The budgets' own points come first: the stage answers' 2.2, combined 2.1.
    assert at_shared == {
        "fraction": pytest.approx(shared[0]),
        "stage_answers_mse": 2.2,
        "combined_mse": pytest.approx(2.1),
    }
    assert combined["at_or_below_best_stage"] is None  # 2.6 > 1.5
    summary = run_regression.combined_summary({("d", "cascade"): combined})
    assert summary["n_combined_below_best_stage"] == 1
    assert summary["n_combined_points"] == len(fractions)
    # On the grid (outside the budgets) combined 2.6 > the stage answers' 2.4.
    assert summary["n_combined_points_at_or_below_stage_answers"] == len(budgets)


def test_quick_refit_benchmark_measures_every_variant_on_new_rows():
    from benchmarks import run_refit

    results = run_refit.run(quick=True)
    (dataset,) = results["results"]
    assert [v["variant"] for v in dataset["variants"]] == [
        name for name, _, _ in run_refit.VARIANTS
    ]
    for variant in dataset["variants"]:
        budgets = [p["budget_fraction"] for p in variant["points"]]
        assert budgets == list(run_refit.BUDGETS)
        for point in variant["points"]:
            assert 0 < point["test"]["cost"] <= sum(run_refit.COSTS)
            assert 0 <= point["test"]["accuracy"] <= 1
    text = run_refit.markdown(results)
    assert "python -m benchmarks.run_refit" in text
    assert "cv=0.25, refit=False" in text


def test_skip_verdict_allows_the_plain_cascades_own_overspend_and_no_more():
    run_skips = pytest.importorskip("benchmarks.run_skips")

    def row(plain, skips):
        keys = ("accuracy", "cost")
        return {
            "budget": 10.0,
            "plain": dict(zip(keys, plain)),
            "skips": dict(zip(keys, skips)),
        }

    # Within 5 % of the budget: more accurate is strictly above, level is at.
    assert run_skips._verdict(row((0.50, 9.0), (0.51, 10.4))) == (True, True)
    assert run_skips._verdict(row((0.50, 9.0), (0.50, 10.4))) == (True, False)
    assert run_skips._verdict(row((0.50, 9.0), (0.49, 9.0))) == (False, False)
    # Over the budget's slack while the plain cascade spends less: below.
    assert run_skips._verdict(row((0.50, 9.0), (0.60, 10.6))) == (False, False)
    # Both overspend on the test rows; more accurate for no more than the
    # plain cascade is above its frontier, dearer than it is not.
    assert run_skips._verdict(row((0.50, 12.0), (0.53, 11.0))) == (True, True)
    assert run_skips._verdict(row((0.50, 12.0), (0.53, 12.5))) == (False, False)
    # Level and at least 5 % cheaper is strictly above.
    assert run_skips._verdict(row((0.50, 12.0), (0.50, 11.0))) == (True, True)


def _combined_run(seed, best, last, stage_budgets, combined_budgets):
    """A run_combined record of one split (two stages, two budgets)."""

    def answers(last_accuracy, budgets, kinds):
        return {
            "kinds": kinds,
            "last_exit_accuracy": last_accuracy,
            "full_cost": 2.0,
            "budgets": [
                {"fraction": f, "accuracy": a, "cost": 1.0}
                for f, a in zip((0.5, 1.0), budgets)
            ],
            "no_loss": None,
            "routing_per_row": [1e-7, 2e-7],
            "frontier": {"cost": [1.0, 2.0], "accuracy": list(budgets)},
        }

    return {
        "seed": seed,
        "stages": ["cheap", "costly"],
        "fractions": [0.5, 1.0],
        "single_stage_accuracy": [0.5, best],
        "best_stage": 1,
        "ceiling": {"stage": best, "log_pool": last},
        "answers": {
            "stage": answers(best, stage_budgets, ["stage", "stage"]),
            "combined": answers(last, combined_budgets, ["stage", "log_pool"]),
        },
    }


def test_combined_targets_are_judged_on_the_means_over_the_splits():
    run_combined = pytest.importorskip("benchmarks.run_combined")
    from benchmarks._tables import environment

    # The last exit: above the best stage on one split, below on the other,
    # above on average. The budgets: at the first, -0.1 and +0.3 point (at or
    # above on average, not on the first split); at the second +0.1 and +0.1.
    runs = [
        run_combined._judged(
            _combined_run(0, 0.80, 0.806, [0.700, 0.80], [0.699, 0.801])
        ),
        run_combined._judged(
            _combined_run(1, 0.90, 0.899, [0.600, 0.90], [0.603, 0.901])
        ),
    ]
    assert [r["combined_last_above_best_stage"] for r in runs] == [True, False]
    m = run_combined.over_seeds(runs)
    assert m["combined_minus_best_stage"] == pytest.approx([0.006, -0.001])
    assert m["mean_combined_minus_best_stage"] == pytest.approx(0.0025)
    assert m["combined_last_above_best_stage"]
    assert m["mean_budget_difference"] == pytest.approx([0.001, 0.001])
    assert m["budgets_at_or_above"] == 2
    assert m["budget_cost_over_full"]["stage"] == pytest.approx([0.5, 0.5])
    # Differences that cancel are a tie, though their float mean is -3e-17.
    cancelling = [
        run_combined._judged(_combined_run(s, 0.8, 0.8, [0.0, 0.0], [d, 0.0]))
        for s, d in enumerate((0.3, -0.1, -0.2))
    ]
    assert run_combined.over_seeds(cancelling)["budgets_at_or_above"] == 2
    # A second dataset below the best stage and the stage answers on average.
    below = [
        run_combined._judged(_combined_run(s, 0.8, 0.79, [0.7, 0.8], [0.69, 0.79]))
        for s in (0, 1)
    ]
    results = {
        "command": "python -m benchmarks.run_combined",
        "total_seconds": 1.0,
        "environment": environment(threads="-"),
        "seeds": [0, 1],
        "datasets": {"a": runs, "b": below},
        "over_seeds": {"a": m, "b": run_combined.over_seeds(below)},
    }
    text = run_combined.markdown(results)
    assert (
        "above the best single stage on 1 of 2 datasets (target: at least 2); "
        "combined answers at or above the stage answers at every budget on 1 of 2"
        in text
    )
    assert "+0.60 / -0.10 (mean **+0.25**)" in text


def test_combined_benchmark_fits_each_split_with_its_own_seed(monkeypatch):
    run_combined = pytest.importorskip("benchmarks.run_combined")
    from benchmarks import datasets, early_exit_data

    class Seen(Exception):
        pass

    def load(name, quick=False):
        raise Seen(datasets.SEED, early_exit_data.SEED)

    monkeypatch.setattr(run_combined.datasets, "load", load)
    with pytest.raises(Seen) as seen:
        run_combined._dataset("digits", True, 2)
    assert seen.value.args == (2, 2)
    assert (datasets.SEED, early_exit_data.SEED) == (0, 0)


def test_quick_booster_benchmark_times_every_library_at_every_budget():
    """The booster benchmark had stopped running (a timing helper's signature
    changed under it) without any test noticing."""
    pytest.importorskip("lightgbm")
    pytest.importorskip("xgboost")
    from benchmarks import run_boosters

    results = run_boosters.run(quick=True)
    (dataset,) = results["datasets"].values()
    assert set(dataset) == set(run_boosters.LIBRARIES)
    for measured in dataset.values():
        assert [p["budget_fraction"] for p in measured["points"]] == list(
            run_boosters.BUDGETS
        )
        for point in measured["points"]:
            assert point["ratio"] > 0
            assert 0 <= point["learned_accuracy"] <= 1
    assert "python -m benchmarks.run_boosters" in run_boosters.markdown(results)


def test_regression_friedman_draws_and_declared_cascade_costs():
    """Each Friedman dataset is drawn once per seed (different rows, half for
    training), and the cascade declares the same per-row costs for every
    split, so that a budget is the same point in every split and run."""
    run_regression = pytest.importorskip("benchmarks.run_regression")
    for name in ("friedman1", "friedman2"):
        splits = run_regression._splits(name, quick=False)
        assert len(splits) == len(run_regression.FRIEDMAN_SEEDS) > 1
        for X, X_test, y, y_test in splits:
            assert len(X) == len(X_test) == len(y) == len(y_test) == 4000
        assert not np.array_equal(splits[0][0], splits[1][0])
    for name, costs in run_regression.CASCADE_COSTS.items():
        assert sum(costs) == pytest.approx(1.0, abs=1e-9)
        cascade = run_regression._estimators(name, quick=True)["cascade"]
        assert cascade.get_params()["costs"] == list(costs)


def test_regression_missing_budgets_read_averaged_fractions():
    """A budget averaged over splits (0.1 as 0.10000000000000002) is present;
    only a budget with no point is reported missing."""
    run_regression = pytest.importorskip("benchmarks.run_regression")
    averaged = float(np.mean([0.1, 0.1, 0.1]))
    assert averaged != 0.1
    points = [{"fraction": averaged}, {"fraction": 0.25}, {"fraction": 0.5}]
    assert run_regression._missing_budgets(points) == []
    assert run_regression._missing_budgets(points[1:]) == [0.1]


def test_budget_points_fit_at_the_default_cost_weight_and_restore_it():
    """The budget fits after the cost-weight fits neither warn that the last
    cost weight is ignored nor leave the cascade at another one after."""
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    ours = pytest.importorskip("benchmarks.ours")
    X, y = load_iris(return_X_y=True)
    stages = [
        ("stump", DecisionTreeClassifier(max_depth=1, random_state=0)),
        ("lr", LogisticRegression(max_iter=1000)),
    ]
    cascade = ours.make_cascade(stages, None, costs=[1, 4], n_jobs=1)
    cascade.set_params(cost_weight=1.0).fit(X, y)
    test, _ = ours.outputs_on(cascade, X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*is ignored: budget=")
        points = ours.budget_points(cascade, X, y, test, [0.5, 0.9])
    assert [p.params for p in points] == [{"budget": 2.5}, {"budget": 4.5}]
    assert cascade.cost_weight == 1.0 and cascade.budget is None


def test_quick_policy_fit_benchmark_times_both_knobs_at_every_size():
    run_policy_fit = pytest.importorskip("benchmarks.run_policy_fit")
    results = run_policy_fit.run(quick=True)
    sizes = run_policy_fit.QUICK_POLICY_ROWS
    assert [(r["n_stages"], r["n_policy_rows"]) for r in results["rows"]] == [
        *((3, n) for n in sizes),
        *((4, n) for n in sizes[:-1]),
    ]
    for row in results["rows"]:
        assert row["budget_status"] in ("spent", "saturated")
        for key in ("cost_weight", "budget", "frontier"):
            assert row[f"{key}_seconds"] > 0
    assert "budget / cost_weight" in run_policy_fit.markdown(results)
