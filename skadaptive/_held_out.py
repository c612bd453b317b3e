"""Held-out stage probabilities: the data every exit policy is learned from.

Stage probabilities on a stage's own training rows are over-confident, so a policy
learned on them exits too early. Like ``StackingClassifier``, each stage that we
fit is cross-fitted (or fitted on a train split) to get probabilities for rows it
did not see, then refitted on all rows (or, with ``refit=False`` and one
split, kept as fitted). Frozen stages are used as given.

The whole step is a module-level function so that ``memory=`` can cache it: a
grid search over policy parameters then fits the stages once per data split.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, check_cv, train_test_split
from sklearn.utils import Bunch
from sklearn.utils.parallel import Parallel, delayed

from ._sklearn_private import _check_method_params, _num_samples, _safe_indexing
from ._validation import is_frozen
from .stages import IndependentStages, exit_probas, measure_exit_seconds
from .stages._cross_fitted import CrossFitted, content_folds


def member_labels(source, index_labels: np.ndarray | None = None) -> np.ndarray:
    """The labels ``source``'s ``classes_`` stand for: those classes, or for a
    member fitted on class indices (see :func:`fit_stages_on_held_out`) the
    labels ``index_labels`` of those indices."""
    own = np.asarray(source.classes_)
    return own if index_labels is None else index_labels[own.astype(np.intp)]


def exits_in_class_order(
    source, X, classes: np.ndarray, index_labels: np.ndarray | None = None
) -> list[np.ndarray]:
    """Every exit's probabilities of ``source`` on ``X``, one column per class.

    A member fitted on a cross-validation fold that lacked a class has no
    column for it; that class gets probability 0, as in ``cross_val_predict``.
    With ``classes=None`` (regression) the exits' answers as they are.
    ``index_labels``: see :func:`member_labels`.
    """
    probas = exit_probas(source, X)
    if classes is None:
        return probas
    source_classes = member_labels(source, index_labels)
    if len(source_classes) == len(classes) and np.array_equal(source_classes, classes):
        return probas
    columns = np.searchsorted(classes, source_classes)
    full = []
    for proba in probas:
        expanded = np.zeros((proba.shape[0], len(classes)))
        expanded[:, columns] = proba
        full.append(expanded)
    return full


def _fit_one(estimator, X, y, fit_params, train, name=None):
    fitted = clone(estimator)
    params = _check_method_params(X, fit_params, train)
    try:
        fitted.fit(_safe_indexing(X, train), _safe_indexing(y, train), **params)
    except ValueError as exc:
        if "Invalid classes inferred" not in str(exc):
            raise
        # XGBoost's refusal, from a model the estimator cannot see inside.
        raise ValueError(
            f"Stage {name!r} ({type(estimator).__name__}) gave an XGBoost "
            "classifier labels it refused: it takes only the labels 0 .. k - 1 "
            "of the k classes of its training rows (XGBoost said: "
            f"{str(exc).strip()[:300]}). The estimator fits an XGBClassifier on "
            "such indices where it is the stage or a pipeline's last step, not "
            "inside another model: pass it so, or fit on y encoded as 0 .. "
            "n_classes - 1 (sklearn.preprocessing.LabelEncoder) with folds "
            "whose training rows hold every class."
        ) from exc
    return fitted


def _fit_and_predict_fold(
    estimator,
    X,
    y,
    fit_params,
    train,
    test,
    classes,
    make_source,
    name,
    keep=False,
    on_indices=False,
):
    """The fold's held-out exits; with ``keep``, also the member fitted and
    the labels of its class indices (None: fitted on the labels).

    With ``on_indices``, ``y`` holds the class indices, and the member is
    fitted on the indices of the classes in the fold's training rows: XGBoost
    refuses a gap in them, and a fold without a class answers it with
    probability 0, as a member fitted on the labels does.
    """
    index_labels = None
    if on_indices:
        present = np.unique(_safe_indexing(y, train))
        index_labels = classes[present]
        y = np.searchsorted(present, y)
    try:
        fitted = _fit_one(estimator, X, y, fit_params, train, name)
        source = make_source([fitted], [name])
        probas = exits_in_class_order(
            source, _safe_indexing(X, test), classes, index_labels
        )
    except Exception as exc:
        # A model's own refusal says nothing of which stage it is, nor that
        # the fold's training rows lacked a class (a class with fewer rows
        # than folds, which a model can refuse its own way: a fold of one
        # class, an objective set for every class). The error is kept as it
        # is, its type and words, and the traceback's note says both: the
        # missing class is mentioned, not blamed (a text column or sparse
        # rows fail the same fold for their own reasons). The classes it
        # lacked (none for a regressor) are counted only here, where a fit
        # failed.
        missing = (
            []
            if classes is None
            else np.setdiff1d(
                classes, index_labels if on_indices else _safe_indexing(y, train)
            )
        )
        if hasattr(exc, "add_note") and (len(missing) or repr(name) not in str(exc)):
            note = (
                f"(raised by stage {name!r} ({type(estimator).__name__}), fitted "
                "on a cross-fitting fold's training rows"
            )
            if len(missing):
                note += (
                    f", which hold no row of class(es) {missing.tolist()}: if "
                    "that is the cause, give those classes more rows (or drop "
                    "or merge them), use fewer folds, or pass the fitted model "
                    "in a FrozenEstimator"
                )
            exc.add_note(note + ")")
        raise
    return (probas, fitted, index_labels) if keep else probas


def _timed(function):
    """``function`` returning ``(result, seconds)``, run where the job runs."""

    def timed(*args):
        start = time.perf_counter()
        result = function(*args)
        return result, time.perf_counter() - start

    return timed


def _reporting(results, messages: list[str], verbose: int) -> list:
    """Collect ``(result, seconds)`` pairs in order, printing each as it ends."""
    collected = []
    for n, ((result, seconds), message) in enumerate(zip(results, messages), 1):
        if verbose:
            print(f"[skadaptive] {message} ({seconds:.1f} s) [{n}/{len(messages)}]")
        collected.append(result)
    return collected


def _check_all_classes(
    source, classes: np.ndarray, name: str, fold=None, index_labels=None
) -> None:
    """Refuse a kept member whose training rows lacked a class: with
    ``refit=False`` it answers new rows, and could never answer that class.
    ``fold``: the member's fold, where several are kept (an int ``cv``)."""
    missing = np.setdiff1d(classes, member_labels(source, index_labels))
    if not len(missing):
        return
    if fold is None:
        raise ValueError(
            f"refit=False keeps stage {name!r} as fitted on the training rows "
            "of its one split (without the policy rows), which hold no row of "
            f"class(es) {missing.tolist()}: it could never answer them. Hold out "
            "fewer rows of those classes (a float cv stratifies by class), or "
            "use refit=True."
        )
    raise ValueError(
        f"refit=False keeps stage {name!r} as its fold models, and the model of "
        f"fold {fold} was fitted on rows holding no row of class(es) "
        f"{missing.tolist()}: every row of them fell in that fold (an int cv's "
        "folds follow the rows' content, not their classes, and random_state "
        "does not change them), so it could never answer them. Use fewer "
        "folds, more rows of those classes, a float cv (stratified), or "
        "refit=True."
    )


