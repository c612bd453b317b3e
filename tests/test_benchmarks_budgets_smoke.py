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
        # The kept policy is one of the kinds the bound is the best of.
        assert ours["test_accuracy"] in ours["candidates_test_accuracy"]
        assert point["bound_gain_points"] >= point["gain_points"] - 1e-9
    assert result["timing"]["frontier_seconds"] > 0
    summary = run_budgets.summary([result])
    assert np.isfinite(summary["mean_gain_over_datasets"])
    text = run_budgets.markdown(
        [result], {"date": "-", "seconds": 0.0, "environment": "-"}
    )
    assert run_budgets.BEGIN in text and run_budgets.END in text


def test_budget_summary_averages_each_dataset_over_its_split_seeds():
    def run(name, seed, gains):
        points = [
            {"budget_fraction": f, "gain_points": g, "ours": {"test_spent": 1.0}}
            for f, g in zip((0.1, 0.5), gains)
        ]
        return {
            "name": name,
            "seed": seed,
            "n_test_rows": 10,
            "points": points,
            "mean_gain_points": float(np.mean(gains)),
            "mean_gain_over_ties_to_cheaper_points": float(np.mean(gains)) + 0.5,
            "mean_bound_gain_points": float(np.max(gains)),
        }

    results = [
        run("a", 0, (1.0, 3.0)),
        run("a", 1, (0.0, 0.0)),
        run("b", 0, (-1.0, -1.0)),
        run("b", 1, (0.0, 1.0)),
    ]
    summary = run_budgets.summary(results)
    assert summary["mean_gain_per_dataset"] == {"a": 1.0, "b": -0.25}
    assert summary["mean_gain_over_datasets"] == pytest.approx(0.375)
    assert summary["mean_gain_over_datasets_per_seed"] == {0: 0.5, 1: 0.25}
    # A seed that only one dataset ran counts for that dataset's mean, not
    # as a mean over the datasets.
    more = run_budgets.summary([*results, run("a", 2, (2.0, 2.0))])
    assert more["mean_gain_per_dataset"]["a"] == pytest.approx(4 / 3)
    assert more["mean_gain_over_datasets_per_seed"] == {0: 0.5, 1: 0.25}
    assert summary["datasets_at_or_above_baseline"] == 1
    assert summary["bound_gain_per_dataset"] == {"a": 1.5, "b": 0.0}
    # A seed run twice counts once, for the gain and the bound alike.
    again = run_budgets.summary([*results, results[1]])
    assert again["mean_gain_per_dataset"]["a"] == 1.0
    assert again["bound_gain_per_dataset"]["a"] == pytest.approx(1.5)
    assert summary["mean_gain_over_ties_to_cheaper_per_dataset"] == {
        "a": 1.5,
        "b": 0.25,
    }
    assert again["mean_gain_over_ties_to_cheaper_per_dataset"]["a"] == 1.5
    table = run_budgets._gains_by_seed(results, summary["seeds"])
    row = next(
        line for line in table.splitlines() if "| a " in line and "50.0 %" in line
    )
    assert [cell.strip() for cell in row.strip("|").split("|")] == [
        "a",
        "50.0 %",
        "+3.00",
        "+0.00",
        "+1.50",
    ]


def test_seeded_splits_and_seeds_the_setups_and_restores_the_seed():
    from benchmarks import datasets, early_exit_data

    base = datasets.load("digits", quick=True)
    base_split = early_exit_data.load("make_classification", quick=True)
    with datasets.seeded(1):
        other = datasets.load("digits", quick=True)
        other_split = early_exit_data.load("make_classification", quick=True)
    assert not np.array_equal(base.y_test, other.y_test)
    assert not np.array_equal(base_split.X_test, other_split.X_test)
    assert other.stages[1][1].random_state == 1
    assert (datasets.SEED, early_exit_data.SEED) == (0, 0)
    with pytest.raises(KeyError), datasets.seeded(2):
        raise KeyError
    assert (datasets.SEED, early_exit_data.SEED) == (0, 0)


def test_each_setup_runs_with_its_seed(monkeypatch):
    from benchmarks import datasets, early_exit_data

    seen = []
    for kind, name in (("cascade", "digits"), ("early_exit", "mnist1d/random_forest")):
        setup = run_budgets.SETUPS[kind][name]

        def recording(name, quick, setup=setup):
            seen.append((datasets.SEED, early_exit_data.SEED))
            return setup(name, quick)

        monkeypatch.setitem(run_budgets.SETUPS[kind], name, recording)
        result = run_budgets.run_setup(kind, name, True, (0.5,), seed=2)
        assert result["seed"] == 2
    assert seen == [(2, 2), (2, 2)]


