"""BoosterExits: exits after numbers of boosting rounds of LightGBM and XGBoost."""

import functools
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from _budget_checks import assert_budget_spent_well
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skadaptive import (
    AdaptiveCascadeClassifier,
    EarlyExitClassifier,
    EarlyExitRegressor,
)
from skadaptive.stages import BoosterExits, MultiExitSource, exit_probas
from skadaptive.stages._backbones import as_multi_exit

EXITS = [3, 10, 25, 40]
# Each exit against the library's own truncated prediction. LightGBM sums in
# float64 (agrees to 1e-15); XGBoost adds in float32, as the exits do (the
# running score is its base margin), and its links are float32 (1e-7).
ATOL = 1e-6
LIBRARIES = ["lightgbm", "xgboost"]
TASKS = ["binary", "multiclass", "regression"]


def _lib(name):
    return pytest.importorskip(name)


@functools.cache
def _data(task, seed=0):
    if task == "regression":
        X, y = make_regression(
            n_samples=300, n_features=8, n_informative=5, noise=5, random_state=seed
        )
        # Predictions below 1 (float32 margins have ulps below 1e-7 there),
        # away from 0 so that XGBoost's intercept is far from 0 too.
        return X, 0.3 + 0.1 * (y - y.mean()) / y.std()
    return make_classification(
        n_samples=300,
        n_features=8,
        n_informative=5,
        n_classes=3 if task == "multiclass" else 2,
        n_clusters_per_class=1,
        # Unbalanced binary classes: XGBoost's intercept is logit(0.3), not 0.
        weights=None if task == "multiclass" else [0.7],
        random_state=seed,
    )


def _model(library, task, **params):
    """An unfitted small model: 40 rounds, one thread."""
    lib = _lib(library)
    if library == "lightgbm":
        cls = lib.LGBMRegressor if task == "regression" else lib.LGBMClassifier
        params = {"num_leaves": 8, "verbose": -1, **params}
    else:
        cls = lib.XGBRegressor if task == "regression" else lib.XGBClassifier
        params = {"max_depth": 3, "learning_rate": 0.1, **params}
    return cls(n_estimators=40, n_jobs=1, random_state=0, **params)


@functools.cache
def _fitted(library, task):
    X, y = _data(task)
    return _model(library, task).fit(X, y)


def _booster(model):
    return model.booster_ if hasattr(model, "booster_") else model.get_booster()


def _count_fits(monkeypatch, model) -> list:
    """The fits of ``model``'s class (none happen: fit does nothing)."""
    fits = []
    monkeypatch.setattr(type(model), "fit", lambda self, *a, **k: fits.append(1))
    return fits


def _truncated(model, X, n_rounds):
    """The library's own prediction with the first ``n_rounds`` rounds."""
    if type(model).__module__.startswith("lightgbm"):
        kwargs = {"num_iteration": n_rounds}
    else:
        kwargs = {"iteration_range": (0, n_rounds)}
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X, **kwargs)
    return model.predict(X, **kwargs)


def _answers(model, source_answer):
    """What to compare with the model's own prediction."""
    return source_answer if hasattr(model, "predict_proba") else source_answer[:, 0]


# -- exactness ---------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("library", LIBRARIES)
def test_every_exit_equals_the_librarys_truncated_prediction(library, task):
    model = _fitted(library, task)
    X, _ = _data(task)
    source = BoosterExits(model, EXITS)
    assert isinstance(source, MultiExitSource)
    assert source.regression == (task == "regression")
    answers = exit_probas(source, X)
    for n_rounds, answer in zip(EXITS, answers):
        assert answer.dtype == np.float64
        assert_allclose(
            _answers(model, answer), _truncated(model, X, n_rounds), rtol=0, atol=ATOL
        )
    own = model.predict(X) if task == "regression" else model.predict_proba(X)
    assert_allclose(_answers(model, answers[-1]), own, rtol=0, atol=ATOL)
    if task == "regression":
        assert_array_equal(np.stack(answers)[:, :, 1], 0.0)
    else:
        assert_array_equal(source.classes_, model.classes_)
    # Frozen, or as a bare Booster: the same answers.
    for other in (FrozenEstimator(model), _booster(model)):
        for got, expected in zip(exit_probas(BoosterExits(other, EXITS), X), answers):
            assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("task", TASKS)
def test_xgboost_intercept_is_counted_once(task):
    """Every in-place prediction adds the intercept: the exits after the first
    replace it with a zero base margin."""
    model = _fitted("xgboost", task)
    X, _ = _data(task)
    booster = model.get_booster()
    alone = booster.inplace_predict(X, iteration_range=(10, 25), predict_type="margin")
    without = booster.inplace_predict(
        X,
        iteration_range=(10, 25),
        predict_type="margin",
        base_margin=np.zeros(np.shape(alone), dtype=np.float32),
    )
    # The intercept is far from 0 here, so counting it twice would show.
    assert np.abs(alone - without).max() > 1e-3
    source = BoosterExits(model, [10, 25, 40])
    _, state = source.run_stage(0, X, None)
    full = booster.inplace_predict(X, iteration_range=(0, 10), predict_type="margin")
    assert_allclose(state.score.ravel(), np.ravel(full), rtol=0, atol=1e-12)
    _, state = source.run_stage(1, None, state)
    full = booster.inplace_predict(X, iteration_range=(0, 25), predict_type="margin")
    # The running score is the base margin of the later rounds: XGBoost adds
    # them to it in float32, as it does to its own, so the two are equal.
    assert_array_equal(state.score.ravel(), np.ravel(full))


