"""Every bad input gets a clear error that says what is wrong."""

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_regressor
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, PredefinedSplit, ShuffleSplit
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils._param_validation import InvalidParameterError

from skadaptive import (
    AdaptiveCascadeClassifier,
    AdaptiveCascadeRegressor,
    EarlyExitClassifier,
    EarlyExitRegressor,
)
from skadaptive.metrics import (
    cheapest_within,
    make_average_cost_scorer,
    make_cost_aware_scorer,
)

X, y = load_iris(return_X_y=True)
BINARY = y < 2


def _stages():
    return [
        ("stump", DecisionTreeClassifier(max_depth=1, random_state=0)),
        ("lr", LogisticRegression(max_iter=1000)),
    ]


def _cascade(**params):
    return AdaptiveCascadeClassifier(_stages(), **{"costs": [1, 4], "cv": 3} | params)


@pytest.fixture(scope="module")
def fitted():
    return _cascade().fit(X, y)


def _frozen(estimator, X_fit=X, y_fit=y):
    return FrozenEstimator(estimator.fit(X_fit, y_fit))


# --------------------------------------------------------------- prediction


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_exit", "predict_cost", "route"]
)
def test_wrong_feature_count_at_predict(fitted, method):
    # The cascade's own check (a stage's said the same words, naming itself).
    with pytest.raises(
        ValueError,
        match="X has 3 features, but AdaptiveCascadeClassifier is expecting 4",
    ):
        getattr(fitted, method)(X[:, :3])


def test_stages_that_read_no_features_still_refuse_rows_of_another_width():
    """Without the cascade's own check, stages that never look at the
    columns (DummyClassifier, a column selector) answered rows of another
    width without a word; no test saw it go."""
    from sklearn.dummy import DummyClassifier

    cascade = AdaptiveCascadeClassifier(
        [
            ("prior", DummyClassifier(strategy="prior")),
            ("uniform", DummyClassifier(strategy="uniform", random_state=0)),
        ],
        costs=[1, 2],
        cv=3,
    ).fit(X, y)
    with pytest.raises(ValueError, match="AdaptiveCascadeClassifier is expecting 4"):
        cascade.predict(X[:, :3])


def test_one_dimensional_X_at_predict_asks_for_a_reshape(fitted):
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.predict(X[0])


def test_dataframe_columns_must_match_those_seen_in_fit():
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    cascade = _cascade().fit(df, y)
    with pytest.raises(ValueError, match="feature names should match"):
        cascade.predict(df[["a", "b", "d", "c"]])


@pytest.mark.parametrize(
    "method",
    [
        "predict",
        "predict_proba",
        "predict_log_proba",
        "predict_exit",
        "predict_cost",
        "route",
    ],
)
def test_predicting_before_fit_raises_not_fitted(method):
    with pytest.raises(NotFittedError, match="AdaptiveCascadeClassifier .*not fitted"):
        getattr(_cascade(), method)(X)


def test_scoring_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        _cascade().score(X, y)


# ------------------------------------------------------------------ stages


@pytest.mark.parametrize("stage", [SVC(), LinearSVC()], ids=["SVC", "LinearSVC"])
def test_a_stage_without_predict_proba(stage):
    cascade = AdaptiveCascadeClassifier([("cheap", stage), *_stages()[1:]])
    name = type(stage).__name__
    with pytest.raises(TypeError, match=rf"'cheap' \({name}\) has no predict_proba"):
        cascade.fit(X, y)


def test_fewer_than_two_stages():
    for estimators in ([], [("lr", LogisticRegression())]):
        with pytest.raises(ValueError, match="at least two \\(name, estimator\\)"):
            AdaptiveCascadeClassifier(estimators).fit(X, y)


@pytest.mark.parametrize(
    "item",
    [
        ["lr", LogisticRegression()],
        ("lr",),
        ("lr", LogisticRegression(), 1.0),
        (3, LogisticRegression()),
        LogisticRegression(),
    ],
    ids=["list", "no-estimator", "triple", "int-name", "bare-estimator"],
)
def test_malformed_stage_items(item):
    cascade = AdaptiveCascadeClassifier([_stages()[0], item])
    with pytest.raises(ValueError, match="Each stage must be a \\(name, estimator\\)"):
        cascade.fit(X, y)


@pytest.mark.parametrize("removed", ["drop", "passthrough", None])
def test_a_dropped_stage_says_to_remove_it(removed):
    """scikit-learn's ensembles take "drop"; a cascade said the string had no
    predict_proba (a regressor's: use the classifier)."""
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    from skadaptive import AdaptiveCascadeRegressor

    cascade = _cascade().set_params(lr=removed)
    with pytest.raises(TypeError, match=f"Stage 'lr' is {removed!r}, not an est"):
        cascade.fit(X, y)
    regressor = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor())], costs=[1, 4], cv=3
    ).set_params(tree=removed)
    with pytest.raises(TypeError, match="Remove the stage from estimators"):
        regressor.fit(X, y.astype(float))


def test_duplicate_stage_names():
    cascade = AdaptiveCascadeClassifier(
        [("m", DecisionTreeClassifier()), ("m", LogisticRegression())]
    )
    with pytest.raises(ValueError, match=r"names must be unique; got \['m', 'm'\]"):
        cascade.fit(X, y)


def test_frozen_stages_with_different_classes():
    binary = _frozen(LogisticRegression(), X[BINARY], y[BINARY])
    three = _frozen(DecisionTreeClassifier(max_depth=2))
    cascade = AdaptiveCascadeClassifier([("bin", binary), ("all", three)], costs=[1, 2])
    with pytest.raises(
        ValueError,
        match=re.escape("disagree on their classes: 'bin' predicts [0, 1] but 'all'"),
    ):
        cascade.fit(X, y)


def test_y_with_labels_the_frozen_stages_do_not_know():
    stages = [
        ("a", _frozen(LogisticRegression(), X[BINARY], y[BINARY])),
        ("b", _frozen(DecisionTreeClassifier(max_depth=2), X[BINARY], y[BINARY])),
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 2])
    with pytest.raises(
        ValueError,
        match=re.escape("y contains labels [2] that the frozen stages do not predict"),
    ):
        cascade.fit(X, y)


def test_string_labels_unknown_to_frozen_stages():
    names = np.array(["setosa", "versicolor", "virginica"])
    stages = [
        ("a", _frozen(LogisticRegression(max_iter=1000), X, names[y])),
        ("b", _frozen(DecisionTreeClassifier(max_depth=2), X, names[y])),
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 2])
    with pytest.raises(ValueError, match="labels \\['rose'\\] that the frozen"):
        cascade.fit(X, np.where(y == 0, "rose", names[y]))


