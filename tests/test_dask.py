"""Dask: lazy prediction block by block, and fitting under joblib's Dask backend.

The ``tests`` extra installs Dask, so CI runs every test here; without Dask
the module is skipped. One ``distributed.LocalCluster`` (2 worker processes
of 1 thread, on this machine) serves the module.

Lazy answers are compared with in-memory ones exactly: each block routes its
rows in batches of ``batch_size``, so every chunk here is a multiple of it
and a block's batches are the in-memory call's (a stage whose arithmetic
depends on its batch's shape, a matrix product, rounds the same).
"""

import copy
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import cloudpickle  # noqa: E402  (installed with dask)
import joblib  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

from skadaptive import (  # noqa: E402
    AdaptiveCascadeClassifier,
    AdaptiveCascadeRegressor,
    EarlyExitClassifier,
)
from skadaptive._dask import LAZY_METHODS  # noqa: E402

BATCH = 50  # rows routed together; every chunk below is a multiple of it


@pytest.fixture(scope="module")
def client():
    # The nannies set OMP_NUM_THREADS=1 and the like in this process's
    # environment for their workers; later tests get it back as it was.
    environ = dict(os.environ)
    try:
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
    finally:
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=900, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    return X[:600], X[600:], y[:600], y[600:]


def _cascade():
    return AdaptiveCascadeClassifier(
        [
            ("stump", DecisionTreeClassifier(max_depth=2, random_state=0)),
            ("lr", LogisticRegression(max_iter=500)),
        ],
        costs=[1, 5],
        cost_weight=0.01,
        cv=3,
        batch_size=BATCH,
        random_state=0,
    )


@pytest.fixture(scope="module")
def estimators(data):
    """A cascade and an early-exit classifier, and a regressor with its rows."""
    X_train, X_test, y_train, _ = data
    Xr, yr = make_regression(n_samples=900, n_features=8, noise=5.0, random_state=0)
    regressor = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=5))],
        costs=[1, 10],
        cv=3,
        batch_size=BATCH,
        random_state=0,
    ).fit(Xr[:600], yr[:600])
    early_exit = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=12, max_depth=2, random_state=0),
        exits=[3, 6, 12],
        cv=3,
        batch_size=BATCH,
        random_state=0,
    ).fit(X_train, y_train)
    return {
        "cascade": (_cascade().fit(X_train, y_train), X_test),
        "early_exit": (early_exit, X_test),
        "regressor": (regressor, Xr[600:]),
    }


def _methods(estimator):
    return [m for m in LAZY_METHODS if m != "route" and hasattr(estimator, m)]


@pytest.mark.parametrize("kind", ["cascade", "early_exit", "regressor"])
def test_lazy_array_answers_equal_the_in_memory_ones(client, estimators, kind):
    estimator, X = estimators[kind]
    # Uneven row chunks, and two chunks along the features (merged first).
    dX = da.from_array(X, chunks=((100, 50, 150), (5, 3)))
    methods = _methods(estimator)
    lazy = [getattr(estimator, m)(dX) for m in methods]
    computed = dask.compute(*lazy)  # on the cluster
    for method, result, answer in zip(methods, lazy, computed):
        expected = getattr(estimator, method)(X)
        assert isinstance(result, da.Array), method
        assert result.chunks[0] == (100, 50, 150), method
        assert result.shape == expected.shape, method
        assert result.dtype == answer.dtype == expected.dtype, method
        assert type(result._meta) is np.ndarray, method
        np.testing.assert_array_equal(answer, expected, err_msg=method)