@pytest.mark.parametrize("task", TASKS)
def test_xgboost_exits_add_rounds_as_xgboost_does(task):
    """Many rounds on large targets: a sum of float32 margins in float64
    would differ from XGBoost's float32 sum by about 1e-5 relative."""
    X, y = _data(task)
    if task == "regression":
        y = 500 + 300 * (y - y.mean()) / y.std()  # about -400 to 1400
        assert np.abs(y).max() > 1000
    model = _model("xgboost", task, learning_rate=0.05)
    model.set_params(n_estimators=300).fit(X, y)
    booster = model.get_booster()
    exits = [7, 50, 120, 300]
    source = BoosterExits(model, exits)
    # The probabilities' float32 rounding (1 - p of a float32 p): 1e-7.
    atol = 0 if task == "regression" else 1e-7

    def check(answer, state, rows, n_rounds):
        margin = booster.inplace_predict(
            X[rows], iteration_range=(0, n_rounds), predict_type="margin"
        )
        assert_array_equal(state.score, np.reshape(margin, state.score.shape))
        expected = _truncated(model, X[rows], n_rounds)
        assert_allclose(_answers(model, answer), expected, rtol=1e-6, atol=atol)

    running = np.arange(len(X))
    state = None
    for stage, n_rounds in enumerate(exits):  # every row at every exit
        answer, state = source.run_stage(stage, X, state)
        check(answer, state, running, n_rounds)
    answer, state = source.run_stage(0, X, None)
    for stage in range(1, len(exits)):  # rows dropped between exits
        keep = np.random.default_rng(stage).random(len(running)) < 0.6
        state, running = source.keep_rows(state, keep), running[keep]
        answer, state = source.run_stage(stage, None, state)
        check(answer, state, running, exits[stage])


@pytest.mark.parametrize(
    "library, task, params",
    [
        ("lightgbm", "regression", {"objective": "poisson"}),
        ("lightgbm", "regression", {"objective": "cross_entropy_lambda"}),
        ("lightgbm", "regression", {"reg_sqrt": True}),
        ("lightgbm", "binary", {"objective": "binary", "sigmoid": 0.6}),
        ("xgboost", "regression", {"objective": "count:poisson"}),
        ("xgboost", "regression", {"objective": "reg:gamma"}),
        ("xgboost", "regression", {"objective": "reg:tweedie"}),
        ("xgboost", "regression", {"objective": "reg:logistic"}),
        ("xgboost", "multiclass", {"objective": "multi:softmax"}),
    ],
)
def test_links_of_other_objectives(library, task, params):
    X, y = _data(task)
    z = (y - y.mean()) / y.std()
    if params.get("objective") in ("poisson", "count:poisson"):
        y = np.round(np.exp(0.5 + 0.5 * z))  # counts
    elif params.get("objective") in ("reg:gamma", "reg:tweedie"):
        y = np.exp(0.5 + 0.5 * z)  # positive
    elif params.get("objective") in ("cross_entropy_lambda", "reg:logistic"):
        y = (z - z.min()) / (z.max() - z.min())  # in [0, 1]
    elif params.get("reg_sqrt"):
        y = 4 * z  # negative too: the link keeps the raw score's sign
    model = _model(library, task, **params).fit(X, y)
    if params.get("reg_sqrt"):
        assert (model.predict(X) < -1).mean() > 0.2
    answers = exit_probas(BoosterExits(model, EXITS), X)
    for n_rounds, answer in zip(EXITS, answers):
        assert_allclose(
            _answers(model, answer),
            _truncated(model, X, n_rounds),
            rtol=1e-6,
            atol=ATOL,
        )


def test_xgboost_missing_value_marker_is_the_models():
    """A model fitted with missing=0 reads zeros as missing values at every
    exit too."""
    X, y = _data("regression")
    X = np.where(np.abs(X) < 0.7, 0.0, X)  # about half the values are 0
    model = _model("xgboost", "regression", missing=0.0).fit(X, y)
    # Read as values, the zeros would give other predictions.
    as_values = _booster(model).inplace_predict(X, iteration_range=(0, 40))
    assert np.abs(as_values - model.predict(X)).max() > 0.01
    answers = exit_probas(BoosterExits(model, EXITS), X)
    for n_rounds, answer in zip(EXITS, answers):
        assert_allclose(answer[:, 0], _truncated(model, X, n_rounds), atol=ATOL)


@pytest.mark.parametrize("library", LIBRARIES)
def test_boosters_with_a_softmax_of_two_classes(library):
    """A multiclass objective of two classes: two raw scores, a softmax."""
    lib = _lib(library)
    X, y = _data("binary")
    if library == "lightgbm":
        params = {"objective": "multiclass", "num_class": 2, "verbose": -1}
        booster = lib.train({**params, "num_threads": 1}, lib.Dataset(X, y), 20)

        def truncated(n_rounds):
            return booster.predict(X, num_iteration=n_rounds)

    else:
        params = {"objective": "multi:softprob", "num_class": 2, "nthread": 1}
        booster = lib.train(params, lib.DMatrix(X, y), 20)

        def truncated(n_rounds):
            return booster.predict(lib.DMatrix(X), iteration_range=(0, n_rounds))

    source = BoosterExits(booster, [5, 20])
    assert_array_equal(source.classes_, [0, 1])
    for n_rounds, answer in zip([5, 20], exit_probas(source, X)):
        assert answer.shape == (len(X), 2)
        assert_allclose(answer, truncated(n_rounds), rtol=1e-6, atol=ATOL)
    ee = EarlyExitClassifier(booster, exits=[5, 20]).fit(X, y)
    assert_array_equal(ee.classes_, [0, 1])
    assert ee.score(X, y) > 0.8


