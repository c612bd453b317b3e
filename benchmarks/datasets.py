"""Datasets, train/test splits and the 3-stage cascade built for each.

Each cascade goes from a linear model to a mid-sized one to an expensive one, so
that accuracy and per-row cost both increase and the last stage's prediction cost
dominates (checked in ``RESULTS.md`` with the measured costs).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0
MNIST1D_SEED = 42  # mnist1d's own default generator seed


@contextmanager
def seeded(seed: int):
    """Split the benchmark datasets, and seed their stages, with ``seed``.

    For the benchmarks that run every setup on several splits (the cascades'
    here and the early exits' of :mod:`benchmarks.early_exit_data`, which
    keeps its own copy of the seed); ``make_classification`` draws a new
    problem with it too.
    """
    from . import early_exit_data

    global SEED
    saved = SEED, early_exit_data.SEED
    SEED = early_exit_data.SEED = seed
    try:
        yield
    finally:
        SEED, early_exit_data.SEED = saved


@dataclass
class Benchmark:
    """One dataset, its split and the stages of its cascade (cheapest first)."""

    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    stages: list[tuple[str, object]]
    notes: list[str] = field(default_factory=list)
    seeds: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """JSON-friendly summary of the data and the stages."""
        return describe(
            self,
            {"n_train": self.y_train, "n_test": self.y_test},
            stages={name: repr(stage) for name, stage in self.stages},
        )


def describe(data, labels: dict, **extra) -> dict:
    """JSON-friendly summary of a split: row counts (of ``labels``), ``extra``."""
    return {
        "name": data.name,
        **{key: int(len(y)) for key, y in labels.items()},
        "n_features": int(data.X_train.shape[1]),
        "n_classes": int(len(np.unique(data.y_train))),
        **extra,
        "notes": data.notes,
        "seeds": data.seeds,
    }


def _linear():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def _mlp(hidden, max_iter=300):
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden, max_iter=max_iter, early_stopping=True, random_state=SEED
        ),
    )


def _split(name, X, y, test_size, stages, notes=(), seeds=None) -> Benchmark:
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=SEED
    )
    return Benchmark(
        name,
        X_train,
        X_test,
        y_train,
        y_test,
        stages,
        list(notes),
        {"split": SEED, "models": SEED, **(seeds or {})},
    )


def digits(quick: bool = False) -> Benchmark:
    """scikit-learn's 1,797 8x8 digits, split in half: the test set is small."""
    X, y = load_digits(return_X_y=True)
    n_trees = (10, 30) if quick else (100, 500)
    stages = [
        ("logistic", _linear()),
        ("forest", RandomForestClassifier(n_trees[0], random_state=SEED)),
        ("extra_trees", ExtraTreesClassifier(n_trees[1], random_state=SEED)),
    ]
    notes = [
        "digits has 1,797 rows, so the test set is 899 rows, not >= 10,000; "
        "accuracy differences below ~0.3 points are one or two rows."
    ]
    return _split("digits", X, y, 0.5, stages, notes)


def mnist1d_rows(num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` mnist1d rows generated locally (never downloaded): its
    train and test parts pooled, features as float64, labels as int64."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = MNIST1D_SEED
    data = make_dataset(args)
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return X, y


def _mnist1d_stages(quick: bool, boosting_rounds: int, middle=None) -> list:
    """Logistic regression, ``middle`` where given, a 30-tree forest and
    gradient boosting with ``boosting_rounds`` (10 trees and 15 rounds when quick)."""
    return [
        ("logistic", _linear()),
        *([("tree", middle)] if middle is not None else []),
        (
            "forest",
            RandomForestClassifier(
                10 if quick else 30, max_depth=12, random_state=SEED
            ),
        ),
        (
            "boosting",
            HistGradientBoostingClassifier(
                max_iter=15 if quick else boosting_rounds,
                early_stopping=False,
                random_state=SEED,
            ),
        ),
    ]


def mnist1d(quick: bool = False) -> Benchmark:
    """mnist1d generated locally (never downloaded); 12,000 test rows."""
    num_samples = 2000 if quick else 30000
    X, y = mnist1d_rows(num_samples)
    stages = _mnist1d_stages(quick, boosting_rounds=200)
    test_size = 0.4 if quick else 12000
    notes = [
        f"mnist1d.make_dataset with num_samples={num_samples}, "
        f"seed={MNIST1D_SEED}; its train and test parts are pooled and re-split."
    ]
    return _split("mnist1d", X, y, test_size, stages, notes, {"mnist1d": MNIST1D_SEED})


def _five_classes(n_rows: int) -> tuple:
    """``n_rows`` of the 5-class ``make_classification`` problem of the cascade
    benchmarks (3 clusters per class, where a linear model fails)."""
    return make_classification(
        n_samples=n_rows,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        n_classes=5,
        n_clusters_per_class=3,
        random_state=SEED,
    )


def synthetic(quick: bool = False) -> Benchmark:
    """make_classification: 5 classes of 3 clusters each, where a linear model fails."""
    n_rows = 3000 if quick else 20000
    X, y = _five_classes(n_rows)
    big = (64, 64) if quick else (512, 512)
    stages = [
        ("logistic", _linear()),
        ("small_mlp", _mlp((64,), max_iter=100 if quick else 300)),
        ("big_mlp", _mlp(big, max_iter=50 if quick else 300)),
    ]
    notes = [
        f"make_classification(n_samples={n_rows}, n_features=20, n_informative=10, "
        "n_redundant=4, n_classes=5, n_clusters_per_class=3)."
    ]
    return _split(
        "make_classification",
        X,
        y,
        0.5,
        stages,
        notes,
        {"make_classification": SEED},
    )


DATASETS = {"digits": digits, "mnist1d": mnist1d, "make_classification": synthetic}


def mnist1d_small(
    quick: bool = False, middle=None, test_rows: int | None = None
) -> Benchmark:
    """6,000 mnist1d rows (40 % for test): logistic regression, ``middle``
    where given, a 30-tree forest and 100-iteration boosting (the cascade of
    the skip and recalibration benchmarks). With ``test_rows``, that many
    more rows are generated for test (the same 3,600 or 1,200 training
    rows' worth)."""
    n_rows = 2000 if quick else 6000
    X, y = mnist1d_rows(n_rows if test_rows is None else n_rows * 3 // 5 + test_rows)
    stages = _mnist1d_stages(quick, boosting_rounds=100, middle=middle)
    return _split("mnist1d", X, y, 0.4 if test_rows is None else test_rows, stages)


def classification_mlps(
    quick: bool = False,
    middle=None,
    quick_rows: int = 3000,
    test_rows: int | None = None,
) -> Benchmark:
    """6,000 rows of a 5-class ``make_classification`` (half for test):
    logistic regression, ``middle`` where given, and two MLPs (the cascade of
    the skip and recalibration benchmarks). With ``test_rows``, that many
    more rows are generated for test (half the rows' worth for training)."""
    n_rows = quick_rows if quick else 6000
    X, y = _five_classes(n_rows if test_rows is None else n_rows // 2 + test_rows)
    stages = [
        ("logistic", _linear()),
        *([("tree", middle)] if middle is not None else []),
        ("small_mlp", _mlp((64,), max_iter=100 if quick else 300)),
        ("big_mlp", _mlp((64, 64) if quick else (128, 128), max_iter=300)),
    ]
    test_size = 0.5 if test_rows is None else test_rows
    return _split("make_classification", X, y, test_size, stages)


def load(name: str, quick: bool = False) -> Benchmark:
    """The benchmark called ``name`` (a key of :data:`DATASETS`)."""
    return DATASETS[name](quick=quick)