def test_fewer_classes_than_the_frozen_stages_when_others_are_fitted():
    stages = [
        ("frozen", _frozen(LogisticRegression(max_iter=1000))),
        ("fitted", DecisionTreeClassifier()),
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 2], cv=3)
    with pytest.raises(ValueError, match="stages fitted here would predict a diff"):
        cascade.fit(X[BINARY], y[BINARY])


def test_frozen_stage_of_an_unfitted_model():
    stages = [("lr", FrozenEstimator(LogisticRegression())), _stages()[0]]
    with pytest.raises(
        NotFittedError, match="'lr' is a FrozenEstimator of an unfitted Logistic"
    ):
        AdaptiveCascadeClassifier(stages, costs=[1, 2]).fit(X, y)


@pytest.mark.parametrize(
    "model",
    [
        RandomForestClassifier(5),
        GradientBoostingClassifier(n_estimators=5),
        RandomForestRegressor(5),
    ],
    ids=type,
)
def test_early_exits_over_a_frozen_unfitted_model(model):
    # It failed inside the exits with an AttributeError ('estimators_').
    regression = is_regressor(model)
    estimator = (EarlyExitRegressor if regression else EarlyExitClassifier)(
        FrozenEstimator(model), exits=[2, 5]
    )
    with pytest.raises(
        NotFittedError,
        match=f"FrozenEstimator of an unfitted {type(model).__name__}: fit it",
    ):
        estimator.fit(X, X[:, 0] if regression else y)


def test_frozen_stage_fitted_on_other_features():
    stages = [
        ("lr", _frozen(LogisticRegression(max_iter=1000), X[:, :3])),
        _stages()[0],
    ]
    with pytest.raises(ValueError, match="X has 4 features, but LogisticRegression"):
        AdaptiveCascadeClassifier(stages, costs=[1, 2], cv=3).fit(X, y)


@pytest.mark.parametrize("regression", [False, True], ids=["classifier", "regressor"])
def test_a_frozen_backbone_fitted_on_other_features_is_named_with_the_fix(regression):
    """The cascades named a frozen stage that refused X and said what to do;
    an early exit's frozen backbone gave scikit-learn's words alone."""
    from sklearn.ensemble import GradientBoostingRegressor

    from skadaptive import EarlyExitRegressor

    if regression:
        model, estimator = GradientBoostingRegressor, EarlyExitRegressor
    else:
        model, estimator = GradientBoostingClassifier, EarlyExitClassifier
    backbone = model(n_estimators=4, random_state=0).fit(X[:, :3], y)
    with pytest.raises(
        ValueError,
        match=rf"Stage 'estimator' \(a frozen {model.__name__}\) refused the first "
        r"row of X: X has 4 features, .*pass the rows it was trained on",
    ):
        estimator(FrozenEstimator(backbone), exits=[2, 4]).fit(X, y)


def test_a_frozen_chain_fitted_on_other_features_is_named_with_the_fix():
    """A chain of blocks and heads is a multi-exit source as well as a
    classifier: it was left out of the check, and its head's words came from
    inside the fold fitting."""
    from sklearn.preprocessing import StandardScaler

    from skadaptive.stages import ChainExits

    chain = ChainExits(
        ["passthrough", StandardScaler()],
        [LogisticRegression(max_iter=1000), LogisticRegression(max_iter=1000)],
    ).fit(X[:, :3], y)
    with pytest.raises(
        ValueError,
        match=r"Stage 'estimator' \(a frozen ChainExits\) refused the first row "
        r"of X: X has 4 features, .*pass the rows it was trained on",
    ):
        EarlyExitClassifier(FrozenEstimator(chain), costs=[1, 2]).fit(X, y)


# -------------------------------------------------------------------- costs


@pytest.mark.parametrize(
    "costs, message",
    [
        ([1, -2], "costs must be finite and non-negative; got lr=-2.0"),
        ([np.nan, 2], "costs must be finite and non-negative; got stump=nan"),
        ([1, np.inf], "costs must be finite and non-negative; got lr=inf"),
        ([1, 2, 3], r"one per-row cost per stage \(2 for stages .*got shape \(3,\)"),
        ([1], r"one per-row cost per stage \(2 .*got shape \(1,\)"),
        ([[1, 2]], r"got shape \(1, 2\)"),
        ([0, 0], "costs are all zero"),
        (["cheap", "dear"], "costs must be 'auto' or numbers, one per stage"),
    ],
    ids=["negative", "nan", "inf", "too-many", "too-few", "2d", "zero", "strings"],
)
def test_bad_costs(costs, message):
    with pytest.raises(ValueError, match=message):
        _cascade(costs=costs).fit(X, y)


def test_costs_given_as_an_array_are_accepted():
    """Not an error: ``costs_`` passed back as ``costs`` (an ndarray) must work."""
    cascade = _cascade(costs=np.array([1.0, 4.0])).fit(X, y)
    np.testing.assert_array_equal(cascade.costs_, [1.0, 4.0])


@pytest.mark.parametrize("budget", [0.5, 0.999])
def test_budget_below_the_first_stage_cost(budget):
    gap = f"{1 - budget:g}"
    with pytest.raises(
        ValueError,
        match=rf"budget={budget:g} per row cannot be met: answering every row at "
        rf"the first stage \('stump'\) already costs 1, {gap} over the budget "
        r".*the stages' costs: \[1, 4\]",
    ):
        _cascade(costs=[1, 4], budget=budget).fit(X, y)


def test_a_tiny_budget_says_how_far_over_it_is_in_a_few_characters():
    """1e-300 was 1e302 percent over, printed with all its 303 digits."""
    with pytest.raises(ValueError) as error:
        _cascade(costs=[1, 4], budget=1e-300).fit(X, y)
    assert "over the budget (1e+302%)" in str(error.value)
    assert len(str(error.value)) < 400  # 303 digits made it over 600
    with pytest.raises(ValueError, match=r"over the budget \(more than 1e\+308%\)"):
        _cascade(costs=[1, 4], budget=5e-324).fit(X, y)