# -- compaction --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["array", "sparse", "dataframe"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("library", LIBRARIES)
def test_rows_dropped_between_exits_keep_their_answers(library, task, kind):
    model = _fitted(library, task)
    X, _ = _data(task)
    if kind == "sparse":
        X = sp.csr_array(np.where(np.abs(X) < 0.3, 0.0, X))
    elif kind == "dataframe":
        pd = pytest.importorskip("pandas")
        X = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    source = BoosterExits(model, EXITS)
    expected = exit_probas(source, X)
    if kind == "sparse":  # the libraries' own answers on the sparse rows
        own = model.predict(X) if task == "regression" else model.predict_proba(X)
        assert_allclose(_answers(model, expected[-1]), own, rtol=0, atol=ATOL)
    rng = np.random.default_rng(0)
    running = np.arange(X.shape[0])
    answer, state = source.run_stage(0, X, None)
    assert_allclose(answer, expected[0], rtol=0, atol=1e-12)
    for stage in range(1, len(EXITS)):
        keep = rng.random(len(running)) < 0.7
        state = source.keep_rows(state, keep)
        running = running[keep]
        answer, state = source.run_stage(stage, None, state)
        assert answer.shape[0] == len(running) > 0
        assert_allclose(answer, expected[stage][running], rtol=0, atol=1e-12)
    assert source.keep_rows(None, keep) is None
    with pytest.raises(ValueError, match="rows"):
        source.run_stage(1, X, state)
    with pytest.raises(ValueError, match="state"):
        source.run_stage(1, None, None)


def test_costs_protocol_and_pickle():
    model = _fitted("lightgbm", "multiclass")
    X, _ = _data("multiclass")
    source = BoosterExits(model, EXITS)
    assert source.n_stages == 4 and source.rows_in_state
    assert source.cost_unit == "rounds" and source.n_rounds == 40
    assert_array_equal(source.round_counts, [3, 7, 15, 15])
    assert_array_equal(source.default_costs(), [3.0, 7.0, 15.0, 15.0])
    restored = pickle.loads(pickle.dumps(source))
    for got, expected in zip(exit_probas(restored, X), exit_probas(source, X)):
        assert_array_equal(got, expected)
    with pytest.raises(IndexError):
        source.run_stage(4, X, None)


def test_importing_skadaptive_imports_neither_library():
    code = (
        "import sys, skadaptive, skadaptive.stages; "
        "assert 'lightgbm' not in sys.modules and 'xgboost' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- early stopping ----------------------------------------------------------


def test_lightgbm_predicts_with_its_best_iteration():
    lgb = _lib("lightgbm")
    X, y = _data("binary")
    train, valid = lgb.Dataset(X[:200], y[:200]), lgb.Dataset(X[200:], y[200:])
    booster = lgb.train(
        {"objective": "binary", "learning_rate": 0.5, "num_threads": 1, "verbose": -1},
        train,
        60,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(3, verbose=False)],
        keep_training_booster=True,  # keeps the rounds after the best one
    )
    best = booster.best_iteration
    assert 1 < best < booster.current_iteration()
    source = as_multi_exit(booster, None)
    assert source.exits[-1] == best
    assert_allclose(
        exit_probas(source, X)[-1][:, 1], booster.predict(X), rtol=0, atol=1e-12
    )
    with pytest.raises(
        ValueError, match=f"best iteration from early stopping \\({best}"
    ):
        BoosterExits(booster, [1, booster.current_iteration()])


def test_xgboost_models_predict_with_best_iteration_their_boosters_with_all():
    xgb = _lib("xgboost")
    X, y = _data("binary")
    model = _model("xgboost", "binary", early_stopping_rounds=3, learning_rate=0.5)
    model.set_params(n_estimators=60).fit(
        X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False
    )
    booster = model.get_booster()
    assert model.best_iteration + 1 < booster.num_boosted_rounds()
    source = BoosterExits(FrozenEstimator(model), [2, model.best_iteration + 1])
    assert_allclose(
        exit_probas(source, X)[-1], model.predict_proba(X), rtol=0, atol=ATOL
    )
    everything = as_multi_exit(booster, None)
    assert everything.exits[-1] == booster.num_boosted_rounds()
    assert_allclose(
        exit_probas(everything, X)[-1][:, 1],
        booster.predict(xgb.DMatrix(X)),
        rtol=0,
        atol=ATOL,
    )
    with pytest.raises(ValueError, match="best iteration from early stopping"):
        BoosterExits(model, [2, booster.num_boosted_rounds()])


# -- the estimators ----------------------------------------------------------


@pytest.mark.budget
@pytest.mark.parametrize(
    "library, task, frozen, budget",
    # Each library unfitted and frozen, each task unfitted and frozen (the
    # policy search is the slow part: four fits, not eight). Budgets that
    # bind: without them the policy would spend more, and with half of them
    # it would be less accurate.
    [
        ("lightgbm", "multiclass", False, 14),
        ("lightgbm", "regression", True, 14),
        ("xgboost", "multiclass", True, 7),
        ("xgboost", "regression", False, 14),
    ],
)
def test_early_exit_estimators_meet_a_budget_in_rounds(library, task, frozen, budget):
    if task == "regression":
        X, y = _data(task, seed=1)
    else:  # classes that overlap: later rounds buy accuracy a budget must ration
        X, y = make_classification(
            n_samples=300,
            n_features=8,
            n_informative=6,
            n_classes=3,
            class_sep=0.8,
            random_state=1,
        )
    if frozen:  # fitted on rows the policy does not see
        backbone = FrozenEstimator(_model(library, task).fit(X[:150], y[:150]))
        X, y = X[150:], y[150:]
    else:  # cross-fitted, then refitted
        backbone = _model(library, task)
        X, y = X[:200], y[:200]
    cls = EarlyExitRegressor if task == "regression" else EarlyExitClassifier
    ee = cls(backbone, exits=[5, 15, 40], budget=budget, cv=2, random_state=0)
    ee.fit(X, y)
    assert_array_equal(ee.costs_, [5, 10, 25])
    assert ee._cost_unit() == "rounds"
    assert_budget_spent_well(ee)
    answers = exit_probas(ee.source_, X)
    if task == "regression":
        answers = ee._policy_answers(answers)
    offline = ee.policy_.exit_stage(answers)
    assert_array_equal(ee.predict_exit(X), offline)
    assert len(np.unique(offline)) > 1
    if frozen:
        assert ee.estimator_ is backbone