def _check_class_order(
    source, classes: np.ndarray, name: str, index_labels=None
) -> None:
    """Refuse a member fitted here whose ``classes_`` are not the estimator's.

    Its held-out probabilities were put in the order of ``classes`` (sorted,
    as scikit-learn classifiers give them), but at prediction its columns are
    read as they come: in another order they would answer for other classes.
    """
    own = member_labels(source, index_labels)
    if np.array_equal(own, classes):
        return
    missing = np.setdiff1d(classes, own)
    if len(missing) or len(own) != len(classes):
        raise ValueError(
            f"Stage {name!r} has classes_ {own.tolist()} once fitted on every "
            f"row, not the classes of y, {classes.tolist()}: it has no "
            f"probability column for {missing.tolist()} (or columns of its "
            "own), and could never answer them. Use a model that learns every "
            "class it is fitted on."
        )
    raise ValueError(
        f"Stage {name!r} has classes_ {own.tolist()} once fitted, not "
        f"{classes.tolist()}: the estimator reads every stage's predict_proba "
        "columns in the order of its sorted classes_, as scikit-learn "
        "classifiers give them, so this stage's columns would answer for "
        "other classes. Wrap the model so that classes_ is sorted and its "
        "probability columns follow that order."
    )


def _check_same_exit_count(folds: list[list], estimator) -> None:
    counts = sorted({len(fold) for fold in folds})
    if len(counts) > 1:
        raise ValueError(
            f"{type(estimator).__name__} gave a different number of exits in "
            f"different cross-validation folds ({counts}); the policy needs the "
            "same exits on every row. Fix the number of exits (e.g. no early "
            "stopping), or pass the fitted model in a FrozenEstimator."
        )