def test_budget_below_the_first_stage_cost_says_what_to_change():
    """The advice fits the estimator: a cascade puts a cheaper stage first
    (and is told about per-call costs only where its first stage has them);
    an early exit adds an earlier exit where there is room for one, and
    otherwise is only told the smallest budget."""
    with pytest.raises(ValueError) as error:
        _cascade(costs=[1, 4], budget=0.5).fit(X, y)
    assert "Raise the budget to at least 1, or put a cheaper stage first." in str(
        error.value
    )
    assert "per call" not in str(error.value)
    # A budget of at most 1 may be meant as a share of the full cost.
    assert (
        "(a budget is in the units of the costs, per row, not a share of the "
        "full cost: a share f of it is f * 5)" in str(error.value)
    )
    with pytest.raises(ValueError) as error:
        _cascade(costs=[3, 4], budget=2).fit(X, y)
    assert "not a share of the full cost" not in str(error.value)
    # A recalibration keeps the stages: another first stage means a new fit.
    fitted = _cascade(costs=[1, 4], budget=2).fit(X, y)
    with pytest.raises(ValueError) as error:
        fitted.recalibrate(X, budget=0.5)
    assert str(error.value).endswith("put a cheaper stage first and fit again.")
    with pytest.raises(ValueError) as error:
        fitted.with_policy(budget=0.5)
    assert str(error.value).endswith("put a cheaper stage first and fit again.")
    with pytest.raises(ValueError, match="a cost per call is spread over"):
        _cascade(
            costs={"per_row": [1, 4], "per_call": [100, 0]},
            cost_batch_size=10,
            budget=5,
        ).fit(X, y)
    # A part per call at a later stage only: larger calls do not help.
    with pytest.raises(ValueError) as error:
        _cascade(costs={"per_row": [3, 5], "per_call": [0, 100]}, budget=2).fit(X, y)
    assert str(error.value).endswith("put a cheaper stage first.")
    model = GradientBoostingClassifier(n_estimators=20, random_state=0)
    with pytest.raises(ValueError) as error:
        EarlyExitClassifier(model, exits=[10, 20], budget=5).fit(X, y)
    message = str(error.value)
    assert "'exit 0') already costs 10" in message
    assert "Raise the budget to at least 10, or add an earlier exit" in message
    assert "stage" not in message.split("Raise")[1]
    # The first exit at one tree: no earlier one to add.
    with pytest.raises(ValueError) as error:
        EarlyExitClassifier(model, exits=[1, 20], budget=0.5).fit(X, y)
    assert str(error.value).endswith("Raise the budget to at least 1.")
    with pytest.raises(ValueError, match="give the first exit a lower cost, or add"):
        EarlyExitClassifier(model, exits=[10, 20], costs=[3.0, 1.0], budget=2).fit(X, y)


def test_budget_below_tiny_first_stage_cost_shows_the_costs():
    """Costs far below one are printed as they are, not rounded to zero."""
    with pytest.raises(ValueError, match=r"the stages' costs: \[3e-13, 5e-13\]"):
        _cascade(costs=[3e-13, 5e-13], budget=1e-13).fit(X, y)


def test_budget_below_the_measured_first_stage_cost():
    with pytest.raises(ValueError, match="cannot be met: answering every row at"):
        _cascade(costs="auto", budget=1e-15).fit(X, y)


def test_budget_equal_to_the_first_stage_cost_is_met():
    """Not an error: the smallest reachable budget, on a row count where the
    average of the first stage's cost rounds up in floating point."""
    stages = [
        ("stump", _frozen(DecisionTreeClassifier(max_depth=1, random_state=0))),
        ("lr", _frozen(LogisticRegression(max_iter=1000))),
    ]
    rows = np.arange(0, 150, 10)  # 15 rows: 15 * 0.2 / 15 > 0.2
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 4], budget=1.0)
    cascade.fit(X[rows], y[rows])
    # Reported as computed: the float average may exceed 1.0 in the last bit.
    assert cascade.policy_rows_cost_ == pytest.approx(1.0, rel=1e-12)
    assert cascade.expected_cost_ == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(cascade.predict_exit(X), 0)


def test_budget_equal_to_the_first_stage_cost_but_for_rounding_is_met():
    """Not an error: 0.1 + 0.2 is 0.30000000000000004, and a budget of 0.3 is
    that cost up to the budget search's rounding allowance."""
    stages = [
        ("stump", _frozen(DecisionTreeClassifier(max_depth=1, random_state=0))),
        ("lr", _frozen(LogisticRegression(max_iter=1000))),
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[0.1 + 0.2, 1.0], budget=0.3)
    cascade.fit(X, y)
    np.testing.assert_array_equal(cascade.predict_exit(X), 0)
    assert cascade.policy_rows_cost_ == pytest.approx(0.3, rel=1e-12)
    # A millionth below is no rounding error.
    with pytest.raises(ValueError, match="cannot be met"):
        clone(cascade).set_params(budget=0.3 * (1 - 1e-6)).fit(X, y)


# --------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "param, value",
    [
        ("estimators", tuple(_stages())),
        ("costs", "fast"),
        ("costs", 3.0),
        ("cost_weight", -0.1),
        ("budget", 0),
        ("budget", -1.0),
        ("policy", "greedy"),
        ("policy", 3),
        ("policy_features", "everything"),
        ("tune_threshold", "yes"),
        ("loss", "hinge"),
        ("cv", 1),
        ("cv", 1.5),
        ("cv", "five"),
        ("memory", 3),
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("n_jobs", 1.5),
        ("random_state", "seed"),
        ("verbose", "loud"),
    ],
)
def test_invalid_parameter_values(param, value):
    cascade = _cascade().set_params(**{param: value})
    match = f"The '{param}' parameter of AdaptiveCascadeClassifier must be"
    with pytest.raises(InvalidParameterError, match=match):
        cascade.fit(X, y)


@pytest.mark.parametrize(
    "method",
    [
        "predict",
        "predict_proba",
        "predict_exit",
        "predict_cost",
        "route",
        "recalibrate",
    ],
)
@pytest.mark.parametrize(
    "param, value", [("batch_size", 0), ("batch_size", 2.5), ("n_jobs", 1.5)]
)
def test_prediction_parameters_set_after_fit_are_checked_in_the_estimators_words(
    fitted, method, param, value
):
    """Set after fit, batch_size=0 met scikit-learn's gen_batches deep inside
    the routing: "The 'batch_size' parameter of gen_batches must be ...", a
    function the user never called."""
    model = copy.deepcopy(fitted).set_params(**{param: value})
    with pytest.raises(
        InvalidParameterError,
        match=rf"The '{param}' parameter of AdaptiveCascadeClassifier must be",
    ):
        getattr(model, method)(X[:5])


def test_policy_that_is_not_a_classifier():
    with pytest.raises(
        TypeError, match="policy must be the name of a policy family or"
    ):
        _cascade(policy=LinearRegression()).fit(X, y)