@pytest.mark.parametrize("library", LIBRARIES)
def test_any_class_labels(library):
    """XGBoost's classifiers take the labels 0 .. n_classes - 1 only: the
    backbone is fitted on the class indices, the answers are the labels."""
    X, y = _data("multiclass")
    labels = np.array(["high", "low", "mid"])
    fits = {}
    for name, target in [("indices", y), ("shifted", y + 1), ("names", labels[y])]:
        ee = EarlyExitClassifier(_model(library, "multiclass"), cv=3, random_state=0)
        fits[name] = ee.fit(X, target)
    assert_array_equal(fits["shifted"].classes_, [1, 2, 3])
    assert_array_equal(fits["names"].classes_, labels)
    expected = fits["indices"].predict(X)
    assert_array_equal(fits["shifted"].predict(X), expected + 1)
    assert_array_equal(fits["names"].predict(X), labels[expected])
    assert len(np.unique(expected)) == 3
    for name in ("shifted", "names"):
        ee = fits[name]
        assert_allclose(ee.predict_proba(X), fits["indices"].predict_proba(X))
        assert_array_equal(ee.predict_exit(X), fits["indices"].predict_exit(X))
        assert_allclose(
            exit_probas(ee.source_, X)[-1], ee.estimator_.predict_proba(X), atol=ATOL
        )


@pytest.mark.parametrize("refit, cv", [(True, 3), (False, 3), (False, 0.5)])
@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("in_pipeline", [False, True])
def test_a_cascade_fits_an_xgboost_stage_on_class_indices(
    refit, cv, frozen, in_pipeline
):
    """A cascade's XGBoost stage (alone or a pipeline's last step) is fitted
    on the class indices, as an early exit's backbone, and every other stage
    on the labels as given (a frozen one on its own): any labels answer as
    the indices do."""
    xgboost = _lib("xgboost")
    X, y = _data("multiclass")
    labels = np.array(["high", "low", "mid"])
    booster = xgboost.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1)
    if in_pipeline:
        booster = make_pipeline(StandardScaler(), booster)
    fits = {}
    for name, target in [("indices", y), ("shifted", y + 1), ("names", labels[y])]:
        first = LogisticRegression()
        if frozen:
            first = FrozenEstimator(clone(first).fit(X[:100], target[:100]))
        cascade = AdaptiveCascadeClassifier(
            [("lr", first), ("xgb", clone(booster))],
            costs=[1, 10],
            cost_weight=0.02,
            refit=refit,
            cv=cv,
            random_state=0,
        )
        fits[name] = cascade.fit(X[100:], target[100:])
    expected = fits["indices"].predict(X)
    assert len(np.unique(fits["indices"].predict_exit(X))) == 2
    assert len(np.unique(expected)) == 3
    for name, as_labels in [("shifted", lambda k: k + 1), ("names", labels.take)]:
        cascade = fits[name]
        assert_array_equal(cascade.classes_, as_labels(np.arange(3)))
        assert_array_equal(cascade.predict(X), as_labels(expected))
        assert_allclose(cascade.predict_proba(X), fits["indices"].predict_proba(X))
        assert_array_equal(cascade.predict_exit(X), fits["indices"].predict_exit(X))
        lr, xgb = cascade.named_estimators_.values()
        assert_array_equal(lr.classes_, cascade.classes_)
        assert_array_equal(xgb.classes_, [0, 1, 2])


def _rare_middle_class(kind):
    """400 rows of classes "a" and "c" and one row of "b", or the same rows
    with "b" named "z" (sorting last): the same problem, with the rare class
    in the middle of the class indices or at their end."""
    X, y = make_classification(400, n_features=8, n_informative=5, random_state=0)
    labels = np.where(y == 1, "c", "a")
    labels[0] = "b" if kind == "middle" else "z"
    return X, labels


def _answers_alike(middle, last):
    """The two fits answer alike, "b" for "z" (the same column: both third)."""
    X, _ = _rare_middle_class("middle")
    assert_array_equal(middle.classes_, ["a", "b", "c"])
    assert_array_equal(last.classes_, ["a", "c", "z"])
    order = [0, 2, 1]  # a, b, c <- a, z, c
    assert_allclose(middle.predict_proba(X), last.predict_proba(X)[:, order])
    assert_array_equal(middle.predict_exit(X), last.predict_exit(X))


@pytest.mark.parametrize("estimator", ["cascade", "early exit"])
def test_an_xgboost_member_answers_a_class_missing_from_a_fold_with_zero(estimator):
    """A class of one row is missing from the training rows of the
    cross-fitting fold that holds it out. Fitted on the class indices, XGBoost
    refused the gap ([0, 2]) where the class sorts in the middle; it is fitted on the
    indices of the fold's own classes, and that fold's held-out rows get
    probability 0 for the missing class, as from a model fitted on labels:
    the answers are the same wherever the rare class sorts."""
    xgboost = _lib("xgboost")

    def fit(kind):
        booster = xgboost.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1)
        if estimator == "cascade":
            model = AdaptiveCascadeClassifier(
                [("lr", LogisticRegression()), ("xgb", booster)],
                costs=[1, 10],
                cost_weight=0.02,
                cv=3,
                random_state=0,
            )
        else:
            model = EarlyExitClassifier(booster, exits=[5, 10], cv=3, random_state=0)
        return model.fit(*_rare_middle_class(kind))

    middle, last = fit("middle"), fit("last")
    _answers_alike(middle, last)
    answers, _, _ = middle._policy_data
    # The held-out rows of the fold that lacked "b" (a third of the rows).
    assert np.sum(answers[-1][:, 1] == 0) > 100


def test_a_kept_xgboost_fold_model_without_a_class_names_the_class():
    """refit=False keeps the fold models: one fitted without the rare middle
    class "b" is refused, naming "b" (not the class its index stood for)."""
    xgboost = _lib("xgboost")
    X, labels = _rare_middle_class("middle")
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression()),
            ("xgb", xgboost.XGBClassifier(n_estimators=5, n_jobs=1)),
        ],
        costs=[1, 5],
        cost_weight=0.1,
        cv=3,
        refit=False,
    )
    with pytest.raises(ValueError, match=r"holding no row of class\(es\) \['b'\]"):
        cascade.fit(X, labels)


