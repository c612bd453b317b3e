"""
=====================================
A cascade of tabular models on digits
=====================================

Three classifiers of growing cost on scikit-learn's bundled digits: a logistic
regression, a random forest and an RBF support vector machine (calibrated, for
probabilities). An
:class:`~skadaptive.AdaptiveCascadeClassifier` runs them from the cheapest to
the most expensive; after each stage a learned exit policy answers the rows the
stages so far are sure of, and only the other rows reach the next stage.

``costs="auto"`` measures each stage's prediction time per row, so the costs
below are seconds on the machine that ran this example.
"""

# %%
# Data and stages
# ---------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.plot import CostAccuracyDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)

stages = [
    ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
    ("forest", RandomForestClassifier(n_estimators=150, random_state=0)),
    ("svc", CalibratedClassifierCV(SVC(gamma=0.001), ensemble=False)),
]

# %%
# Fit the cascade
# ---------------
# ``cv=3`` cross-fits every stage to get probabilities for rows it did not see;
# the policy is learned on those, then the stages are refitted on all rows.
# ``cost_weight=0.01`` gives up one accuracy point only to save the whole cost
# of running every stage.
cascade = AdaptiveCascadeClassifier(
    stages, costs="auto", cost_weight=0.01, cv=3, random_state=0
).fit(X_train, y_train)

print("measured microseconds per row:", np.round(cascade.costs_ * 1e6, 1))
print("held-out share of rows answered by each stage:", cascade.exit_rates_.round(2))

# %%
# On test rows
# ------------
# Each stage runs only on the rows the previous one deferred.
exit_stage = cascade.predict_exit(X_test)
cost = cascade.predict_cost(X_test)
full_cost = cascade.cumulative_costs_[-1]
print(f"cascade accuracy: {cascade.score(X_test, y_test):.3f}")
for name, stage in cascade.named_estimators_.items():
    print(f"{name:>8} alone: {stage.score(X_test, y_test):.3f}")
print("rows answered by each stage:", np.bincount(exit_stage, minlength=3))
print(f"average cost: {cost.mean() / full_cost:.1%} of running every stage")

# %%
# The trade-off
# -------------
# :class:`~skadaptive.plot.CostAccuracyDisplay` evaluates every policy of the
# fit's frontier on the test rows, next to each stage alone and the oracle
# that answers at the first stage that is right.
display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test)
display.ax_.set_title("digits: logreg -> forest -> svc")
plt.show()

# %%
# Another operating point, without refitting
# ------------------------------------------
# ``with_policy`` learns the policy again from the held-out probabilities kept
# by ``fit``; the stages are shared. Here: at most 4 % of the full cost per
# row on average (on the held-out rows).
cheaper = cascade.with_policy(budget=0.04 * full_cost)
print(
    f"budget {cheaper.budget_ / full_cost:.0%} of the full cost: policy-row cost "
    f"{cheaper.policy_rows_cost_ / full_cost:.1%}, out-of-sample estimate "
    f"{cheaper.expected_cost_ / full_cost:.1%}, test cost "
    f"{cheaper.predict_cost(X_test).mean() / full_cost:.1%}, test accuracy "
    f"{cheaper.score(X_test, y_test):.3f}"
)