def test_policy_classifier_without_sample_weight():
    with pytest.raises(TypeError, match="KNeighborsClassifier.*does not accept samp"):
        _cascade(policy=KNeighborsClassifier()).fit(X, y)


@pytest.mark.parametrize("estimator", ["cascade", "early_exit"])
def test_cv_that_tests_rows_it_trains_on(estimator):
    rows = np.arange(len(y))
    leaky = [(rows, rows[::2]), (rows[::2], rows[1::2])]
    model = (
        _cascade(cv=leaky)
        if estimator == "cascade"
        else EarlyExitClassifier(RandomForestClassifier(10, random_state=0), cv=leaky)
    )
    with pytest.raises(
        ValueError, match=r"cv's split 0 tests 75 of the rows it trains on \(rows"
    ):
        model.fit(X, y)
    # One row is enough to be refused.
    one = [(np.r_[rows[::2], 1], rows[1::2]), (rows[1::2], rows[::2])]
    with pytest.raises(
        ValueError, match=r"split 0 tests 1 of the rows .*\(rows \[1\]\)"
    ):
        model.set_params(cv=one).fit(X, y)


def test_cv_that_tests_a_row_twice():
    with pytest.raises(ValueError, match="each row in at most one test fold"):
        _cascade(cv=ShuffleSplit(n_splits=3, random_state=0)).fit(X, y)


@pytest.mark.parametrize("cv", [3, KFold(2)])
def test_refit_false_with_several_splits_in_an_early_exit_model(cv):
    # A cascade keeps each stage's fold models; one model with exits cannot.
    from sklearn.ensemble import GradientBoostingClassifier

    from skadaptive import EarlyExitClassifier

    early_exit = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=6, random_state=0),
        exits=[3, 6],
        cv=cv,
        refit=False,
    )
    # A group splitter with one split is named for grouped rows.
    with pytest.raises(
        ValueError,
        match=r"refit=False .* cv must give one split.* "
        r"GroupShuffleSplit\(n_splits=1\) where rows are grouped",
    ):
        early_exit.fit(X, y)
    _cascade(cv=3, refit=False).fit(X, y)


def test_refit_false_with_a_class_missing_from_the_training_part():
    # Class 3 only in the held-out part: the kept stages could never answer it.
    rows = np.arange(len(y))
    labels = np.where(rows % 10 == 0, 3, y)
    cv = PredefinedSplit(np.where((labels == 3) | (rows % 4 == 0), 0, -1))
    with pytest.raises(ValueError, match=r"no row of class\(es\) \[3\].*refit=True"):
        _cascade(cv=cv, refit=False).fit(X, labels)
    # Refitted on all rows, the stages see every class.
    _cascade(cv=cv).fit(X, labels)


# ---------------------------------------------------------------- fit data


def test_continuous_y():
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        _cascade().fit(X, y + 0.5)


def test_y_of_another_length():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _cascade().fit(X, y[:100])


def test_y_of_another_length_with_frozen_stages_only():
    frozen = [(name, _frozen(est)) for name, est in _stages()]
    with pytest.raises(
        ValueError, match=r"inconsistent numbers of samples: \[150, 100\]"
    ):
        AdaptiveCascadeClassifier(frozen, costs=[1, 4]).fit(X, y[:100])


def test_evaluate_frontier_with_y_or_sample_weight_of_another_length(fitted):
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fitted.evaluate_frontier(X, y[:100])
    with pytest.raises(ValueError, match=re.escape("sample_weight.shape == (3,)")):
        fitted.evaluate_frontier(X, y, sample_weight=np.ones(3))


def test_two_dimensional_y():
    with pytest.raises(ValueError, match="y should be a 1d array"):
        _cascade().fit(X, np.column_stack([y, y]))


def test_sample_weight_of_another_length():
    with pytest.raises(ValueError, match=re.escape("sample_weight.shape == (3,)")):
        _cascade().fit(X, y, sample_weight=np.ones(3))


def test_fit_params_without_metadata_routing():
    with pytest.raises(ValueError, match="only supported if enable_metadata_routing"):
        _cascade().fit(X, y, groups=np.zeros(len(y)))


def test_sample_weight_routed_to_a_stage_that_did_not_say_whether_it_wants_it():
    with config_context(enable_metadata_routing=True):
        cascade = _cascade()
        with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
            cascade.fit(X, y, sample_weight=np.ones(len(y)))


def test_refit_on_texts_forgets_the_feature_count_of_an_earlier_fit():
    """Not an error: a cascade refitted on texts predicts texts."""
    texts = [f"word{label} filler text" for label in y]
    stages = [
        (name, make_pipeline(HashingVectorizer(n_features=64), LogisticRegression()))
        for name in ("a", "b")
    ]
    cascade = AdaptiveCascadeClassifier(_stages(), costs=[1, 2], cv=3).fit(X, y)
    assert cascade.n_features_in_ == 4
    cascade.set_params(estimators=stages).fit(texts, y)
    assert not hasattr(cascade, "n_features_in_")
    np.testing.assert_array_equal(cascade.predict(texts[:5]), y[:5])


# ------------------------------------------------------------------ scorers


def test_cost_aware_scorer_on_an_estimator_without_costs():
    lr = LogisticRegression(max_iter=1000).fit(X, y)
    with pytest.raises(TypeError, match="LogisticRegression does not report per-row"):
        make_cost_aware_scorer(0.1)(lr, X, y)
    with pytest.raises(TypeError, match="does not report per-row costs"):
        make_average_cost_scorer()(lr, X, y)


def test_cost_aware_scorer_takes_labels_of_another_type_as_score_does():
    # Strings against number classes: scikit-learn's accuracy refuses the mix
    # (from 1.9; up to 1.8 it counts every row wrong), and so must the scorer, not
    # give a score of its own.
    cascade = _cascade().fit(X, y)
    scorer = make_cost_aware_scorer(0.0)
    try:
        expected = cascade.score(X, y.astype(str))
    except ValueError as error:
        assert "Mix of label input types" in str(error)
        with pytest.raises(ValueError, match="Mix of label input types"):
            scorer(cascade, X, y.astype(str))
    else:
        assert scorer(cascade, X, y.astype(str)) == expected


@pytest.mark.parametrize("normalize", ["no", 0, None])
def test_scorers_take_normalize_as_a_bool_only(normalize):
    with pytest.raises(TypeError, match="normalize must be True or False"):
        make_cost_aware_scorer(0.1, normalize=normalize)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        make_average_cost_scorer(normalize=normalize)
    make_average_cost_scorer(normalize=np.bool_(False))


