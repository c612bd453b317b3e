"""Saving and loading fitted estimators: pickle/joblib, or skops without pickle.

A fitted estimator pickles with everything it needs to predict (an ONNX stage
carries its model bytes, not a path) and records the skadaptive and
scikit-learn versions it was saved with; loading it under other versions
warns (:class:`InconsistentVersionWarning`).

`skops <https://skops.readthedocs.io>`_ (``pip install "skadaptive[skops]"``)
saves the same estimators without pickle; loading then runs no code from the
file, and refuses every type it was not told to trust. :func:`trusted_types`
lists the package's own; skops also asks about the types of the stages inside
(a scikit-learn tree's ``Tree``), which
``skops.io.get_untrusted_types`` lists for review. To call ``with_policy`` or
read ``frontier_`` after loading, the estimator keeps its policy rows;
:meth:`~skadaptive.AdaptiveCascadeClassifier.discard_policy_rows` drops them
from a model that only predicts (80 % of the joblib file of a digits cascade
of a logistic regression and a tree, half of its skops file).

Examples
--------
>>> import skops.io as sio  # doctest: +SKIP
>>> from skadaptive.persistence import trusted_types
>>> sio.dump(cascade, "cascade.skops")  # doctest: +SKIP
>>> untrusted = sio.get_untrusted_types(file="cascade.skops")  # doctest: +SKIP
>>> others = [t for t in untrusted if t not in trusted_types()]  # doctest: +SKIP
>>> # review `others` (the stages' own types), then:
>>> cascade = sio.load("cascade.skops",
...                    trusted=trusted_types() + others)  # doctest: +SKIP
"""

from __future__ import annotations

import sklearn

from ._version import __version__
from ._warnings import warn

__all__ = ["InconsistentVersionWarning", "trusted_types"]

# Every skadaptive type a fitted estimator of this package can hold.
_TRUSTED = (
    "skadaptive._cascade.AdaptiveCascadeClassifier",
    "skadaptive._cascade.AdaptiveCascadeRegressor",
    "skadaptive._early_exit.EarlyExitClassifier",
    "skadaptive._early_exit.EarlyExitRegressor",
    "skadaptive.policies._policy.CascadePolicy",
    "skadaptive.policies._policy.HeuristicRule",
    "skadaptive.policies._policy.PolicyEvaluation",
    "skadaptive.policies._bottom_up.ExitRule",
    "skadaptive.policies._eenet.EENetRule",
    "skadaptive.policies._eenet.EENetScorers",
    "skadaptive.policies._eenet._ExitScorer",
    "skadaptive.policies._skips.SkipPolicy",
    "skadaptive.policies._skips.JumpRule",
    "skadaptive.policies._router.Router",
    "skadaptive.stages._cross_fitted.CrossFitted",
    "skadaptive.stages._tree_exits.TreeEnsembleExits",
    "skadaptive.stages._booster_exits.BoosterExits",
    "skadaptive.stages._booster_exits._Objective",
    "skadaptive.stages._chain_exits.ChainExits",
    "skadaptive.stages._chain_exits.ChainExitsRegressor",
    "skadaptive.stages._combined.ExitCombiner",
    "skadaptive.stages._combined_regression.RegressionCombiner",
    "skadaptive.stages.onnx._classifier.OnnxClassifier",
    "skadaptive.stages.onnx._multi_exit.OnnxMultiExit",
    "skadaptive.stages.onnx._regressor.OnnxRegressor",
    "skadaptive.stages.onnx._io._InputSpec",
    "skadaptive.stages.onnx._graph._Segment",
    # scikit-learn's Bunch, which holds a cascade's named_estimators_
    "sklearn.utils._bunch.Bunch",
    # Built-in types that skops does not trust of itself: an ONNX graph's
    # segments hold the tensors they carry as a frozenset, and an ONNX
    # stage keeps its classes as given (range(10), as the docs write them).
    "builtins.frozenset",
    "builtins.range",
)


def trusted_types() -> list[str]:
    """The types that a saved estimator of this package holds of its own.

    skadaptive's classes, scikit-learn's ``Bunch`` of named stages, and the
    built-in ``frozenset`` and ``range`` that its ONNX stages hold.

    Pass them (with the reviewed types of your own stages) as ``trusted`` to
    ``skops.io.load``.

    Returns
    -------
    types : list of str
        Fully qualified names, as ``skops.io.get_untrusted_types`` reports.

    Examples
    --------
    >>> from skadaptive.persistence import trusted_types
    >>> "skadaptive._cascade.AdaptiveCascadeClassifier" in trusted_types()
    True
    """
    return list(_TRUSTED)


class InconsistentVersionWarning(UserWarning):
    """A fitted estimator was saved with another skadaptive or scikit-learn.

    Its policy and stages are loaded as they were; the code that runs them is
    this version's, so check its answers (or refit) before relying on them.

    Examples
    --------
    >>> import warnings
    >>> from skadaptive.persistence import InconsistentVersionWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", InconsistentVersionWarning)
    ...     # loading a model saved under other versions would raise here
    """


def _versions() -> dict:
    return {"skadaptive": __version__, "scikit-learn": sklearn.__version__}


def record_versions(state: dict) -> dict:
    """``state`` (of ``__getstate__``) with the versions it was made with."""
    return {**state, "_saved_with_versions": _versions()}


def check_versions(state: dict, owner: str) -> None:
    """Warn when ``state`` was saved under other versions of the packages."""
    if "_saved_with_versions" not in state and "policy_" in state:
        warn(
            f"Loading a fitted {owner} saved without a record of its versions: "
            "it was saved by a skadaptive from before models recorded them, "
            "whose fitted attributes differ from this one's. predict may work, "
            "other methods can fail; refit it with this version.",
            InconsistentVersionWarning,
        )
    saved = state.get("_saved_with_versions") or {}
    now = _versions()
    changed = [
        f"{package} {version} (now {now[package]})"
        for package, version in saved.items()
        if package in now and version != now[package]
    ]
    if changed:
        warn(
            f"Loading {owner} saved with {', '.join(changed)}; this might lead "
            "to breaking code or invalid results. Refit it with these versions, "
            "or load it with the versions it was saved with.",
            InconsistentVersionWarning,
        )