def test_rewrite_writes_the_sections_from_the_saved_results(tmp_path, monkeypatch):
    """``--rewrite`` runs nothing: the results files' budget sections are
    written again from the saved JSON (each kind to its own file), with the
    note on the early exits' exits only where there are early exits."""
    import json

    result = run_budgets.run_setup("cascade", "digits", True, (0.5,))
    early = {**result, "kind": "early_exit", "name": "mnist1d/gradient_boosting"}
    info = {"date": "2000-01-01", "seconds": 1.0, "environment": "-"}
    saved = tmp_path / "budgets.json"
    saved.write_text(
        json.dumps(
            run_budgets.jsonable({"info": info, "results": [result, early]}),
        )
    )
    for name in ("RESULTS.md", "EARLY_EXIT_RESULTS.md"):
        (tmp_path / name).write_text("# Results\n")
    monkeypatch.setattr(run_budgets, "RESULTS_JSON", saved)
    monkeypatch.setattr(run_budgets, "HERE", tmp_path)
    run_budgets.main(["--rewrite"])
    cascades = (tmp_path / "RESULTS.md").read_text()
    exits = (tmp_path / "EARLY_EXIT_RESULTS.md").read_text()
    assert "2000-01-01" in cascades and "2000-01-01" in exits
    assert "### digits, seed 0" in cascades and "mnist1d/gradient" not in cascades
    assert "### mnist1d/gradient_boosting, seed 0" in exits
    assert "seven exits" in exits and "seven exits" not in cascades


def test_merge_puts_the_new_seeds_in_the_saved_run(tmp_path, monkeypatch):
    """``--merge`` replaces the saved results of the setups and seeds run,
    keeps the others in order, and says in the files what was added and how."""
    import json

    result = run_budgets.run_setup("cascade", "digits", True, (0.5,))
    early = {**result, "kind": "early_exit", "name": "mnist1d/gradient_boosting"}
    info = {"date": "2000-01-01", "seconds": 1.0, "environment": "-"}
    saved = tmp_path / "budgets.json"
    old = [{**result, "seed": 0}, {**result, "seed": 1}, early]
    saved.write_text(json.dumps(run_budgets.jsonable({"info": info, "results": old})))
    for name in ("RESULTS.md", "EARLY_EXIT_RESULTS.md"):
        (tmp_path / name).write_text("# Results\n")
    monkeypatch.setattr(run_budgets, "RESULTS_JSON", saved)
    monkeypatch.setattr(run_budgets, "HERE", tmp_path)

    def fake_run(kind, name, quick, fractions, seed=0):
        return {**result, "seed": seed, "mean_gain_points": 9.0}

    monkeypatch.setattr(run_budgets, "run_setup", fake_run)
    run_budgets.main(["--merge", "--only", "digits", "--seeds", "2", "1"])
    merged = json.loads(saved.read_text())
    keys = [(r["name"], r["seed"], r["mean_gain_points"]) for r in merged["results"]]
    assert keys == [
        ("digits", 0, result["mean_gain_points"]),
        ("digits", 1, 9.0),
        ("digits", 2, 9.0),
        ("mnist1d/gradient_boosting", 0, result["mean_gain_points"]),
    ]
    assert merged["info"]["date"] == "2000-01-01"
    (added,) = merged["info"]["added"]
    assert added["what"] == "digits seeds 1, 2"
    assert "--merge" in added["command"]
    cascades = (tmp_path / "RESULTS.md").read_text()
    assert "digits seeds 1, 2 were run apart and merged in" in cascades
    assert "### digits, seed 2" in cascades
    # The early exits' file, whose results were not run again, says nothing.
    assert "merged in" not in (tmp_path / "EARLY_EXIT_RESULTS.md").read_text()


def test_setups_run_their_own_seeds_unless_told(monkeypatch):
    seen = []

    def fake_run(kind, name, quick, fractions, seed=0):
        seen.append((name, seed))
        return {"kind": kind, "mean_gain_points": 0.0, "points": []}

    monkeypatch.setattr(run_budgets, "run_setup", fake_run)
    monkeypatch.setattr(run_budgets, "summary", lambda runs: {})
    run_budgets.main(["--only", "digits", "mnist1d", "--no-write"])
    run_budgets.main(["--only", "digits", "--seeds", "4", "--no-write"])
    assert seen == [
        *(("digits", s) for s in range(10)),
        *(("mnist1d", s) for s in run_budgets.SEEDS),
        ("digits", 4),
    ]
    assert len(run_budgets.SETUP_SEEDS["digits"]) == 10
    assert run_budgets._seeds_text(
        [{"name": "digits", "seed": s} for s in run_budgets.SETUP_SEEDS["digits"]]
        + [{"name": "mnist1d", "seed": s} for s in run_budgets.SEEDS]
    ).startswith("0, 1, 2 (digits: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9: ")


def test_a_gain_that_two_decimals_would_show_as_zero_gets_three():
    assert run_budgets._gain_text(-0.0044) == "-0.004"
    assert run_budgets._gain_text(0.0) == "+0.00"
    assert run_budgets._gain_text(0.23) == "+0.23"
