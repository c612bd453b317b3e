"""
===============================================
Grid search over the policy, cheaply and wisely
===============================================

The exit policy's parameters -- ``cost_weight``, ``budget``, ``policy`` --
grid-search like any other hyperparameter. Three tools make that cheap and
useful:

- ``memory=``: the stages are fitted (and cross-fitted) once per data split and
  cached; every candidate that differs only in policy parameters reuses them;
- :func:`~skadaptive.metrics.make_average_cost_scorer` and
  :func:`~skadaptive.metrics.make_cost_aware_scorer`: scorers that route the
  rows and report their cost;
- :func:`~skadaptive.metrics.cheapest_within`: a ``refit=`` rule that picks
  the cheapest candidate within a tolerance of the best accuracy.
"""

# %%
# A two-stage cascade with fixed costs
# ------------------------------------
# A grid over ``budget`` needs costs in a fixed unit (measured seconds would
# differ from split to split): here the forest counts as 25 times the linear
# model.
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.metrics import (
    cheapest_within,
    make_average_cost_scorer,
    make_cost_aware_scorer,
)
from skadaptive.plot import CostAccuracyDisplay

X, y = make_classification(
    n_samples=2000,
    n_features=20,
    n_informative=6,
    n_redundant=2,
    n_clusters_per_class=3,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)
stages = [
    ("lr", LogisticRegression(max_iter=1000)),
    ("forest", RandomForestClassifier(n_estimators=50, random_state=0)),
]
cache = tempfile.TemporaryDirectory()  # deleted at the end
cascade = AdaptiveCascadeClassifier(
    stages, costs=[1.0, 25.0], cv=3, memory=cache.name, random_state=0
)

# %%
# Policy family and operating point, with the cheapest good candidate
# -------------------------------------------------------------------
# ``budget`` and ``cost_weight`` are alternatives: two grids in one list. The
# search scores accuracy and (minus) the average cost in the units of
# ``costs``, and refits the cheapest candidate within one accuracy point of
# the best.
grid = [
    {"policy": ["linear", "eenet"], "cost_weight": [0.0, 0.01, 0.05]},
    {"policy": ["eenet", "max_proba"], "budget": [3.0, 6.0, 10.0]},
]
search = GridSearchCV(
    cascade,
    grid,
    cv=3,
    scoring={
        "accuracy": "accuracy",
        "neg_average_cost": make_average_cost_scorer(normalize=False),
    },
    refit=cheapest_within(0.01),
)
start = time.perf_counter()
search.fit(X_train, y_train)
n_candidates = len(search.cv_results_["params"])
print(
    f"{n_candidates} candidates x 3 splits in {time.perf_counter() - start:.1f} s "
    "(the stages were fitted once per split)"
)
results = search.cv_results_
best = search.best_index_
print("chosen:", search.best_params_)
print(
    f"  cross-validated accuracy {results['mean_test_accuracy'][best]:.3f} "
    f"(best {results['mean_test_accuracy'].max():.3f}), "
    f"cost {-results['mean_test_neg_average_cost'][best]:.2f} of at most 26"
)

# %%
# The chosen cascade on test rows, next to every candidate
# --------------------------------------------------------
# The candidates' cross-validated accuracy and cost are plotted as a baseline
# (on the training folds' validation rows, so not strictly comparable with the
# test curve).
display = CostAccuracyDisplay.from_estimator(
    search.best_estimator_,
    X_test,
    y_test,
    name="chosen cascade (test rows)",
    baselines={
        "search candidates (CV)": (
            -results["mean_test_neg_average_cost"],
            results["mean_test_accuracy"],
        )
    },
)
display.ax_.set_title("grid search with cheapest_within(0.01)")
plt.show()

# %%
# One number to maximise: a cost-aware scorer
# -------------------------------------------
# ``make_cost_aware_scorer(0.05)`` scores ``accuracy - 0.05 * cost``, with the
# cost as a fraction of running every stage (the same scale as
# ``cost_weight``). The cache from the first search still holds the stages.
start = time.perf_counter()
aware = GridSearchCV(
    cascade,
    {"cost_weight": [0.0, 0.01, 0.05, 0.2]},
    cv=3,
    scoring=make_cost_aware_scorer(0.05),
).fit(X_train, y_train)
print(f"second search: {time.perf_counter() - start:.1f} s, all from the cache")
print(
    f"best cost_weight {aware.best_params_['cost_weight']}: "
    f"cross-validated score {aware.best_score_:.3f}"
)
chosen = aware.best_estimator_
print(
    f"on test rows: accuracy {chosen.score(X_test, y_test):.3f} at "
    f"{np.mean(chosen.predict_cost(X_test)) / 26:.1%} of the full cost"
)
cache.cleanup()