@pytest.mark.parametrize("kind", ["cascade", "regressor"])
def test_lazy_route_is_one_routing_pass_per_block(estimators, kind):
    estimator, X = estimators[kind]
    dX = da.from_array(X, chunks=100)
    counted = copy.deepcopy(estimator)
    calls = []

    def counting_route(rows):
        if isinstance(rows, np.ndarray):  # a block, in memory
            calls.append(len(rows))
        return type(counted).route(counted, rows)

    counted.route = counting_route
    lazy = counted.route(dX)
    expected = estimator.route(X)
    assert list(lazy) == list(expected)
    answers = dask.compute(dict(lazy), scheduler="sync")[0]
    for field, values in expected.items():
        assert lazy[field].chunks[0] == (100, 100, 100), field
        assert answers[field].dtype == values.dtype == lazy[field].dtype, field
        np.testing.assert_array_equal(answers[field], values, err_msg=field)
    # Every field from one pass over each block: three blocks, three calls.
    assert calls == [100, 100, 100]


@pytest.fixture(scope="module")
def frames(data):
    """A cascade fitted on a DataFrame with string labels; its test frame."""
    X_train, X_test, y_train, _ = data
    columns = [f"f{k}" for k in range(X_train.shape[1])]
    names = np.array(["ham", "spam", "eggs"], dtype=object)
    train = pd.DataFrame(X_train, columns=columns)
    cascade = _cascade().fit(train, names[y_train])
    # An index that is not the row number: answers must be put on it.
    index = pd.Index(np.arange(1000, 1000 + 3 * len(X_test), 3), name="id")
    test = pd.DataFrame(X_test, columns=columns, index=index)
    return cascade, test


def test_lazy_dataframe_answers_keep_the_index_and_string_labels(client, frames):
    cascade, test = frames
    ddf = dd.from_pandas(test, chunksize=100)
    assert ddf.map_partitions(len).compute().tolist() == [100, 100, 100]
    assert cascade.classes_.dtype == object
    methods = _methods(cascade)
    lazy = [getattr(cascade, m)(ddf) for m in methods]
    computed = dask.compute(*lazy)
    for method, result, answer in zip(methods, lazy, computed):
        expected = getattr(cascade, method)(test)
        assert result.divisions == ddf.divisions, method
        assert answer.index.equals(test.index), method
        assert isinstance(answer, pd.Series if expected.ndim == 1 else pd.DataFrame)
        if expected.ndim == 1:
            assert result.dtype == answer.dtype == expected.dtype, method
        else:
            assert list(result.columns) == list(answer.columns), method
            assert (result.dtypes == answer.dtypes).all(), method
        np.testing.assert_array_equal(answer.to_numpy(), expected, err_msg=method)
    by_method = dict(zip(methods, computed))
    assert by_method["predict"].name == "prediction"
    assert by_method["predict"].dtype == object
    assert set(by_method["predict"]) <= {"ham", "spam", "eggs"}
    assert list(by_method["predict_proba"].columns) == ["eggs", "ham", "spam"]
    assert list(by_method["predict_path"].columns) == ["stump", "lr"]
    # The labels' column order is the probabilities' order.
    proba = by_method["predict_proba"]
    assert (proba.idxmax(axis=1) == by_method["predict"]).all()

    routed = cascade.route(ddf)
    answers = dask.compute(dict(routed))[0]
    for field, values in cascade.route(test).items():
        assert answers[field].index.equals(test.index), field
        np.testing.assert_array_equal(answers[field].to_numpy(), values, err_msg=field)


def test_empty_partitions_and_chunks_of_unknown_size(client, frames, estimators):
    framed, test = frames
    ddf = dd.from_pandas(test, chunksize=100)
    # Keeps the first two partitions whole and empties the third.
    kept = ddf[ddf.index.to_series() < ddf.divisions[2]]
    assert kept.map_partitions(len).compute().tolist() == [100, 100, 0]
    rows = test.loc[test.index < ddf.divisions[2]]
    lazy = framed.predict_proba(kept)
    answer = lazy.compute()
    assert answer.index.equals(rows.index)
    np.testing.assert_array_equal(answer.to_numpy(), framed.predict_proba(rows))
    # An array of the same rows: row chunks of unknown size (100, 100, 0).
    cascade, _ = estimators["cascade"]
    values = kept.to_dask_array()
    assert np.isnan(values.chunks[0]).all()
    array_lazy = [cascade.predict_proba(values), cascade.predict(values)]
    assert all(np.isnan(result.chunks[0]).all() for result in array_lazy)
    assert array_lazy[0].chunks[1] == (3,)
    proba, labels = dask.compute(*array_lazy)
    np.testing.assert_array_equal(proba, cascade.predict_proba(rows.to_numpy()))
    np.testing.assert_array_equal(labels, cascade.predict(rows.to_numpy()))