@pytest.mark.parametrize("cost_weight", [-1.0, np.nan, np.inf])
def test_cost_aware_scorer_with_a_bad_cost_weight(cost_weight):
    with pytest.raises(ValueError, match="cost_weight must be finite and >= 0"):
        make_cost_aware_scorer(cost_weight)


@pytest.mark.parametrize(
    "weight, message",
    [
        (np.ones(10), r"sample_weight.shape == \(10,\), expected \(150,\)"),
        (-np.ones(150), "Negative values in data passed to `sample_weight`"),
        (np.full(150, np.nan), "sample_weight contains NaN"),
        (np.zeros(150), "non-zero|sums to zero"),
        (np.full(150, 1e307), "sums to more than float64 can hold"),
    ],
    ids=["length", "negative", "nan", "zero", "overflow"],
)
def test_scoring_with_bad_sample_weight(fitted, weight, message):
    """The scorers and the display's from_predictions check the weights as
    scikit-learn's metrics do (a deep matmul error, a NaN score, or a
    negative weight counted silently, before)."""
    from skadaptive.plot import CostAccuracyDisplay

    for scorer in (make_cost_aware_scorer(0.1), make_average_cost_scorer()):
        with pytest.raises(ValueError, match=message):
            scorer(fitted, X, y, sample_weight=weight)
    with pytest.raises(ValueError, match=message):
        CostAccuracyDisplay.from_predictions(
            y, [fitted.predict(X)], [fitted.predict_cost(X)], sample_weight=weight
        )


def test_cheapest_within_without_its_metrics():
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        cheapest_within(-0.1)
    for bad in ("0.01", None, True):
        with pytest.raises(TypeError, match="tolerance must be a number"):
            cheapest_within(bad)
    refit = cheapest_within(0.01)
    with pytest.raises(KeyError, match="needs 'mean_test_neg_average_cost'") as error:
        refit({"mean_test_accuracy": np.array([0.9])})
    # The other fix: name the search's own scorers.
    assert "cheapest_within(tolerance, score=..., cost=...)" in str(error.value)


class _UnsortedClassesModel(ClassifierMixin, BaseEstimator):
    """A prefit third-party model whose classes_ are not sorted."""

    def fit(self, X, y):
        self.classes_ = np.array([2, 0, 1])
        return self

    def predict_proba(self, X):
        return np.full((len(X), 3), 1 / 3)


def test_frozen_stage_with_unsorted_classes_is_rejected():
    X, y = make_classification(60, n_classes=3, n_informative=3, random_state=0)
    frozen = FrozenEstimator(_UnsortedClassesModel().fit(X, y))
    cascade = AdaptiveCascadeClassifier(
        [("odd", frozen), ("odd_too", frozen)], costs=[1, 2]
    )
    with pytest.raises(ValueError, match="not sorted"):
        cascade.fit(X, y)


class _ReversedClasses(ClassifierMixin, BaseEstimator):
    """A consistent model whose classes_ (and columns) are in reverse order."""

    def fit(self, X, y):
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_[::-1]
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)[:, ::-1]


@pytest.mark.parametrize("answer", ["stage", "combined"])
@pytest.mark.parametrize("refit", [True, False])
def test_a_fitted_stage_with_unsorted_classes_is_rejected(answer, refit):
    # Its held-out columns were put in sorted order, but at prediction they
    # were read as they came: rows it answered got other classes' labels.
    X, y = make_classification(300, n_classes=3, n_informative=3, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("tree", DecisionTreeClassifier(max_depth=2)), ("odd", _ReversedClasses())],
        costs=[1, 5],
        cv=3,
        refit=refit,
        answer=answer,
    )
    with pytest.raises(ValueError, match=r"'odd' has classes_ \[2, 1, 0\] once fitted"):
        cascade.fit(X, y)


class _DropsTheLastClass(ClassifierMixin, BaseEstimator):
    """A model that never learns the largest class it is shown."""

    def fit(self, X, y):
        keep = y != np.max(y)
        self.model_ = LogisticRegression().fit(X[keep], y[keep])
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def test_a_fitted_stage_without_a_class_of_y_is_refused_by_name():
    X, y = make_classification(300, n_classes=3, n_informative=3, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("tree", DecisionTreeClassifier(max_depth=2)), ("odd", _DropsTheLastClass())],
        costs=[1, 5],
        cv=3,
    )
    with pytest.raises(ValueError, match=r"'odd' .* no probability column for \[2\]"):
        cascade.fit(X, y)


def test_a_float_cv_with_a_class_of_one_row():
    labels = np.r_[y[:-1], 7]  # class 7 has one row
    with pytest.raises(ValueError, match=r"cv=0.25 holds out .* \{7: 1"):
        _cascade(cv=0.25).fit(X, labels)


@pytest.mark.parametrize("estimator", ["cascade", "early_exit"])
def test_an_int_cv_with_a_class_of_one_row_names_the_stage_the_class_and_the_levers(
    estimator,
):
    # Two classes, the second of one row: the training rows of the fold that
    # holds it out have one class, which the stage's own fit refuses in its
    # own words (GradientBoosting's speak of sample_weight, which no one
    # passed). The error keeps them; its note says which stage, which class
    # and what to do.
    labels = np.zeros(len(y), dtype=int)
    labels[0] = 1
    if estimator == "cascade":
        model, stage = _cascade(cv=3), "'lr' \\(LogisticRegression\\)"
        words = "needs samples of at least 2 classes"
    else:
        model = EarlyExitClassifier(
            GradientBoostingClassifier(n_estimators=4), exits=[2, 4], cv=3
        )
        stage = "'estimator' \\(GradientBoostingClassifier\\)"
        words = "y contains 1 class"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer rows than folds
        with pytest.raises(ValueError, match=words) as error:
            model.fit(X, labels)
    (note,) = error.value.__notes__
    assert re.fullmatch(
        rf"\(raised by stage {stage}, fitted on a cross-fitting fold's training "
        r"rows, which hold no row of class\(es\) \[1\]: if that is the cause, "
        r"give those classes more rows \(or drop or merge them\), use fewer "
        r"folds, or pass the fitted model in a FrozenEstimator\)",
        note,
    ), note


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_a_stages_own_refusal_in_a_fold_fit_is_noted_with_the_stage(n_jobs):
    """GaussianNB refuses sparse rows in its own words, which name no stage:
    the error keeps its type and words, and its note says which stage."""
    import scipy.sparse as sp
    from sklearn.naive_bayes import GaussianNB

    cascade = AdaptiveCascadeClassifier(
        [("nb", GaussianNB()), ("lr", LogisticRegression(max_iter=1000))],
        costs=[1, 4],
        cv=3,
        n_jobs=n_jobs,
    )
    with pytest.raises(TypeError, match="Sparse data was passed") as error:
        cascade.fit(sp.csr_matrix(X), y)
    assert error.value.__notes__ == [
        "(raised by stage 'nb' (GaussianNB), fitted on a cross-fitting fold's "
        "training rows)"
    ]


