"""
==========================================
A regression cascade with a budget in cost
==========================================

Three regressors of growing cost on ``make_friedman2`` (a target from 0 to
about 1,700): a ridge regression, a histogram gradient boosting and a random
forest. An :class:`~skadaptive.AdaptiveCascadeRegressor` answers each row with
the cheapest stage the learned policy trusts for it, within an average cost
per row.

The policy sees what the stages answered: each prediction, how far apart
consecutive stages' predictions are, and a stage's own uncertainty where it
has one (the spread of the forest's trees). Here the ridge is right in two
bands of its own prediction and wrong in the middle of its range and at both
ends, which the default policy learns from a piecewise-linear basis of the
prediction.

The costs below are given (relative prediction costs of the three models,
measured once); ``costs="auto"`` measures them on the machine instead.
"""

# %%
# Data and stages
# ---------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_friedman2
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from skadaptive import AdaptiveCascadeRegressor
from skadaptive.plot import CostAccuracyDisplay

X, y = make_friedman2(n_samples=4000, noise=10.0, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

stages = [
    ("ridge", Ridge()),
    ("hgb", HistGradientBoostingRegressor(max_iter=50, random_state=0)),
    ("forest", RandomForestRegressor(60, min_samples_leaf=2, random_state=0)),
]

# %%
# Fit for a budget
# ----------------
# ``budget=0.1`` of a full cost of 1: on average a tenth of what running all
# three stages costs, less than the boosting stage alone (0.12 with the ridge
# before it), so some rows must be answered by the ridge.
cascade = AdaptiveCascadeRegressor(
    stages, costs=[0.005, 0.115, 0.88], budget=0.1, cv=3, random_state=0
).fit(X_train, y_train)

print("share of the policy rows answered by each stage:", cascade.exit_rates_.round(3))
print(f"out-of-sample estimate of the cost: {cascade.expected_cost_:.3f}")

# %%
# On test rows
# ------------
# Against each stage alone, and against answering a random subset of the rows
# at each stage with the same shares (what a policy that cannot tell the rows
# apart would get).
prediction = cascade.predict(X_test)
stage_mse = [
    mean_squared_error(y_test, stage.predict(X_test)) for stage in cascade.estimators_
]
print(
    f"cascade MSE {mean_squared_error(y_test, prediction):.0f} "
    f"at cost {cascade.predict_cost(X_test).mean():.3f}"
)
for (name, _), mse in zip(stages, stage_mse):
    print(f"{name:>7} alone: MSE {mse:.0f}")
shares = np.bincount(cascade.predict_exit(X_test), minlength=3) / len(y_test)
print(f"random rows at the same shares: MSE {shares @ stage_mse:.0f}")

# %%
# The trade-off
# -------------
# Every policy of the fit's frontier on the test rows, as R², next to each
# stage alone and the oracle that answers each row with its best stage.
display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test, metric="r2")
display.ax_.set_title("friedman2: ridge -> hgb -> forest")
plt.show()

# %%
# Another budget, without refitting
# ---------------------------------
# ``with_policy`` learns the policy again from the held-out answers kept by
# ``fit``. A budget is met on average over the rows the policy learned from;
# on other rows the cost scatters around it (a few per cent either way on
# 1,000 test rows). ``budget_confidence=0.95`` chooses the policy so that
# the upper 95 % bound of its cost is within the budget, for a margin; the
# margin can be much more than a few per cent: here
# ``cascade.with_policy(budget=0.25, budget_confidence=0.95)`` keeps one exit
# for every row and spends about half the budget.
for budget in (0.25, 0.5):
    other = cascade.with_policy(budget=budget)
    print(
        f"budget {budget}: test MSE "
        f"{mean_squared_error(y_test, other.predict(X_test)):.0f} at cost "
        f"{other.predict_cost(X_test).mean():.3f}"
    )