def _tasks_holding(collections, obj) -> int:
    """The number of tasks of the optimised graph of ``collections`` (the graph
    a scheduler is sent) whose definition holds ``obj``."""
    graph = {}
    for optimised in dask.optimize(*collections):
        graph.update(dict(optimised.__dask_graph__()))

    class Finder(cloudpickle.Pickler):
        found = False

        def persistent_id(self, value):
            if value is obj:
                Finder.found = True
                return "found"
            return None

    count = 0
    for task in graph.values():
        Finder.found = False
        Finder(io.BytesIO()).dump(task)
        count += Finder.found
    return count


def test_the_estimator_is_one_task_of_the_graph(estimators, frames):
    cascade, X = estimators["cascade"]
    dX = da.from_array(X, chunks=50)  # six blocks
    for lazy in (
        [cascade.predict(dX)],
        [cascade.predict_proba(dX)],
        list(cascade.route(dX).values()),
    ):
        assert _tasks_holding(lazy, cascade) == 1
    framed, test = frames
    ddf = dd.from_pandas(test, chunksize=50)
    assert ddf.npartitions == 6
    for lazy in ([framed.predict(ddf)], list(framed.route(ddf).values())):
        assert _tasks_holding(lazy, framed) == 1


def test_checks_are_made_when_called_not_when_computed(estimators, frames):
    cascade, X = estimators["cascade"]
    with pytest.raises(ValueError, match="X has 3 features"):
        cascade.predict(da.ones((10, 3), chunks=5))
    framed, test = frames
    renamed = dd.from_pandas(test.rename(columns={"f0": "other"}), npartitions=2)
    with pytest.raises(ValueError, match="feature names"):
        framed.predict_proba(renamed)
    with pytest.raises(TypeError, match="dask.array.Array or a dask.dataframe"):
        cascade.predict(dask.delayed(X))
    unfitted = _cascade()
    with pytest.raises(Exception, match="not fitted"):
        unfitted.predict(da.from_array(X, chunks=50))


def test_plain_inputs_do_not_import_dask():
    code = (
        "import sys\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "from skadaptive import AdaptiveCascadeClassifier\n"
        "X, y = load_iris(return_X_y=True)\n"
        "AdaptiveCascadeClassifier([('t', DecisionTreeClassifier(max_depth=1)),"
        " ('lr', LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3)"
        ".fit(X, y).predict(X)\n"
        "assert 'dask' not in sys.modules, 'dask was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _same_fit(fitted, reference, X_test):
    np.testing.assert_array_equal(
        fitted.predict_proba(X_test), reference.predict_proba(X_test)
    )
    np.testing.assert_array_equal(
        fitted.predict_exit(X_test), reference.predict_exit(X_test)
    )
    # The same held-out probabilities, and the same policy learned from them.
    for ours, theirs in zip(fitted._policy_rows()[0], reference._policy_rows()[0]):
        np.testing.assert_array_equal(ours, theirs)
    assert pickle.dumps(fitted.policy_) == pickle.dumps(reference.policy_)
    for key, values in reference.frontier_.items():
        np.testing.assert_array_equal(fitted.frontier_[key], values, err_msg=key)


def test_fit_under_the_joblib_dask_backend_equals_the_in_memory_fit(client, data):
    X_train, X_test, y_train, _ = data
    reference = _cascade().fit(X_train, y_train)
    with (
        joblib.parallel_backend("dask"),
        distributed.get_task_stream(client) as tasks,
    ):
        fitted = _cascade().fit(X_train, y_train)  # n_jobs=None: every worker
    # The fold fits and refits ran on the cluster (joblib may batch them).
    assert len(tasks.data) >= 2
    _same_fit(fitted, reference, X_test)


def test_grid_search_over_cost_weight_with_a_shared_cache(client, data, tmp_path):
    X_train, _, y_train, _ = data
    grid = {"cost_weight": [0.0, 0.01, 0.1]}
    searched = _cascade().set_params(batch_size=None)
    reference = GridSearchCV(searched, grid, cv=2).fit(X_train, y_train)
    cached = clone(searched).set_params(memory=str(tmp_path / "cache"))
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(cached, grid, cv=2, n_jobs=-1).fit(X_train, y_train)
    assert search.best_params_ == reference.best_params_
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"],
        reference.cv_results_["mean_test_score"],
    )
    # The stage fits of each split went to the shared cache, once.
    assert any((tmp_path / "cache").rglob("output.pkl"))