def test_a_fold_lacking_a_class_does_not_take_the_blame_for_another_error():
    """With a class of one row, any error in the fold that lacks it was
    rewritten as the missing class's ValueError, sparse rows' TypeError
    included, with levers that could not fix it: it keeps its type and
    words, and the note mentions the class."""
    import scipy.sparse as sp
    from sklearn.naive_bayes import GaussianNB

    labels = (X[:, 0] > X[:, 0].mean()).astype(int)
    labels[0] = 2
    cascade = AdaptiveCascadeClassifier(
        [("nb", GaussianNB()), ("lr", LogisticRegression(max_iter=1000))],
        costs=[1, 4],
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer rows than folds
        with pytest.raises(TypeError, match="Sparse data was passed") as error:
            cascade.fit(sp.csr_matrix(X), labels)
    (note,) = error.value.__notes__
    assert "stage 'nb' (GaussianNB)" in note and "no row of class(es) [2]" in note
    # A text column is refused in the model's own words (a ValueError, or a
    # TypeError in older scikit-learn): kept as they are too.
    frame = pd.DataFrame(X, columns=list("abcd")).assign(
        city=np.where(X[:, 0] > X[:, 0].mean(), "Paris", "Rome")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises((ValueError, TypeError)) as error:
            cascade.fit(frame, labels)
    assert not str(error.value).startswith("Stage 'nb'")
    assert "if that is the cause" in error.value.__notes__[0]


def test_fold_models_missing_a_class_name_the_fold_and_the_levers():
    # Two rows of a third class, both in one fold of the content hash: that
    # fold's model never saw the class.
    from skadaptive.stages._cross_fitted import content_folds

    folds, _ = content_folds(X, 3)
    rows = np.flatnonzero(folds == 1)[:2]
    labels = y.copy()
    new_class = int(y.max()) + 1
    labels[rows] = new_class
    match = rf"fold 1 .*class\(es\) \[{new_class}\].*fewer folds"
    with pytest.raises(ValueError, match=match):
        _cascade(cv=3, refit=False).fit(X, labels)


@pytest.mark.parametrize("regression", [False, True])
def test_zero_weight_on_every_policy_row_is_refused_by_name(regression):
    """Weights only on the rows the stages are fitted on leave the policy
    nothing to learn from: a clear error, not one from inside numpy."""
    from sklearn.datasets import make_friedman1
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    from skadaptive import AdaptiveCascadeRegressor

    if regression:
        X, y = make_friedman1(200, random_state=0)
        stages = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=3))]
        make = AdaptiveCascadeRegressor
    else:
        X, y = make_classification(200, random_state=0)
        stages = [
            ("lr", LogisticRegression()),
            ("tree", DecisionTreeClassifier(max_depth=3)),
        ]
        make = AdaptiveCascadeClassifier
    weight = np.ones(200)
    weight[140:] = 0.0
    cascade = make(stages, costs=[1, 2], cv=[(np.arange(140), np.arange(140, 200))])
    message = (
        "sample_weight is 0 on every one of the 60 rows held out for the policy "
        r"\(the splits of cv, a list\): the policy has no row to learn from"
    )
    for budget in (None, 1.5):
        with pytest.raises(ValueError, match=message):
            cascade.set_params(budget=budget).fit(X, y, sample_weight=weight)
    weight[150] = 1.0  # one policy row is enough to learn from
    cascade.fit(X, y, sample_weight=weight)


# ------------------------------------------------- the public helpers' inputs
def _forest_exits():
    from sklearn.ensemble import RandomForestClassifier

    from skadaptive.stages import TreeEnsembleExits

    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y)
    return TreeEnsembleExits(forest, [2, 8]), forest, X


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_timing_helpers_refuse_repeats_that_time_nothing(repeats):
    """repeats=0 timed nothing and gave every stage a cost of zero."""
    from skadaptive.stages import (
        measure_exit_seconds,
        measure_exit_seconds_per_row,
        measure_seconds_per_row,
    )

    exits, forest, X = _forest_exits()
    for measure, source in (
        (measure_exit_seconds, exits),
        (measure_exit_seconds_per_row, exits),
        (measure_seconds_per_row, [forest.predict_proba]),
    ):
        with pytest.raises(ValueError, match="repeats must be an int >= 1"):
            measure(source, X, repeats=repeats)


@pytest.mark.parametrize(
    "y, params, error, match",
    [
        ([1.0, 2.0, 5.0], {"loss": "huber"}, ValueError, "loss must be"),
        (
            [1.0, 2.0],
            {"sample_weight": [0.0, 0.0]},
            ValueError,
            "non-zero|sums to zero",
        ),
        ([1.0, np.nan], {}, ValueError, "y contains NaN"),
        (np.ones((3, 2)), {}, ValueError, "1d array"),
        ([1.0, 2.0], {"sample_weight": [1.0]}, ValueError, "sample_weight"),
    ],
)
def test_regression_scale_checks_its_inputs(y, params, error, match):
    from skadaptive.stages import regression_scale

    with pytest.raises(error, match=match):
        regression_scale(y, **params)


def test_cheapest_within_never_picks_a_failed_candidate():
    from skadaptive.metrics import cheapest_within

    refit = cheapest_within(0.0)
    results = {
        "mean_test_accuracy": np.array([0.9, 0.9, np.nan]),
        "mean_test_neg_average_cost": np.array([-1.0, np.nan, -0.1]),
    }
    assert refit(results) == 0  # the NaN cost is not the cheapest
    failed = {
        "mean_test_accuracy": np.array([np.nan, np.nan]),
        "mean_test_neg_average_cost": np.array([-1.0, -2.0]),
    }
    with pytest.raises(ValueError, match="every one is NaN"):
        refit(failed)


@pytest.mark.parametrize("cost_weight", [None, "0.1", True])
def test_cost_aware_scorer_needs_a_number(cost_weight):
    from skadaptive.metrics import make_cost_aware_scorer

    with pytest.raises(TypeError, match="cost_weight must be a number"):
        make_cost_aware_scorer(cost_weight)


