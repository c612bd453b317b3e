"""Every warning names the line of the user's code that called the package,
whatever path inside skadaptive and scikit-learn led to it."""

from __future__ import annotations

import warnings

import pytest
from sklearn.datasets import make_classification, make_friedman1
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skadaptive import AdaptiveCascadeClassifier, AdaptiveCascadeRegressor


def _classifier(**params):
    stages = [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(random_state=0)),
    ]
    return AdaptiveCascadeClassifier(stages, cv=0.4, random_state=0, **params)


def _regressor(**params):
    stages = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))]
    return AdaptiveCascadeRegressor(stages, cv=0.4, random_state=0, **params)


def _caught(call, match):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    found = [w for w in caught if match in str(w.message)]
    assert found, [str(w.message) for w in caught]
    return [w.filename for w in found]


X_small, y_small = make_classification(60, random_state=0)
X_reg, y_reg = make_friedman1(200, random_state=0)


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(
            lambda: _classifier(costs=[1, 2], answer="combined").fit(X_small, y_small),
            "answer='combined' answers with each stage's own",
            id="combined-classifier-fit",
        ),
        pytest.param(
            lambda: _regressor(costs=[1, 2], answer="combined").fit(
                X_reg[:60], y_reg[:60]
            ),
            "answer='combined' answers with each stage's own",
            id="combined-regressor-fit",
        ),
        pytest.param(
            lambda: _regressor(costs=[1, 2], policy="disagreement").fit(X_reg, y_reg),
            "policy='disagreement' cannot tell rows apart",
            id="disagreement-fit",
        ),
        pytest.param(
            lambda: (
                _regressor(costs=[1, 2])
                .fit(X_reg, y_reg)
                .with_policy(cost_weight=0.01, policy="disagreement")
            ),
            "policy='disagreement' cannot tell rows apart",
            id="disagreement-with_policy",
        ),
        pytest.param(
            lambda: _classifier(costs=[2, 1]).fit(X_small, y_small),
            "costs less per row than the stage before it",
            id="unordered-costs-fit",
        ),
        pytest.param(
            lambda: _classifier(costs=[1, 2], budget=1.5, cost_weight=0.3).fit(
                X_small, y_small
            ),
            "is ignored: budget=",
            id="cost-weight-ignored-fit",
        ),
        pytest.param(
            lambda: GridSearchCV(
                _classifier(costs=[1, 2], budget=1.5, cost_weight=0.3),
                {"cv": [0.4, 0.5]},
                cv=2,
            ).fit(X_small, y_small),
            "is ignored: budget=",
            id="cost-weight-ignored-grid-search",
        ),
    ],
)
def test_a_warning_points_at_the_callers_line(call, match):
    assert set(_caught(call, match)) == {__file__}