def test_an_xgboost_classifier_inside_another_model_is_named_with_the_fix():
    """Only an XGBClassifier stage (or a pipeline's last step) is fitted on
    class indices; inside another model it gets the labels, and XGBoost's
    refusal is said with the stage's name and the fix."""
    xgboost = _lib("xgboost")
    from sklearn.calibration import CalibratedClassifierCV

    X, y = _data("multiclass")
    labels = np.array(["high", "low", "mid"])[y]
    inner = xgboost.XGBClassifier(n_estimators=5, n_jobs=1)
    cascade = AdaptiveCascadeClassifier(
        [("xgb", clone(inner)), ("cal", CalibratedClassifierCV(inner, cv=2))],
        costs=[1, 5],
        cost_weight=0.1,
    )
    with pytest.raises(
        ValueError,
        match=r"Stage 'cal' \(CalibratedClassifierCV\) gave an XGBoost classifier "
        r"labels it refused.*LabelEncoder",
    ):
        cascade.fit(X, labels)
    # Encoded, as the message says, it fits.
    assert_array_equal(cascade.fit(X, y).classes_, [0, 1, 2])


def test_frozen_stages_fitted_on_class_indices_say_how_to_fit_the_cascade():
    xgboost = _lib("xgboost")
    X, y = _data("multiclass")
    labels = np.array(["high", "low", "mid"])[y]
    frozen = FrozenEstimator(xgboost.XGBClassifier(n_estimators=5).fit(X, y))
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("xgb", frozen)], costs=[1, 5]
    )
    with pytest.raises(ValueError, match=r"predicts 0 \.\. n_classes - 1: fit on y"):
        cascade.fit(X, labels)
    # Labels that take a fourth class are no other coding of the same ones.
    with pytest.raises(ValueError) as refused:
        cascade.fit(X, np.where(np.arange(len(y)) < 5, 3, y))
    assert "class indices" not in str(refused.value)


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_bare_booster_given_labels_is_told_it_predicts_class_indices(library):
    """The hint named XGBoost's classifiers alone, also for a LightGBM
    Booster."""
    X, y = _data("multiclass")
    booster = _booster(_model(library, "multiclass").fit(X, y))
    with pytest.raises(ValueError, match=r"a raw LightGBM or XGBoost Booster"):
        EarlyExitClassifier(booster).fit(X, np.array(["high", "low", "mid"])[y])


@pytest.mark.parametrize("library", LIBRARIES)
def test_bare_boosters_are_used_as_given(library):
    X, y = _data("binary", seed=1)
    model = _model(library, "binary").fit(X[:150], y[:150])
    ee = EarlyExitClassifier(_booster(model), cost_weight=0.01).fit(X[150:], y[150:])
    assert ee.source_.exits == (2, 5, 10, 20, 40)
    assert_array_equal(ee.classes_, [0, 1])
    assert_array_equal(ee.costs_, [2, 3, 5, 10, 20])
    frozen = EarlyExitClassifier(FrozenEstimator(model), cost_weight=0.01)
    frozen.fit(X[150:], y[150:])
    assert_array_equal(ee.predict_exit(X), frozen.predict_exit(X))
    assert_allclose(ee.predict_proba(X), frozen.predict_proba(X), rtol=0, atol=1e-12)
    Xr, yr = _data("regression")
    regression = _booster(_model(library, "regression").fit(Xr, yr))
    ee = EarlyExitRegressor(regression, exits=[10, 40], cost_weight=0.01).fit(Xr, yr)
    assert ee.source_.regression and ee.n_exits_ == 2


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_rows_answer_depends_on_neither_its_batch_nor_the_threads(library):
    """Batches routed in parallel threads predict different rounds of one
    Booster at once (LightGBM's calls are serialised: it sets the rounds to
    predict with on the Booster itself)."""
    X, y = _data("binary")
    ee = EarlyExitClassifier(_booster(_fitted(library, "binary")), cost_weight=0.01)
    ee.fit(X, y)
    expected = ee.route(X)
    assert len(np.unique(expected.exit_stage)) > 2
    order = np.random.default_rng(0).permutation(len(X))
    got = ee.set_params(n_jobs=2, batch_size=7).route(X[order])
    assert_array_equal(got.exit_stage, expected.exit_stage[order])
    assert_allclose(got.proba, expected.proba[order], rtol=0, atol=1e-12)


# -- refusals ----------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_wrong_kind_of_model_says_which_estimator_to_use(library):
    X, y = _data("binary")
    regressor = _model(library, "regression")
    with pytest.raises(TypeError, match=r"is a regressor; use EarlyExitRegressor"):
        EarlyExitClassifier(regressor).fit(X, y)
    with pytest.raises(TypeError, match=r"is a classifier; use EarlyExitClassifier"):
        EarlyExitRegressor(_model(library, "binary")).fit(X, y)
    booster = _booster(_fitted(library, "binary"))
    with pytest.raises(TypeError, match=r"Booster has objective .* EarlyExitClass"):
        EarlyExitRegressor(booster).fit(X, y)


@pytest.mark.parametrize(
    "library, params",
    [
        ("lightgbm", {"boosting_type": "dart"}),
        ("lightgbm", {"boosting_type": "rf", "subsample": 0.7, "subsample_freq": 1}),
        ("xgboost", {"booster": "dart"}),
        ("xgboost", {"booster": "gblinear"}),
    ],
)
def test_boosting_modes_without_a_sum_over_rounds_are_refused(
    library, params, monkeypatch
):
    X, y = _data("binary")
    mode = params.get("boosting_type", params.get("booster"))
    model = _model(library, "binary", **params)
    fitted = model.set_params(n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match=f"'{mode}' boosting has no early exits"):
        BoosterExits(fitted, [5])
    fits = _count_fits(monkeypatch, model)
    with pytest.raises(ValueError, match=f"'{mode}' boosting has no early exits"):
        EarlyExitClassifier(model.set_params(n_estimators=40)).fit(X, y)
    assert fits == []  # before any fit