def test_resolve_costs_keeps_each_measured_part_in_its_place():
    from sklearn.utils import Bunch

    from skadaptive._costs import resolve_costs

    measured = Bunch(per_call=np.array([1.0, 0.0]), per_row=np.array([0.0, 2.0]))
    per_row, per_call, unit = resolve_costs("auto", ["a", "b"], measured=measured)
    np.testing.assert_array_equal(per_row, [0.0, 2.0])
    np.testing.assert_array_equal(per_call, [1.0, 0.0])
    assert unit == "seconds"
    per_row, per_call, unit = resolve_costs(
        {"per_call": [3.0, 0.0], "per_row": [0.0, 4.0]}, ["a", "b"], measured=None
    )
    np.testing.assert_array_equal(per_row, [0.0, 4.0])
    np.testing.assert_array_equal(per_call, [3.0, 0.0])
    assert unit is None


def test_a_frozen_stage_fitted_on_other_columns_is_named():
    X2, y2 = make_classification(n_samples=200, n_features=12, random_state=0)
    small = FrozenEstimator(LogisticRegression().fit(X2, y2))
    big = FrozenEstimator(LogisticRegression().fit(X2[:, :8], y2))
    cascade = AdaptiveCascadeClassifier([("small", small), ("big", big)], costs=[1, 5])
    named = r"Stage 'big' \(a frozen LogisticRegression"
    with pytest.raises(ValueError, match=named) as e:
        cascade.fit(X2, y2)
    assert "12 features" in str(e.value) and "expecting 8" in str(e.value)
    # A pipeline that picks its columns by name takes more columns, in any
    # order, than it was fitted on: it is not refused.
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame(X2, columns=[f"f{i}" for i in range(12)])
    picky = make_pipeline(
        make_column_transformer((StandardScaler(), ["f3", "f0"])),
        LogisticRegression(),
    ).fit(frame[["f0", "f3"]], y2)
    named = AdaptiveCascadeClassifier(
        [("picky", FrozenEstimator(picky)), ("lr", LogisticRegression())],
        costs=[1, 5],
        cv=3,
    ).fit(frame, y2)
    assert named.predict(frame).shape == (200,)


def test_a_frozen_regressor_stage_fitted_on_other_columns_is_named():
    from sklearn.datasets import make_friedman1

    from skadaptive import AdaptiveCascadeRegressor

    Xr, yr = make_friedman1(n_samples=200, n_features=12, random_state=0)
    small = FrozenEstimator(LinearRegression().fit(Xr, yr))
    big = FrozenEstimator(LinearRegression().fit(Xr[:, :8], yr))
    cascade = AdaptiveCascadeRegressor([("small", small), ("big", big)], costs=[1, 5])
    with pytest.raises(ValueError, match=r"Stage 'big' \(a frozen LinearRegression"):
        cascade.fit(Xr, yr)


def test_a_regressor_stage_that_predicts_before_a_fit_is_fitted():
    # GaussianProcessRegressor is tagged requires_fit=False (it predicts from
    # its prior): it is fitted like any stage, not used as given.
    from sklearn.datasets import make_friedman1
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    from skadaptive import AdaptiveCascadeRegressor

    Xr, yr = make_friedman1(n_samples=200, noise=1.0, random_state=0)
    gp = GaussianProcessRegressor(RBF() + WhiteKernel(), normalize_y=True)
    cascade = AdaptiveCascadeRegressor(
        [("linear", LinearRegression()), ("gp", gp)], costs=[1, 5], cv=3
    ).fit(Xr, yr)
    assert hasattr(cascade.estimators_[1], "X_train_")
    # Its cross-fitted error is that of a fitted model, far below the
    # variance of y that the prior (every prediction 0) would give.
    assert cascade.stage_errors_[1] < 0.5 * np.var(yr)


@pytest.mark.parametrize("router", [None, "auto"])
@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_exit", "predict_cost"]
)
def test_predicting_zero_rows_names_the_estimator(router, method):
    X3, y3 = make_classification(n_samples=300, n_features=6, random_state=0)
    costs = [0.5, 1, 10] if router else [1, 10]
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=4))],
        costs=costs,
        router=router,
        cost_weight=0.3,
        cv=3,
        random_state=0,
    ).fit(X3, y3)
    with pytest.raises(
        ValueError,
        match=r"0 sample\(s\) \(shape=\(0, 6\)\) while a minimum of 1 is required "
        "by AdaptiveCascadeClassifier",
    ):
        getattr(cascade, method)(X3[:0])


def test_a_group_splitter_without_groups_says_how_to_pass_them():
    from sklearn.model_selection import GroupKFold

    with pytest.raises(
        ValueError,
        match=r"cv=GroupKFold.* needs groups .*"
        r"enable_metadata_routing=True.*groups=groups",
    ):
        _cascade(cv=GroupKFold(3)).fit(X, y)


@pytest.mark.parametrize(
    "cv, fix",
    [
        (
            0.25,
            r"hold-out of 25 % .* cv=GroupShuffleSplit\(n_splits=1, test_size=0.25\)",
        ),
        (3, r"cv=GroupKFold\(3\)"),
    ],
)
def test_groups_with_a_cv_that_takes_none_name_the_group_splitter(cv, fix):
    """Routed groups with a fraction or a number of folds: scikit-learn's
    refusal said only that nothing requested them."""
    import sklearn
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit

    groups = np.arange(len(y)) // 4
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(TypeError, match=r"not routed to any object.*" + fix):
            _cascade(cv=cv).fit(X, y, groups=groups)
        # The splitter named fits.
        splitter = (
            GroupKFold(3)
            if cv == 3
            else GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
        )
        _cascade(cv=splitter).fit(X, y, groups=groups)


