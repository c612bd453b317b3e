"""What a newcomer sees: progress during long fits, and warnings about setups
that cannot pay off."""

import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier

X, Y = load_digits(return_X_y=True)


def _stages():
    return [
        ("lr", LogisticRegression(max_iter=300)),
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
    ]


def test_stages_in_the_wrong_order_of_cost_warn_with_the_figures_and_the_order():
    cascade = AdaptiveCascadeClassifier(_stages(), costs=[5.0, 1.0], cv=3)
    with pytest.warns(
        UserWarning, match=r"'tree' costs less .* 'lr' \(lr=5, tree=1"
    ) as w:
        cascade.fit(X, Y)
    assert "tree -> lr" in str(w[0].message)
    assert w[0].filename == __file__  # points at the caller's fit, not inside


def test_stages_in_order_of_cost_do_not_warn():
    cascade = AdaptiveCascadeClassifier(_stages(), costs=[1.0, 5.0], cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cascade.fit(X, Y)


def test_exits_never_warn_about_order():
    # Each exit alone costs all the computation before it: always increasing,
    # whatever the increments.
    ee = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=6, random_state=0),
        exits=[4, 6],
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ee.fit(X, Y)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_verbose_fit_reports_each_stage_and_fold_as_it_ends(capsys, n_jobs):
    AdaptiveCascadeClassifier(
        _stages(), costs="auto", cv=3, verbose=1, n_jobs=n_jobs
    ).fit(X, Y)
    lines = capsys.readouterr().out.splitlines()
    for name in ("lr", "tree"):
        for fold in (1, 2, 3):
            assert any(
                f"stage '{name}': fitted on fold {fold} of 3" in line for line in lines
            ), lines
        assert any(f"stage '{name}': refitted on all rows" in line for line in lines)
    assert any("costs='auto': timed every stage" in line for line in lines)
    assert any("policy 'linear' learned for cost_weight=0.01" in line for line in lines)
    # Steps are reported in order, each with its place among all of them.
    assert [line for line in lines if line.endswith("[6/6]")]


def test_verbose_budget_fit_names_the_kind_kept(capsys):
    """With a budget the kind of exit score kept may not be the family's own
    (here the per-stage thresholds): the verbose line says which it is."""
    fitted = AdaptiveCascadeClassifier(
        _stages(), costs=[1, 5], cv=3, budget=5.0, verbose=1
    ).fit(X, Y)
    search = fitted.budget_search_
    kept = search["scores"][search["chosen"]]
    lines = capsys.readouterr().out.splitlines()
    assert any(
        f"policy 'linear' (exit scores kept by the budget search: {kept}; see "
        "budget_search_) learned for budget=5" in line
        for line in lines
    ), lines


def test_a_quiet_fit_prints_nothing(capsys):
    AdaptiveCascadeClassifier(_stages(), costs=[1, 5], cv=3).fit(X, Y)
    assert capsys.readouterr().out == ""


def test_with_policy_shows_plain_numbers_in_its_repr():
    cascade = AdaptiveCascadeClassifier(_stages()[::-1], costs=[1, 5], cv=3).fit(X, Y)
    cheaper = cascade.with_policy(budget=0.5 * cascade.cumulative_costs_[-1])
    assert "budget=3.0" in repr(cheaper) and "np.float64" not in repr(cheaper)


def test_the_html_repr_draws_each_stage_in_a_box_of_its_own():
    """As scikit-learn's ensembles do: a box per stage under its name, and
    the cascade's own parameters in its table (every stage's parameters were
    listed flat there, as a__ccp_alpha ...)."""
    from sklearn.tree import DecisionTreeClassifier

    cascade = AdaptiveCascadeClassifier(
        [("a", DecisionTreeClassifier()), ("b", LogisticRegression())], costs=[1, 5]
    )
    block = cascade._sk_visual_block_()
    assert block.kind == "parallel" and list(block.names) == ["a", "b"]
    html = cascade._repr_html_()
    assert "a__ccp_alpha" not in html and "b__max_iter" not in html
    assert "DecisionTreeClassifier" in html and "LogisticRegression" in html