@pytest.mark.parametrize("library", LIBRARIES)
def test_bad_exits_and_budgets_fail_before_any_fit(library, monkeypatch):
    X, y = _data("binary")
    # Fitted (and cached for the other tests) before fit is patched below:
    # fitted after, the cache would keep the patched fit's None for them.
    fitted = _fitted(library, "binary")
    model = _model(library, "binary")
    fits = []
    monkeypatch.setattr(type(model), "fit", lambda self, *a, **k: fits.append(1))
    with pytest.raises(ValueError, match=r"number of boosting rounds \(40\)"):
        EarlyExitClassifier(model, exits=[10, 80]).fit(X, y)
    with pytest.raises(ValueError, match="already costs 2, 1 over the budget"):
        EarlyExitClassifier(model, budget=1).fit(X, y)  # default exits: 2, 5, ...
    with pytest.raises(ValueError, match="has one exit"):
        EarlyExitClassifier(model, exits=[40]).fit(X, y)
    assert fits == []
    with pytest.raises(ValueError, match=r"number of boosting rounds \(40\)"):
        BoosterExits(fitted, [10, 20, 50])
    with pytest.raises(ValueError, match=r"number of boosting rounds \(40\)"):
        EarlyExitClassifier(FrozenEstimator(fitted), exits=[50]).fit(X, y)


@pytest.mark.parametrize("library", LIBRARIES)
def test_rows_with_another_feature_count_are_named(library):
    X, y = _data("binary")
    source = BoosterExits(_fitted(library, "binary"), EXITS)
    with pytest.raises(ValueError, match="X has 5 features, but .* on 8 features"):
        source.run_stage(0, X[:, :5], None)
    other = _model(library, "binary").fit(X[:, :5], y)
    ee = EarlyExitClassifier(FrozenEstimator(other), exits=[10, 40])
    # The frozen backbone is named, with the library's own words and the fix.
    with pytest.raises(
        ValueError,
        match=r"Stage 'estimator' \(a frozen \w+\) refused the first row of X: "
        r"(?s:.*)pass the rows it was trained on",
    ):
        ee.fit(X, y)


@pytest.mark.parametrize(
    "library, params, setting",
    [
        ("lightgbm", {"early_stopping_round": 5}, "early_stopping_round=5"),
        ("lightgbm", {"n_iter_no_change": 5}, "n_iter_no_change=5"),
        ("xgboost", {"early_stopping_rounds": 5}, "early_stopping_rounds=5"),
    ],
)
def test_early_stopping_of_unfitted_models_is_refused_before_any_fit(
    library, params, setting, monkeypatch
):
    X, y = _data("binary")
    model = _model(library, "binary", **params)
    fits = []
    monkeypatch.setattr(type(model), "fit", lambda self, *a, **k: fits.append(1))
    with pytest.raises(ValueError, match=f"{setting} stops boosting.*FrozenEstimator"):
        EarlyExitClassifier(model).fit(X, y)
    assert fits == []


@pytest.mark.filterwarnings("ignore:.*eval_set.*:DeprecationWarning")
def test_early_stopping_callbacks_are_refused():
    lgb = _lib("lightgbm")
    X, y = _data("binary")
    with sklearn.config_context(enable_metadata_routing=True):
        model = _model("lightgbm", "binary").set_fit_request(callbacks=True)
        with pytest.raises(ValueError, match="early-stopping callback passed to fit"):
            EarlyExitClassifier(model).fit(
                X, y, callbacks=[lgb.early_stopping(3, verbose=False)]
            )
    # A model fitted here that stopped early anyway is refused on its first fold.
    stopped = _model("lightgbm", "binary").fit(
        X[:200],
        y[:200],
        eval_set=[(X[200:], y[200:])],
        callbacks=[lgb.early_stopping(1, verbose=False)],
    )
    assert stopped.best_iteration_ > 0
    with pytest.raises(ValueError, match="stops boosting at a different round"):
        as_multi_exit(stopped, None, fitted_here=True)
    assert as_multi_exit(stopped, None).exits[-1] == stopped.best_iteration_