def _policy_splits(cv, X, y, splitter_params, random_state, classifier=True):
    """Train/test index pairs whose test rows become the policy rows
    (stratified by class for classifiers, as scikit-learn's defaults are)."""
    n_rows = _num_samples(X)
    if isinstance(cv, numbers.Real) and not isinstance(cv, numbers.Integral):
        try:
            train, test = train_test_split(
                np.arange(n_rows),
                test_size=cv,
                stratify=y if classifier else None,
                random_state=random_state,
            )
        except ValueError as exc:
            if not classifier:
                raise
            labels, counts = np.unique(y, return_counts=True)
            rarest = np.argsort(counts, kind="stable")[:3]
            fewest = dict(zip(labels[rarest].tolist(), counts[rarest].tolist()))
            raise ValueError(
                f"cv={cv} holds out a fraction of the rows stratified by class, "
                "which needs at least two rows of every class and room for "
                f"every class on both sides ({exc}); the least frequent "
                f"classes and their rows: {fewest}. "
                "Drop or merge the rarest classes, hold out another fraction, "
                "or use an int cv (cross-fitting, which warns about a class "
                "with fewer rows than folds)."
            ) from exc
        return [(np.sort(train), np.sort(test))]
    if not classifier and _several_folds(cv):
        # Shuffled: scikit-learn's KFold cuts the rows in their order, and
        # rows sorted by the target (a sorted file) left each fold's models
        # without the range of targets they answered, which the policy then
        # learned from. Fixed without a random_state, as the folds of a
        # classifier's int cv are.
        splitter = KFold(
            5 if cv is None else int(cv),
            shuffle=True,
            random_state=0 if random_state is None else random_state,
        )
    else:
        splitter = check_cv(cv, y, classifier=classifier)
    try:
        return list(splitter.split(X, y, **splitter_params))
    except ValueError as exc:
        if "groups" not in str(exc) or splitter_params.get("groups") is not None:
            raise
        raise ValueError(
            f"cv={splitter!r} needs groups to split the rows ({exc}), and none "
            "reached it. Enable metadata routing and pass them to fit: "
            "sklearn.set_config(enable_metadata_routing=True), then "
            "fit(X, y, groups=groups) (in a search, the search's fit passes "
            "them on)."
        ) from exc


def _several_folds(cv) -> bool:
    """Whether ``cv`` is a number of folds (None: the default five)."""
    return cv is None or (
        isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv > 1
    )


def _held_out_splits(
    cv, X, y, splitter_params, random_state, classes, refit, make_source, weight
) -> tuple[list, np.ndarray, np.ndarray | None]:
    """The train/test splits whose test rows are the policy rows (checked),
    those rows, and with the fold models kept (``refit=False``, an int
    ``cv``) the folds' boundaries of
    :func:`~skadaptive.stages._cross_fitted.content_folds` (else None)."""
    n_rows = _num_samples(X)
    boundaries = None
    no_features = getattr(X, "shape", (0, 1))[1:] == (0,)
    if not refit and _several_folds(cv) and not no_features:
        # Each row held out in the fold its content's hash falls in: a new
        # row equal to it is answered by the same fold model, and each fold
        # model answers the share of new rows it held out.
        n_folds = 5 if cv is None else int(cv)
        folds, boundaries = content_folds(X, n_folds, weight)
        splits = [
            (np.flatnonzero(folds != f), np.flatnonzero(folds == f))
            for f in range(n_folds)
        ]
        if any(len(test) == 0 for _, test in splits):
            raise ValueError(
                f"refit=False with cv={n_folds} holds out the rows in "
                f"{n_folds} folds of equal rows together, but {n_rows} rows "
                f"with their copies do not make {n_folds} folds. Use fewer "
                "folds or more distinct rows."
            )
    else:
        splits = _policy_splits(
            cv, X, y, splitter_params, random_state, classifier=classes is not None
        )
    for k, (train, test) in enumerate(splits):
        shared = np.intersect1d(np.asarray(train), np.asarray(test))
        if len(shared):
            raise ValueError(
                f"cv's split {k} tests {len(shared)} of the rows it trains on "
                f"(rows {shared[:5].tolist()}"
                + (" ..." if len(shared) > 5 else "")
                + "): the policy would learn from the stages' answers on their "
                "own training rows, over-confident, and exit too early on new "
                "rows. Give splits whose test rows are not in their training "
                "rows (a KFold, or a float hold-out fraction)."
            )
    test_rows = np.concatenate([test for _, test in splits])
    if len(np.unique(test_rows)) != len(test_rows):
        raise ValueError(
            "cv must put each row in at most one test fold (a partition such "
            "as KFold, or a float hold-out fraction); repeated or shuffled "
            "splitters would answer a row twice."
        )
    keep_folds = not refit and len(splits) > 1
    if keep_folds and not getattr(
        getattr(make_source, "__self__", None), "takes_cross_fitted", False
    ):
        raise ValueError(
            "refit=False keeps the model fitted without the policy rows, "
            f"so cv must give one split here; it gave {len(splits)}. Use a "
            "float for the fraction of rows held out for the policy (e.g. "
            "cv=0.25), or a splitter with one split (e.g. "
            "ShuffleSplit(n_splits=1), or GroupShuffleSplit(n_splits=1) where "
            "rows are grouped), or refit=True. (A cascade keeps "
            "each stage's fold models instead; an early-exit model cannot.)"
        )
    if keep_folds and not _several_folds(cv) and not no_features:
        raise ValueError(
            "refit=False keeps a cascade's fold models only for an int cv "
            "(folds drawn from a hash of each row's content, so that a new "
            "row is answered by the fold model that held out the rows equal "
            f"to it); the {type(cv).__name__} given gave {len(splits)} splits. "
            "Use an int cv, a float cv or a splitter with one split, or "
            "refit=True."
        )
    return splits, test_rows, boundaries