def test_in_memory_prediction_inside_the_dask_backend(client, estimators):
    cascade, X = estimators["cascade"]
    expected = cascade.predict_proba(X)
    with joblib.parallel_backend("dask"):
        answer = cascade.predict_proba(X)  # 300 rows, in batches of 50
    np.testing.assert_array_equal(answer, expected)


@pytest.mark.parametrize("kind", ["cascade", "early_exit", "regressor"])
def test_cost_scorers_take_lazy_rows_and_score_as_in_memory(estimators, kind):
    from skadaptive.metrics import make_average_cost_scorer, make_cost_aware_scorer

    estimator, X = estimators[kind]
    y = estimator.predict(X)  # any labels of the right kind
    lazy = da.from_array(X, chunks=(70, X.shape[1]))
    for scorer in (make_average_cost_scorer(), make_cost_aware_scorer(0.01)):
        np.testing.assert_allclose(scorer(estimator, lazy, y), scorer(estimator, X, y))


def test_a_cascade_of_texts_answers_a_lazy_series_and_array():
    """The checks run on a probe of no rows: a cascade of texts (no feature
    count) refused it as 0 rows (a regression of a check for empty input)."""
    from _texts import TEXTS as texts
    from _texts import text_cascade

    cascade = text_cascade()
    expected = cascade.predict(texts[:5])
    lazy = cascade.predict(da.from_array(np.array(texts[:5], dtype=object), chunks=2))
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), expected)
    series = cascade.predict(dd.from_pandas(pd.Series(texts[:5]), npartitions=2))
    np.testing.assert_array_equal(series.compute(scheduler="sync").to_numpy(), expected)


def test_fit_on_dask_collections_equals_the_in_memory_fit(data):
    """fit holds its rows in memory: a Dask array (of unknown chunk sizes
    too, after a filter) or DataFrame is computed once as the fit starts,
    where a DataFrame failed inside the NaN check and a filtered array inside
    dask ("unknown chunk size")."""
    X_train, X_test, y_train, _ = data
    reference = _cascade().fit(X_train, y_train)
    x = da.from_array(X_train, chunks=200)
    frame = dd.from_pandas(pd.DataFrame(X_train), npartitions=3)
    for lazy_X, lazy_y in [
        (x[x[:, 0] > -np.inf], da.from_array(y_train, chunks=200)),
        (frame, dd.from_pandas(pd.Series(y_train), npartitions=3)),
    ]:
        fitted = _cascade().fit(lazy_X, lazy_y)
        np.testing.assert_array_equal(
            fitted.predict_exit(X_test), reference.predict_exit(X_test)
        )
        np.testing.assert_array_equal(
            fitted.predict_proba(X_test), reference.predict_proba(X_test)
        )