@pytest.mark.parametrize(
    "library, offset", [("xgboost", "base_margin"), ("lightgbm", "init_score")]
)
def test_a_per_row_offset_routed_to_the_backbone_is_refused(library, offset):
    """The exits cannot add a per-row offset, nor can predict be given one:
    the model learned around it and answered far off without a word."""
    _lib(library)
    X, y = _data("binary")
    with sklearn.config_context(enable_metadata_routing=True):
        model = _model(library, "binary").set_fit_request(**{offset: True})
        with pytest.raises(ValueError, match=f"{offset} was passed to .*per-row") as e:
            EarlyExitClassifier(model, cv=3).fit(X, y, **{offset: np.full(len(y), 3.0)})
    # The advice for a constant offset is the library's own (LightGBM's
    # models have no parameter for one: init_score= on the model is ignored).
    if library == "xgboost":
        assert "set base_score on the model" in str(e.value)
    else:
        assert "take no constant offset of their own" in str(e.value)
        assert "base_score" not in str(e.value)


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_model_that_stops_by_itself_when_fitted_here_is_refused(library):
    """Fewer rounds than set, without early stopping declared: LightGBM with
    no split left, an XGBoost callback that ends the training. The folds
    would stop at other rounds than the refit, and their exits differ."""
    X, y = _data("binary")
    if library == "lightgbm":
        short = _model("lightgbm", "binary", min_split_gain=8.0)  # about 20
        cause = "no split is left that meets its settings"
    else:
        xgb = _lib("xgboost")

        class Stop(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                return epoch >= 15

        short = _model("xgboost", "binary", callbacks=[Stop()])
        cause = "a callback ended the training"
    with pytest.raises(
        ValueError, match=f"grew \\d+ of the \\d+ boosting rounds.*{cause}"
    ):
        EarlyExitClassifier(short, cv=2).fit(X, y)
    fitted = clone(short).fit(X, y)
    with pytest.raises(ValueError, match="boosting rounds it was set to"):
        as_multi_exit(fitted, None, fitted_here=True)
    # Fitted by the user and frozen: its rounds are what it has.
    assert as_multi_exit(fitted, None).exits[-1] < 40
    # A model that grows every round it is set to is kept.
    full = _model(library, "binary").fit(X, y)
    assert as_multi_exit(full, None, fitted_here=True).exits[-1] == 40


def test_xgboost_at_its_default_number_of_rounds_is_fitted_here():
    """XGBoost's n_estimators defaults to None (its own 100 rounds): the
    rounds it was set to are XGBoost's, not int(None)."""
    xgb = _lib("xgboost")
    X, y = _data("binary")
    model = xgb.XGBClassifier(n_jobs=1, random_state=0)
    assert model.get_params()["n_estimators"] is None
    early = EarlyExitClassifier(model, cv=2, random_state=0).fit(X, y)
    assert early.source_.exits[-1] == 100


def test_other_models_and_objectives_are_refused_with_the_reason():
    lgb, xgb = _lib("lightgbm"), _lib("xgboost")
    X, y = _data("multiclass")
    with pytest.raises(TypeError, match="one boosting round"):
        EarlyExitClassifier(xgb.XGBRFClassifier(n_estimators=5)).fit(X, y)
    multi = xgb.XGBRegressor(n_estimators=3, n_jobs=1).fit(X, np.c_[y, y])
    with pytest.raises(ValueError, match="multi-output"):
        BoosterExits(multi, [3])
    ova = _model("lightgbm", "multiclass", objective="multiclassova")
    with pytest.raises(ValueError, match="'multiclassova'.*need not sum to 1"):
        BoosterExits(ova.fit(X, y), [40])

    def squared(y_true, y_pred):
        return y_pred - y_true, np.ones_like(y_pred)

    custom = _model("lightgbm", "regression", objective=squared)
    with pytest.raises(ValueError, match="custom objective"):
        EarlyExitRegressor(custom).fit(X, y)
    with pytest.raises(ValueError, match="custom objective"):
        BoosterExits(custom.fit(X, y), [40])
    with pytest.raises(TypeError, match="supports LGBMClassifier"):
        BoosterExits(lgb.LGBMRanker(), [3])


@pytest.mark.parametrize(
    "library, task, params, message",
    [
        ("lightgbm", "multiclass", {"objective": "multiclassova"}, "need not sum"),
        ("lightgbm", "multiclass", {"objective": "OVR"}, "'multiclassova'.*need not"),
        ("lightgbm", "binary", {"application": "lambdarank"}, "ranks rows"),
        ("lightgbm", "binary", {"objective": "regression"}, "not class prob"),
        ("lightgbm", "regression", {"objective": "softmax"}, "score per class"),
        ("xgboost", "binary", {"objective": "binary:logitraw"}, "raw margins"),
        ("xgboost", "binary", {"objective": "reg:squarederror"}, "not class prob"),
        ("xgboost", "regression", {"objective": "rank:pairwise"}, "ranks rows"),
    ],
)
def test_unsupported_objectives_are_refused_before_any_fit(
    library, task, params, message, monkeypatch
):
    X, y = _data(task)
    model = _model(library, task, **params)
    fits = _count_fits(monkeypatch, model)
    cls = EarlyExitRegressor if task == "regression" else EarlyExitClassifier
    with pytest.raises(ValueError, match=f"has objective .*{message}"):
        cls(model).fit(X, y)
    assert fits == []


def test_supported_objective_names_pass_the_check_before_fit():
    from skadaptive.stages._booster_exits import check_unfitted_booster

    for task, objective in [
        ("regression", "MSE"),
        ("regression", "mae"),
        ("regression", "xentlambda"),
        ("binary", "xentropy"),
        ("multiclass", "softmax"),
    ]:
        assert check_unfitted_booster(_model("lightgbm", task, objective=objective))
    for task, objective in [("regression", "reg:gamma"), ("binary", "reg:logistic")]:
        assert check_unfitted_booster(_model("xgboost", task, objective=objective))


def test_lightgbm_prediction_early_stopping_is_refused(monkeypatch):
    """LightGBM's scikit-learn models pass pred_early_stop to their own
    predictions, which then differ from the exits."""
    X, y = _data("binary")
    params = {"pred_early_stop": True, "pred_early_stop_margin": 1.0}
    fitted = _model("lightgbm", "binary", **params).fit(X, y)
    exact = _booster(fitted).predict(X)  # all rounds
    assert np.abs(fitted.predict_proba(X)[:, 1] - exact).max() > 0.1
    for estimator in (fitted, FrozenEstimator(fitted)):
        with pytest.raises(ValueError, match="Set pred_early_stop=False"):
            BoosterExits(estimator, EXITS)
    with pytest.raises(ValueError, match="Set pred_early_stop=False"):
        EarlyExitClassifier(FrozenEstimator(fitted)).fit(X, y)
    model = _model("lightgbm", "binary", **params)
    fits = _count_fits(monkeypatch, model)
    with pytest.raises(ValueError, match="pred_early_stop=True .*Set pred_early_stop"):
        EarlyExitClassifier(model).fit(X, y)
    assert fits == []
    assert BoosterExits(_booster(fitted), EXITS).n_stages == 4  # Booster.predict


@pytest.mark.parametrize("library", LIBRARIES)
def test_boolean_exits_are_refused(library, monkeypatch):
    X, y = _data("binary")
    with pytest.raises(ValueError, match="round counts .*booleans"):
        BoosterExits(_fitted(library, "binary"), [True, 40])
    model = _model(library, "binary")
    fits = _count_fits(monkeypatch, model)
    with pytest.raises(ValueError, match="round counts .*booleans"):
        EarlyExitClassifier(model, exits=[True, 40]).fit(X, y)
    assert fits == []


def test_lightgbm_round_count_aliases_are_its_rounds(monkeypatch):
    """LightGBM grows num_iterations (or another alias) rounds, not
    n_estimators."""
    X, y = _data("binary")
    model = _model("lightgbm", "binary", num_iterations=20)
    assert model.n_estimators == 40
    assert _booster(clone(model).fit(X, y)).current_iteration() == 20
    fits = _count_fits(monkeypatch, model)
    with pytest.raises(ValueError, match=r"number of boosting rounds \(20\)"):
        EarlyExitClassifier(model, exits=[10, 40]).fit(X, y)
    assert fits == []


def test_xgboost_early_stopping_is_found_before_and_after_fit(monkeypatch):
    xgb = _lib("xgboost")

    class Patience(xgb.callback.EarlyStopping):  # another name
        pass

    X, y = _data("binary")
    # A model fitted here that stopped early anyway is refused on its first fold.
    stopped = _model("xgboost", "binary", learning_rate=0.5)
    stopped.set_params(n_estimators=60, callbacks=[Patience(rounds=2)])
    stopped.fit(X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False)
    assert stopped.best_iteration + 1 < 60
    with pytest.raises(ValueError, match="stops boosting at a different round"):
        as_multi_exit(stopped, None, fitted_here=True)
    assert as_multi_exit(stopped, None).exits[-1] == stopped.best_iteration + 1
    # The callback, under its other name, is refused before any fit.
    model = _model("xgboost", "binary", callbacks=[Patience(rounds=2)])
    fits = _count_fits(monkeypatch, model)
    with pytest.raises(ValueError, match="an EarlyStopping callback stops"):
        EarlyExitClassifier(model).fit(X, y)
    assert fits == []


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_raw_booster_with_measured_costs_is_compared_with_its_exits(library, task):
    from skadaptive import EarlyExitClassifier, EarlyExitRegressor

    lib = _lib(library)
    X, y = _data(task)
    objective = "binary" if task == "binary" else "regression"
    if library == "lightgbm":
        params = {"objective": objective, "num_threads": 1, "verbose": -1}
        booster = lib.train(params, lib.Dataset(X, y), 20)
    else:
        objective = "binary:logistic" if task == "binary" else "reg:squarederror"
        params = {"objective": objective, "nthread": 1}
        booster = lib.train(params, lib.DMatrix(X, y), 20)
    kind = EarlyExitClassifier if task == "binary" else EarlyExitRegressor
    estimator = kind(booster, exits=[5, 20], costs="auto", cost_batch_size=16)
    estimator.fit(X, y)
    # No scikit-learn prediction of its own (XGBoost's takes a DMatrix):
    # the speed-up is over its exits run in turn.
    assert estimator._measured_seconds.whole_timings is None
    assert estimator.expected_speed_up_ == pytest.approx(
        estimator._alone_seconds(16)[-1] / estimator.expected_cost_
    )


# ----------------------------------------- gaps a mutation review found
def test_a_dataframe_with_a_categorical_column_reaches_lightgbm_as_given():
    pd = pytest.importorskip("pandas")
    lgb = _lib("lightgbm")
    rng = np.random.default_rng(0)
    colour = pd.Categorical(rng.choice(["red", "green", "blue"], 300))
    x = rng.normal(size=300)
    y = ((colour == "red") ^ (x > 0)).astype(int)
    X = pd.DataFrame({"colour": colour, "x": x})
    model = lgb.LGBMClassifier(
        n_estimators=10, min_child_samples=5, n_jobs=1, verbose=-1
    ).fit(X, y)
    probas = exit_probas(BoosterExits(model, [3, 10]), X)
    assert_allclose(probas[-1], model.predict_proba(X), rtol=0, atol=1e-12)


def test_a_model_fitted_here_that_stopped_early_is_refused():
    lgb = _lib("lightgbm")

    def stop_after_five_rounds(env):  # not named EarlyStopping
        if env.iteration == 4:
            raise lgb.callback.EarlyStopException(best_iteration=4, best_score=[])

    X, y = _data("binary")
    with sklearn.config_context(enable_metadata_routing=True):
        model = lgb.LGBMClassifier(
            n_estimators=40, n_jobs=1, verbose=-1
        ).set_fit_request(callbacks=True)
        with pytest.raises(ValueError, match="stops boosting at a different round"):
            EarlyExitClassifier(model, cv=2).fit(
                X, y, callbacks=[stop_after_five_rounds]
            )


def test_a_random_forest_booster_without_its_parameters_is_refused():
    lgb = _lib("lightgbm")
    X, y = _data("binary")
    params = {
        "boosting": "rf",
        "bagging_fraction": 0.5,
        "bagging_freq": 1,
        "objective": "binary",
        "num_threads": 1,
        "verbose": -1,
    }
    trained = lgb.train(params, lgb.Dataset(X, y), 10)
    booster = lgb.Booster(model_str=trained.model_to_string())
    booster.params.pop("boosting", None)  # a model string read without them
    with pytest.raises(ValueError, match="'rf' boosting has no early exits"):
        BoosterExits(booster, [5, 10])


def test_an_xgboost_fold_that_cannot_be_fitted_without_a_class_says_which():
    """An objective set for every class cannot be fitted on a fold's fewer
    classes: XGBoost's own error ("num_class should be greater equal to 1")
    is said with the stage, the class the fold lacks and the fixes."""
    xgboost = _lib("xgboost")
    X, labels = _rare_middle_class("middle")
    booster = xgboost.XGBClassifier(
        n_estimators=5, objective="multi:softprob", n_jobs=1
    )
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("xgb", booster)], costs=[1, 5], cv=3
    )
    with pytest.raises(
        ValueError,
        match=r"raised by stage 'xgb' \(XGBClassifier\), fitted on a "
        r"cross-fitting fold's training rows, which hold no row of class\(es\) "
        r"\['b'\]: if that is the cause",
    ):
        cascade.fit(X, labels)
