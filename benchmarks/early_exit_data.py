"""Datasets and backbones of the early-exit benchmark.

Each dataset is split three ways: the backbone is fitted on the train rows once,
then frozen; the exit policy is learned on the validation rows (the held-out
rows of ``EarlyExitClassifier``); everything is evaluated on the test rows.
mnist1d reuses :func:`benchmarks.datasets.mnist1d` (its train part is split
again into train and validation), so both benchmarks see the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skadaptive import EarlyExitClassifier

from . import datasets

SEED = datasets.SEED
VALIDATION_FRACTION = 1 / 3  # of the rows that are not test rows
DATASETS = ("mnist1d", "make_classification")
BACKBONES = ("gradient_boosting", "random_forest")


@dataclass
class Split:
    """Train rows (backbone), validation rows (policy) and test rows."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    notes: list[str] = field(default_factory=list)
    seeds: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """JSON-friendly summary of the data."""
        labels = {"n_train": self.y_train, "n_validation": self.y_val}
        return datasets.describe(self, {**labels, "n_test": self.y_test})


def _three_way(name, X_rest, y_rest, X_test, y_test, notes, seeds) -> Split:
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest,
        y_rest,
        test_size=VALIDATION_FRACTION,
        stratify=y_rest,
        random_state=SEED,
    )
    notes = [
        *notes,
        f"The non-test rows are split {1 - VALIDATION_FRACTION:.0%} train "
        f"(backbone) / {VALIDATION_FRACTION:.0%} validation (exit policy), "
        f"stratified, seed {SEED}.",
    ]
    return Split(name, X_train, y_train, X_val, y_val, X_test, y_test, notes, seeds)


def mnist1d(quick: bool = False) -> Split:
    """The rows of :func:`benchmarks.datasets.mnist1d` (12,000 test rows)."""
    bench = datasets.mnist1d(quick=quick)
    return _three_way(
        "mnist1d",
        bench.X_train,
        bench.y_train,
        bench.X_test,
        bench.y_test,
        [*bench.notes, "Same train/test split as benchmarks/run_cascade.py."],
        bench.seeds,
    )


def synthetic(quick: bool = False) -> Split:
    """make_classification, 4 classes of 3 clusters: accuracy grows with trees."""
    n_rows = 1500 if quick else 30000
    params = dict(
        n_samples=n_rows,
        n_features=40,
        n_informative=10,
        n_redundant=5,
        n_classes=4,
        n_clusters_per_class=3,
        flip_y=0.01,
        random_state=SEED,
    )
    X, y = make_classification(**params)
    test_size = 0.4 if quick else 12000
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=SEED
    )
    args = ", ".join(f"{k}={v}" for k, v in params.items())
    notes = [f"make_classification({args}); {len(y_test)} test rows."]
    seeds = {"split": SEED, "models": SEED, "make_classification": SEED}
    return _three_way(
        "make_classification", X_rest, y_rest, X_test, y_test, notes, seeds
    )


LOADERS = {"mnist1d": mnist1d, "make_classification": synthetic}


def load(name: str, quick: bool = False) -> Split:
    """The split dataset called ``name`` (one of :data:`DATASETS`)."""
    return LOADERS[name](quick=quick)


def backbone(kind: str, quick: bool = False) -> tuple[object, list[int]]:
    """An unfitted backbone and its exits (numbers of trees; boosting: iterations).

    Gradient boosting is kept cheap enough to fit on 2 cores (depth 3, half of
    the rows per iteration); the forest is fitted with ``n_jobs=2`` and predicts
    with ``n_jobs=1`` (set by the runner) so that both sides of the wall-clock
    comparison run on one thread.
    """
    n_trees = 30 if quick else 200
    exits = [5, 10, 20, 30] if quick else [10, 25, 50, 100, 200]
    if kind == "gradient_boosting":
        model = GradientBoostingClassifier(
            n_estimators=n_trees, max_depth=3, subsample=0.5, random_state=SEED
        )
    elif kind == "random_forest":
        model = RandomForestClassifier(n_trees, n_jobs=2, random_state=SEED)
    else:
        raise ValueError(f"Unknown backbone {kind!r}; expected one of {BACKBONES}.")
    return model, exits


def frozen_early_exit(
    dataset: str, backbone_kind: str, quick: bool = False, exits=None
):
    """The backbone fitted on the train rows (predicting on one thread), and
    the default early-exit estimator over it, frozen, with its policy learned
    on the validation rows. ``exits`` replaces the backbone's exits of
    :func:`backbone`. Returns ``(split, model, estimator)``."""
    split = load(dataset, quick=quick)
    model, default = backbone(backbone_kind, quick=quick)
    exits = default if exits is None else exits
    model.fit(split.X_train, split.y_train)
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)
    estimator = EarlyExitClassifier(FrozenEstimator(model), exits=exits, random_state=0)
    estimator.fit(split.X_val, split.y_val)
    return split, model, estimator