def test_memory_with_a_stage_that_cannot_be_hashed_names_the_fix(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    stages = [
        ("lr", make_pipeline(FunctionTransformer(lambda Z: Z), LogisticRegression())),
        ("tree", DecisionTreeClassifier(max_depth=3)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 4], cv=3, memory=str(tmp_path)
    )
    with pytest.raises(TypeError, match="a stage cannot be hashed .* memory=None"):
        cascade.fit(X, y)
    # Without memory it fits.
    cascade.set_params(memory=None).fit(X, y)


def test_rows_that_are_not_a_collection_are_refused_before_any_stage():
    """A cascade of texts takes rows of any kind, so nothing else checked
    them: [] failed with an IndexError inside scikit-learn, None, a string
    and a dict deep inside the package."""
    from _texts import text_cascade

    cascade = text_cascade(cv=2)
    assert cascade.predict(["good good"]).tolist() == [1]
    for method in ("predict", "predict_exit", "predict_cost"):
        for bad in (None, "good good", {"a": 1}, 5):
            with pytest.raises(
                TypeError, match="AdaptiveCascadeClassifier takes rows: an array"
            ):
                getattr(cascade, method)(bad)
        for empty in ([], np.array([])):
            with pytest.raises(
                ValueError, match="needs at least one row to predict; X has 0"
            ):
                getattr(cascade, method)(empty)


def test_estimates_that_cannot_be_held_out_say_they_are_in_sample():
    """cv=0.01 on 300 rows learns the policy from 3 rows: expected_cost_ and
    expected_accuracy_ are then the policy rows' own figures, and a warning
    says so (it was silent, reading an accuracy of 1.0)."""
    X, y = make_classification(300, n_classes=3, n_informative=4, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression()),
            ("tree", DecisionTreeClassifier(random_state=0)),
        ],
        costs=[1, 10],
        cv=0.01,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="expected_accuracy_\\) are in sample"):
        cascade.fit(X, y)
    assert cascade.expected_accuracy_ == cascade.policy_rows_accuracy_
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cascade.set_params(cv=0.3).fit(X, y)
    assert not [w for w in caught if "are in sample" in str(w.message)]
    # A regressor's figure is its expected_error_ (the warning named the
    # classifiers' expected_accuracy_, which a regressor does not have).
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    regressor = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))],
        costs=[1, 10],
        cv=0.01,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="expected_error_\\) are in sample"):
        regressor.fit(X, y.astype(float))


def test_a_constant_target_is_named_as_why_the_figures_are_in_sample():
    """Every stage answers a constant target alike, so 200 distinct rows
    are one for the policy: the warning sent the user to find more rows."""
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    regressor = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))],
        costs=[1, 10],
        random_state=0,
    )
    with pytest.warns(UserWarning, match="are in sample") as record:
        regressor.fit(np.arange(400.0).reshape(200, 2), np.full(200, 3.0))
    (message,) = [str(w.message) for w in record if "are in sample" in str(w.message)]
    assert "rows whose target varies: on the policy rows it is constant" in message
    assert "every stage answers alike with the same label, count once" in message
    # Three distinct rows that frozen stages answer apart, and a constant
    # target: the stages do not answer alike, and the warning must not say so.
    from sklearn.frozen import FrozenEstimator

    X_other = np.random.default_rng(0).normal(size=(100, 2))
    y_other = X_other @ [3.0, -2.0]
    frozen = [
        (name, FrozenEstimator(model.fit(X_other, y_other)))
        for name, model in (
            ("ridge", Ridge()),
            ("tree", DecisionTreeRegressor(max_depth=2, random_state=0)),
        )
    ]
    with pytest.warns(UserWarning, match="are in sample") as record:
        AdaptiveCascadeRegressor(frozen, costs=[1, 10]).fit(
            np.repeat(X_other[:3], 100, axis=0), np.full(300, 5.0)
        )
    (message,) = [str(w.message) for w in record if "are in sample" in str(w.message)]
    assert "constant" not in message


@pytest.mark.parametrize("frozen", [False, True])
def test_a_regressor_stage_in_a_classifier_cascade_points_at_the_regressor(frozen):
    """It was told to wrap the regressor in CalibratedClassifierCV, which
    cannot work."""
    X, y = load_iris(return_X_y=True)
    ridge = (
        FrozenEstimator(LinearRegression().fit(X, y)) if frozen else LinearRegression()
    )
    name = "a frozen LinearRegression" if frozen else "LinearRegression"
    with pytest.raises(
        TypeError,
        match=re.escape(f"Stage 'r' ({name}) is a regressor; an ")
        + ".*Use AdaptiveCascadeRegressor for regressors",
    ):
        AdaptiveCascadeClassifier(
            [("lr", LogisticRegression()), ("r", ridge)], costs=[1, 2], cv=3
        ).fit(X, y)


def test_every_sparse_format_is_taken_as_rows():
    """scipy's DOK formats are dicts: the check for rows refused them."""
    sp = pytest.importorskip("scipy.sparse")
    X, y = make_classification(200, n_features=6, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression()),
            ("tree", DecisionTreeClassifier(random_state=0)),
        ],
        costs=[1, 5],
        cv=3,
    ).fit(X, y)
    expected = cascade.predict(X[:5])
    for fmt in ("csr", "csc", "coo", "dok", "lil", "bsr", "dia"):
        for make in (sp.csr_matrix, sp.csr_array):
            rows = make(X[:5]).asformat(fmt)
            np.testing.assert_array_equal(cascade.predict(rows), expected)


@pytest.mark.parametrize("estimator", ["cascade", "early exit"])
def test_rows_without_features_are_refused_in_scikit_learns_words(estimator):
    """XGBoost failed deep inside (a C++ check) on rows of 0 features."""
    xgboost = pytest.importorskip("xgboost")
    booster = xgboost.XGBRegressor(n_estimators=4)
    model = (
        EarlyExitRegressor(booster, exits=[2, 4])
        if estimator == "early exit"
        else AdaptiveCascadeRegressor([("a", booster), ("b", clone(booster))])
    )
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(10, 0\)\) while"):
        model.fit(np.empty((10, 0)), np.arange(10.0))


def test_weights_that_leave_one_class_are_refused_naming_the_class():
    """LightGBM failed later, blaming its own settings ("grew 1 of the 8
    boosting rounds"); any model fitted here needs two classes."""
    lgb = pytest.importorskip("lightgbm")
    X, y = make_classification(100, random_state=0)
    weight = (y == 1).astype(float)
    model = EarlyExitClassifier(
        lgb.LGBMClassifier(n_estimators=8, verbose=-1), exits=[2, 4, 8]
    )
    with pytest.raises(ValueError, match=r"y has 1 class with positive sample_weight"):
        model.fit(X, y, sample_weight=weight)
    # Frozen stages are not fitted: their policy can learn from such rows.
    frozen = AdaptiveCascadeClassifier(
        [
            ("lr", FrozenEstimator(LogisticRegression().fit(X, y))),
            ("tree", FrozenEstimator(DecisionTreeClassifier().fit(X, y))),
        ],
        costs=[1, 3],
    )
    assert len(frozen.fit(X, y, sample_weight=weight).predict(X)) == len(X)
