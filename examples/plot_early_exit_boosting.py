"""
=================================================
Early exits in gradient boosting: policy families
=================================================

An :class:`~skadaptive.EarlyExitClassifier` stops each row after as few
boosting iterations of one :class:`~sklearn.ensemble.GradientBoostingClassifier`
as it needs: exit ``k`` answers with the first ``exits[k]`` trees, and a row that
goes on continues from its running score instead of starting over. Costs are
counted in trees, so ``budget=40`` means at most 40 trees per row on average.

The same budget is met by every policy family; ``with_policy`` switches family
without refitting the trees, so the comparison below costs one fit. At a budget,
every family also tries per-exit max-probability thresholds and keeps them
unless its own scores are clearly better out of sample; along the
``cost_weight`` frontier each family uses its own scores.
"""

# %%
# A boosted model with five exits
# -------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split

from skadaptive import EarlyExitClassifier
from skadaptive.plot import CostAccuracyDisplay

X, y = make_classification(
    n_samples=3000,
    n_features=20,
    n_informative=8,
    n_redundant=4,
    flip_y=0.02,
    class_sep=0.8,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)

ee = EarlyExitClassifier(
    GradientBoostingClassifier(n_estimators=160, max_depth=3, random_state=0),
    exits=[10, 20, 40, 80, 160],
    budget=40,  # trees per row, on average
    policy="linear",  # Bolukbasi et al.'s bottom-up rules (the default)
    cv=3,
    random_state=0,
).fit(X_train, y_train)

print("incremental cost of each exit (trees):", ee.costs_)
print(
    f"budget {ee.budget_:g} trees per row: {ee.policy_rows_cost_:.1f} on the policy "
    f"rows, {ee.expected_cost_:.1f} estimated out of sample ({ee.budget_status_})"
)
print("held-out accuracy of each exit alone:", ee.stage_accuracies_.round(3))

# %%
# Every policy family at the same budget
# --------------------------------------
# ``"linear"`` and ``"eenet"`` learn per-exit scores from the held-out
# probabilities (Bolukbasi et al.'s rules, EENet's correctness scores);
# ``"max_proba"``, ``"entropy"`` and ``"patience"`` score rows by a heuristic.
# For a budget, each family chooses one threshold per exit on each kind of
# score it tries, and always tries per-exit max-probability thresholds too:
# another kind replaces them only where its cross-fitted loss on the policy
# rows is lower by more than one standard error (``budget_search_`` lists every
# kind tried, its figures and the one kept). So families can end up with the
# same thresholds: the last column says which kind each kept.
policies = ["linear", "eenet", "max_proba", "entropy", "patience"]
fitted = {name: ee.with_policy(budget=40, policy=name) for name in policies}

all_trees = ee.cumulative_costs_[-1]
print(f"{'policy':>10}  test accuracy  trees per row  kept scores")
for name, model in fitted.items():
    trees = model.predict_cost(X_test).mean()
    search = model.budget_search_
    kept = search["scores"][search["chosen"]]
    print(f"{name:>10}  {model.score(X_test, y_test):13.3f}  {trees:13.1f}  {kept}")
all_trees_accuracy = ee.estimator_.score(X_test, y_test)
print(f"{'all trees':>10}  {all_trees_accuracy:13.3f}  {all_trees:13.1f}")

# %%
# Their frontiers on test rows
# ----------------------------
# Each display evaluates the family's whole frontier (its policy refitted for
# a grid of ``cost_weight``) on the test rows; the markers are each exit alone,
# the oracle, and the operating point chosen for the budget. Along the
# frontier each family answers with its own scores (the heuristics with one
# threshold shared by every exit, as in the papers), so the curves differ even
# where the budget's operating points coincide -- except ``max_proba`` and
# ``entropy``: with two classes, the entropy is a decreasing function of the
# larger probability, so their thresholds pick the same rows and the
# ``entropy`` curve hides ``max_proba``'s.
fig, ax = plt.subplots(figsize=(8.5, 5))
for k, (name, model) in enumerate(fitted.items()):
    display = CostAccuracyDisplay.from_estimator(
        model,
        X_test,
        y_test,
        name=name,
        ax=ax,
        show_stages=k == 0,
        show_oracle=k == 0,
        legend=False,
    )
    # Mark each family's operating point in its own colour.
    display.chosen_point_.set_edgecolor(display.line_.get_color())
ax.axvline(40, color="grey", linestyle=":", label="budget")
ax.set_xlim(0, all_trees * 1.08)
handles, labels = ax.get_legend_handles_labels()
unique = dict(zip(labels, handles))  # one entry per label
ax.legend(unique.values(), unique.keys(), loc="center left", bbox_to_anchor=(1, 0.5))
ax.set_title("gradient boosting, 5 exits: accuracy against trees per row")
fig.tight_layout()
plt.show()

# %%
# Where the rows stop
# -------------------
# The share of test rows answered at each exit, per family, at the budget:
# families that kept the same thresholds stop the same rows.
exits = np.array(ee.exits)
for name, model in fitted.items():
    rates = np.bincount(model.predict_exit(X_test), minlength=len(exits)) / len(y_test)
    print(f"{name:>10}: " + "  ".join(f"{e}:{r:.2f}" for e, r in zip(exits, rates)))