def fit_stages_on_held_out(
    estimators: list,
    X,
    y,
    classes: np.ndarray,
    stage_fit_params: list[dict],
    splitter_params: dict,
    cv,
    measure_costs: bool,
    random_state,
    n_jobs=None,
    verbose: int = 0,
    make_source=IndependentStages.of_members,
    names=None,
    cost_batch_size: int | None = None,
    refit: bool = True,
    whole_method: str | None = None,
    sample_weight: np.ndarray | None = None,
    on_class_indices: tuple[int, ...] = (),
) -> Bunch:
    """Fit the stages and get their probabilities on rows they were not fitted on.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,) or None
        The estimator's classes; None for regressors (their exits answer
        with a prediction and an uncertainty, and folds are not stratified).
    cost_batch_size : int, default=None
        With ``measure_costs``: the rows per call the costs are for (a larger
        batch is timed too, see :func:`~skadaptive.stages.measure_exit_seconds`).
    make_source : callable, default=IndependentStages.of_members
        ``make_source(fitted_members, names)`` returns the
        :class:`~skadaptive.engine.StageSource` that runs their exits (one
        per cascade stage, several for a multi-exit model); it gives the
        held-out probabilities and, with ``measure_costs``, is timed by
        :func:`~skadaptive.stages.measure_exit_seconds`.
    names : list of str, default=None
        The members' names, for messages about what a stage returned.
    refit : bool, default=True
        Whether the members fitted here are refitted on all rows; False keeps
        the members that gave the held-out probabilities (``cv`` must then
        give one split).
    whole_method : str, default=None
        With ``measure_costs``, the name of the one member's own prediction
        method (an early exit's backbone: ``"predict_proba"`` or
        ``"predict"``), timed beside its exits for the speed-up over it.
    sample_weight : ndarray of shape (n_rows,), default=None
        The rows' weights, for the sizes of folds drawn from the rows'
        content (``refit=False`` with an int ``cv``): weight k on a row cuts
        them where k copies would. The stages get theirs in
        ``stage_fit_params``.

    Returns
    -------
    result : Bunch
        ``estimators`` (fitted members, in order), ``stage_probas`` (list of
        (n_policy_rows, n_classes) arrays, every exit of every member in
        order), ``policy_rows`` (indices of the rows those probabilities are
        for, into ``X``), ``seconds`` (measured cost of each exit, per call
        and per row, or None), ``stage_fit_seconds`` (wall time of this step,
        cost measurement excluded).
    """
    start = time.perf_counter()
    if names is None:
        names = [f"{k} ({type(e).__name__})" for k, e in enumerate(estimators)]
    n_rows = _num_samples(X)
    to_fit = [k for k, est in enumerate(estimators) if not is_frozen(est)]
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    on_indices = [k in on_class_indices for k in range(len(estimators))]
    targets = [y] * len(estimators)
    if any(on_indices):
        indices = np.searchsorted(classes, y)
        targets = [indices if flag else y for flag in on_indices]
    if to_fit:
        splits, test_rows, boundaries = _held_out_splits(
            cv,
            X,
            y,
            splitter_params,
            random_state,
            classes,
            refit,
            make_source,
            sample_weight,
        )
        jobs = [(k, f) for k in to_fit for f in range(len(splits))]
        fold_probas = parallel(
            delayed(_timed(_fit_and_predict_fold))(
                estimators[k],
                X,
                targets[k],
                stage_fit_params[k],
                train,
                test,
                classes,
                make_source,
                names[k],
                not refit,
                on_indices[k],
            )
            for k in to_fit
            for train, test in splits
        )
        fold_probas = _reporting(
            fold_probas,
            [
                f"stage {names[k]!r}: fitted on fold {f + 1} of {len(splits)}'s "
                "training rows and scored on its held-out rows"
                for k, f in jobs
            ],
            verbose,
        )
        if refit:
            all_rows = np.arange(n_rows)
            refitted = _reporting(
                parallel(
                    delayed(_timed(_fit_one))(
                        estimators[k],
                        X,
                        targets[k],
                        stage_fit_params[k],
                        all_rows,
                        names[k],
                    )
                    for k in to_fit
                ),
                [f"stage {names[k]!r}: refitted on all rows" for k in to_fit],
                verbose,
            )
        else:
            # Each member as fitted on its folds' training rows, so new rows
            # are answered by the stages the policy rows were held out from:
            # with one split the one model, with several the fold models,
            # each new row by one of them (CrossFitted).
            fold_probas, fold_models, fold_labels = zip(*fold_probas)
            n_splits = len(splits)
            refitted = []
            for i, k in enumerate(to_fit):
                models = fold_models[i * n_splits : (i + 1) * n_splits]
                if classes is not None:
                    for fold, model in enumerate(models):
                        _check_all_classes(
                            make_source([model], [names[k]]),
                            classes,
                            names[k],
                            None if n_splits == 1 else fold,
                            fold_labels[i * n_splits + fold],
                        )
                refitted.append(
                    models[0] if n_splits == 1 else CrossFitted(models, boundaries)
                )
        order = np.argsort(test_rows)
        policy_rows = test_rows[order]
        policy_folds = np.concatenate(
            [np.full(len(test), f) for f, (_, test) in enumerate(splits)]
        )[order]
        held_out = {}
        for i, k in enumerate(to_fit):
            folds = fold_probas[i * len(splits) : (i + 1) * len(splits)]
            _check_same_exit_count(folds, estimators[k])
            held_out[k] = [
                np.concatenate([fold[j] for fold in folds])[order]
                for j in range(len(folds[0]))
            ]
        fitted = dict(zip(to_fit, refitted))
    else:
        policy_rows = np.arange(n_rows)
        policy_folds = None
        held_out, fitted = {}, {}
    X_policy = _safe_indexing(X, policy_rows)
    final = [fitted.get(k, est) for k, est in enumerate(estimators)]
    if classes is not None:
        for k in to_fit:
            _check_class_order(
                make_source([final[k]], [names[k]]),
                classes,
                names[k],
                classes if on_indices[k] else None,
            )
    stage_probas, cross_fitted = [], []
    for k, est in enumerate(final):
        exits = (
            held_out[k]
            if k in held_out
            else exits_in_class_order(make_source([est], [names[k]]), X_policy, classes)
        )
        stage_probas.extend(exits)
        cross_fitted.extend([k in held_out] * len(exits))
    stage_fit_seconds = time.perf_counter() - start
    seconds = None
    if measure_costs:
        timing = time.perf_counter()
        seconds = measure_exit_seconds(
            make_source(final, names),
            X_policy,
            random_state=random_state,
            batch_size=cost_batch_size,
            whole=None if whole_method is None else getattr(final[0], whole_method),
        )
        if verbose:
            print(
                "[skadaptive] costs='auto': timed every stage on the policy rows "
                f"({time.perf_counter() - timing:.1f} s)"
            )
    return Bunch(
        estimators=final,
        stage_probas=stage_probas,
        policy_rows=policy_rows,
        policy_folds=policy_folds,
        cross_fitted=cross_fitted,
        seconds=seconds,
        stage_fit_seconds=stage_fit_seconds,
    )
