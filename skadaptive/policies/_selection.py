"""Choosing a policy out of sample, and figures that are not in-sample.

The policy rows both fit a policy (rules, thresholds, the budget search) and
measure it, so figures on them are optimistic. Here the policy is cross-fitted
over the policy rows (:func:`cross_fitted_exits`), the kind of exit score kept
for a budget is chosen on those out-of-sample exits
(:func:`select_out_of_sample`), and :func:`choose_policy` returns the fitted
policy with its in-sample and out-of-sample figures, as both estimators
report them.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.stats import norm
from sklearn.utils import check_random_state

from .._warnings import warn
from ._losses import is_regression_loss
from ._policy import answer_costs
from ._policy_search import PolicySearch
from ._thresholds import _tie_key

#: Folds over the policy rows for the out-of-sample estimates of the policy.
_POLICY_FOLDS = 5
#: A budget counts as spent when the policy rows' cost is within this of it.
_SPENT_TOLERANCE = 0.03
#: Rounds of lowering the searched budget for a confidence level.
_MARGIN_ROUNDS = 4


def cross_fitted_exits(
    search: PolicySearch,
    choose,
    n_splits: int = 5,
    random_state=None,
    *,
    return_folds: bool = False,
):
    """Each row's exit stage under policies chosen without that row.

    The rows are split in ``n_splits`` folds by :func:`row_folds`; for each
    fold, ``choose`` picks its policies on the other folds' rows exactly as it
    does on all of them, and they decide the fold's rows. Figures computed
    from these exits are out of sample for the policy: its rules, thresholds
    and budget search never saw the row.

    Parameters
    ----------
    search : PolicySearch
    choose : callable
        ``choose(search) -> list of PolicyEvaluation``: the candidates, in the
        same order on any rows (e.g. ``lambda s: s.budget_candidates(0.3)``,
        or ``lambda s: [s.at_cost_weight(0.01)]``).
    n_splits : int, default=5
        With fewer distinct rows of positive weight than folds (equal rows go
        to one fold, so some fold would be empty) the answer is in sample:
        each fold would learn from rows unlike its own (two distinct rows,
        one per label, give each fold the other label only, and an
        "out-of-sample" accuracy of 0 where every stage is right on nearly
        every row), which says nothing about new rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the folds.

    return_folds : bool, default=False
        Also return each row's fold (see :func:`row_folds`) and the stages
        each row runs under each candidate (policies may skip stages).

    Returns
    -------
    exit_stage : ndarray of shape (n_candidates, n_rows)
    folds : ndarray of shape (n_rows,)
        Only with ``return_folds``.
    ran : ndarray of bool of shape (n_candidates, n_stages, n_rows)
        Only with ``return_folds``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import make_policy_search
    >>> from skadaptive.policies._selection import cross_fitted_exits
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> cheap = rng.dirichlet([1, 1], 300)
    >>> costly = np.eye(2)[y] * 0.9 + 0.05
    >>> search = make_policy_search("max_proba", [cheap, costly], y, [0.1, 1.0])
    >>> exits = cross_fitted_exits(search, lambda s: [s.within_budget(0.5)],
    ...                            random_state=0)
    >>> exits.shape
    (1, 300)
    >>> in_sample = search.within_budget(0.5).policy.exit_stage([cheap, costly])
    >>> bool(0.9 < (exits[0] == in_sample).mean() < 1.0)
    True
    """

    def walks_of(chosen, rows):
        probas = [p[rows] for p in search.stage_probas]
        walks = [c.policy.walk(probas) for c in chosen]
        return np.stack([w[0] for w in walks]), np.stack([w[1] for w in walks])

    n_rows = len(search.y_encoded)
    fold = row_folds(
        search.stage_probas,
        search.y_encoded,
        n_splits,
        random_state,
        search.weight,
        search_groups(search),
    )
    folds = held_out_folds(fold, search.weight, n_splits)
    if not folds:
        figure = (
            "expected_error_"
            if is_regression_loss(search.loss)
            else "expected_accuracy_"
        )
        weighed = search.y_encoded[np.asarray(search.weight) > 0]
        if search_groups(search) is None:
            units = (
                "distinct rows of positive weight (told apart by the stages' "
                "answers and the label or target: copies of a row, and rows "
                "that every stage answers alike with the same label, count once)"
            )
            fix = "rows (more data, or a larger cv fraction)"
            if (
                is_regression_loss(search.loss)
                and np.ptp(weighed) == 0
                and all(
                    np.ptp(np.asarray(p)[np.asarray(search.weight) > 0, 0]) == 0
                    for p in search.stage_probas
                )
            ):
                fix = (
                    "rows whose target varies: on the policy rows it is "
                    "constant, so the stages answer them alike and there is "
                    "nothing to choose"
                )
        else:
            units = "groups of positive weight (the groups routed to the splitter)"
            fix = (
                "groups (more data; with a hold-out splitter such as "
                "GroupShuffleSplit, a larger test_size)"
            )
        warn(
            "The policy's out-of-sample figures (expected_cost_, "
            f"{figure}) are in sample, so optimistic: the policy "
            f"rows have fewer than {n_splits} {units}, too few for the "
            f"{n_splits} folds that hold rows out. Learn the policy from more "
            f"{fix}."
        )
        exit_stage, ran = walks_of(choose(search), np.arange(n_rows))
        return (exit_stage, fold, ran) if return_folds else exit_stage
    exit_stage = ran = None
    for f in folds:
        rows = np.flatnonzero(fold == f)
        exits, runs = walks_of(choose(search.subset(np.flatnonzero(fold != f))), rows)
        if exit_stage is None:
            exit_stage = np.zeros((len(exits), n_rows), dtype=np.intp)
            ran = np.zeros((len(exits), runs.shape[1], n_rows), dtype=bool)
        exit_stage[:, rows] = exits
        ran[:, :, rows] = runs
    return (exit_stage, fold, ran) if return_folds else exit_stage


def search_groups(search) -> np.ndarray | None:
    """The rows' groups of a search (None: none, or a search of the user's
    made without them)."""
    return getattr(search, "groups", None)


def held_out_folds(fold: np.ndarray, weight: np.ndarray, n_splits: int) -> list:
    """The folds to hold out in turn: every one of the ``n_splits``, or none
    where some fold has no row of positive weight (fewer distinct rows than
    folds, equal rows sharing a fold). Then each fold would learn from rows
    unlike its own (two distinct rows, one per label, give each fold the
    other label only), and figures stay in sample."""
    positive = np.unique(fold[weight > 0])
    return positive.tolist() if len(positive) >= max(n_splits, 2) else []


def select_out_of_sample(
    search,
    exit_stage,
    folds,
    reference=None,
    ran=None,
    challengers=None,
    *,
    in_sample_loss=None,
    names=None,
    return_exits=False,
):
    """The candidate kept, and its out-of-sample figures with the choice held out.

    The kept candidate has the lowest cross-fitted loss over all rows (ties:
    the lower cross-fitted cost, then the earlier). With a ``reference``
    candidate (the simplest one), that winner replaces it only when its loss
    is lower by more than one standard error of the paired per-row difference
    (the one-standard-error rule; rows equal in probabilities and label count
    as one, so that weight k is k copies): a difference of one row is noise,
    and the simpler policy is kept. The winner's own cross-fitted loss is
    optimistic by the choice among candidates, so the choice is also repeated
    for each fold on the other folds' rows, the fold's rows taken from the
    candidate chosen there: that is the estimate returned, and the winner
    replaces the reference only if this estimate's loss is lower than the
    reference's by more than one standard error too: a candidate that wins
    only by being the luckiest of several is not kept. With
    ``in_sample_loss`` and a reference, the winner's loss must also be no
    higher than the reference's as both are kept, fitted on all the rows and
    scored on them: the out-of-sample figures judge policies fitted on four
    fifths of the rows, and where the policies kept disagree with them, the
    reference is kept. A challenger is held to the plain candidate it beat
    (kept as the choice among the plain ones would keep it): where its loss
    as kept is higher, the plain choice stands, figures and all. Where the
    reference is kept, the estimate is its own cross-fitted figures (a
    mixture of the folds' choices would describe policies that are not
    kept).

    Parameters
    ----------
    search : PolicySearch
    exit_stage : ndarray of shape (n_candidates, n_rows)
        Cross-fitted exits (:func:`cross_fitted_exits`).
    folds : ndarray of shape (n_rows,)
    reference : int, default=None
        Index of the candidate kept unless another is better by more than one
        standard error; None compares the losses alone.
    ran : ndarray of bool of shape (n_candidates, n_stages, n_rows), default=None
        The stages each row runs under each candidate (for policies that
        skip stages); None: every stage up to the row's exit.
    challengers : list of int, default=None
        Candidates (policies that skip stages) compared with the one kept
        among the others last: a challenger replaces it when its loss is
        lower by more than one standard error, or when its loss is no higher
        and its cost lower by more than one standard error of the paired
        per-row difference.
    in_sample_loss : ndarray of shape (n_candidates,), default=None
        Each candidate's average loss (the loss compared above) on the rows
        it was fitted to, all of them: a candidate whose loss there is higher
        than the reference's does not replace it. None: no such check.
    names : list of str, default=None
        The candidates' names, for the reason returned with ``return_exits``.
    return_exits : bool, default=False
        Also return the exits the estimate is made of, and why the kept
        candidate was kept.

    Returns
    -------
    best : int
    per_candidate : list of PolicyEvaluation
        Each candidate's cross-fitted figures.
    estimate : PolicyEvaluation
        The figures with the choice made without the rows they are scored on.
    held_out_exits : ndarray of shape (n_rows,)
        Only with ``return_exits``: each row's exit in ``estimate``.
    held_out_ran : ndarray of bool of shape (n_stages, n_rows) or None
        Only with ``return_exits``: the stages each row ran there (None: every
        stage up to its exit).
    reason : str or None
        Only with ``return_exits``: which test kept the candidate kept, with
        its figures (in loss, lower is better); None without a reference.
    """
    rows = np.arange(exit_stage.shape[1])
    stage_loss = search.stage_risk(0.0)
    # Equal rows are one unit of evidence, so that weight k on a row and k
    # copies of it give the same standard error (copies share a fold, hence
    # an exit and a loss).
    _, group_of_row = _row_groups(
        search.stage_probas, search.y_encoded, search_groups(search)
    )
    first_of_group = np.unique(group_of_row, return_index=True)[1]
    loss = np.stack([stage_loss[e, rows] for e in exit_stage])
    if ran is None:
        ran = [None] * len(exit_stage)
    cost = np.stack(
        [answer_costs(e, r, search.cumulative_cost) for e, r in zip(exit_stage, ran)]
    )

    all_challengers = [] if challengers is None else list(challengers)
    plain = [k for k in range(len(loss)) if k not in all_challengers]

    def clearly(values, weight):
        return _clear_gain(values, weight, group_of_row, first_of_group)

    def clearly_better(loss_gain, cost_gain, weight, skips):
        # More accurate, or (a policy that skips stages) as accurate and
        # clearly cheaper; cost_gain is called only where it can decide.
        mean, more_accurate = clearly(loss_gain, weight)
        return more_accurate or (
            skips and mean >= 0 and clearly(cost_gain(), weight)[1]
        )

    def lowest(indices, weight):
        # Averages rounded, so that candidates tied up to the last bits of a
        # sum (weight k or k copies of a row) go to the earlier.
        total = weight.sum()
        key = [
            (
                _tie_key(loss[k] @ weight / total),
                _tie_key(cost[k] @ weight / total),
                k,
            )
            for k in indices
        ]
        return min(key)[2]

    def pick(mask, challengers):
        weight = search.weight * mask
        if weight.sum() == 0:
            weight = search.weight
        if not plain:
            return lowest(challengers, weight)
        best = lowest(plain, weight)
        if reference is not None and best != reference:
            if not clearly(loss[reference] - loss[best], weight)[1]:
                best = reference
        if not challengers:
            return best
        # A policy that skips stages replaces it when clearly more accurate,
        # or as accurate and clearly cheaper.
        challenger = lowest(challengers, weight)
        if clearly_better(
            loss[best] - loss[challenger],
            lambda: cost[best] - cost[challenger],
            weight,
            skips=True,
        ):
            return challenger
        return best

    def worse_as_kept(k, than):
        # Higher loss on the rows both were fitted to, as kept (checked for
        # a budget only: at a cost_weight the choice is in loss and cost).
        return (
            in_sample_loss is not None
            and reference is not None
            and _tie_key(in_sample_loss[k]) > _tie_key(in_sample_loss[than])
        )

    def name(k):
        return repr(names[k]) if names is not None else f"candidate {k}"

    def gain_words(gain):
        mean, error = grouped_mean_and_error(
            gain, search.weight, group_of_row, first_of_group
        )
        return _mean_gain_words(mean, error, "loss", error_digits=2)

    def as_kept_words(k, than):
        return (
            f"as kept, a loss of {in_sample_loss[k]:.4g} on the policy rows "
            f"against {in_sample_loss[than]:.4g}"
        )

    def why(failed, picked, best, held_out_choice, challengers):
        # Which test kept ``best`` (``picked`` on all the rows), in words:
        # ``failed`` is the test ``picked`` failed ("held out", "as kept"),
        # or None.
        if reference is None:
            return None
        if picked == reference:
            top = lowest(plain, search.weight)
            if top == reference:
                return (
                    f"the reference {name(reference)} has the lowest cross-fitted loss"
                )
            gain = loss[reference] - loss[top]
            if _tie_key(gain @ search.weight / search.weight.sum()) == 0:
                # Lowest only by the tie-break (the cost, then the order).
                return (
                    f"{name(top)} ties with the reference in cross-fitted loss; "
                    "the reference is kept"
                )
            return (
                f"{name(top)} has the lowest cross-fitted loss, but not clearly: "
                f"{gain_words(gain)}, within one standard error; the reference "
                "is kept"
            )
        first = gain_words(loss[reference] - loss[picked])
        held_out = gain_words(loss[reference] - stage_loss[held_out_choice, rows])
        if failed == "held out":
            return (
                f"{name(picked)} is clearly better out of sample ({first}), but "
                "the choice of kind made again without each fold's rows is not "
                f"({held_out}); the reference is kept"
            )
        if failed == "as kept":
            return (
                f"{name(picked)} is clearly better out of sample ({first}; "
                f"{held_out} with the choice held out), but not "
                f"{as_kept_words(picked, reference)} for the reference; the "
                "reference is kept"
            )
        words = (
            f"{name(best)} is clearly better than the reference out of sample "
            f"({first}; {held_out} with the choice held out)"
        )
        if in_sample_loss is not None:
            words += f" and no worse {as_kept_words(best, reference)}"
        if best in challengers:
            words += "; it skips stages"
        return words

    def decide(challengers):
        best = picked = pick(np.ones(len(rows)), challengers)
        failed = None
        held_out_choice = np.empty(len(rows), dtype=np.intp)
        held_out_ran = None if ran[0] is None else np.empty_like(ran[0])
        for fold in np.unique(folds):
            inside = folds == fold
            choice = pick(~inside, challengers)
            held_out_choice[inside] = exit_stage[choice, inside]
            if held_out_ran is not None:
                held_out_ran[:, inside] = ran[choice][:, inside]
        if reference is not None and best != reference:
            # The kind kept is the best of several on the same rows, so its own
            # cross-fitted loss is optimistic by that choice. It replaces the
            # reference only when the choice itself, repeated for each fold
            # without the fold's rows, is clearly better out of sample: more
            # accurate, or (a policy that skips stages) as accurate and cheaper.
            if not clearly_better(
                loss[reference] - stage_loss[held_out_choice, rows],
                lambda: (
                    cost[reference]
                    - answer_costs(
                        held_out_choice, held_out_ran, search.cumulative_cost
                    )
                ),
                search.weight,
                skips=best in challengers,
            ):
                best, failed = reference, "held out"
        if best in challengers and plain:
            without = decide([])
            if worse_as_kept(best, without[0]):
                # A policy that skips stages, less accurate as kept than
                # the plain policy it beat: that one is kept, as without
                # skips.
                return (
                    *without[:3],
                    f"{without[3]}; {name(best)} skips stages and was clearly "
                    f"better out of sample, but not {as_kept_words(best, without[0])}"
                    f" for {name(without[0])}, which is kept as without skips",
                )
        elif worse_as_kept(best, reference):
            # Better out of sample, but as kept (fitted on every row) less
            # accurate than the reference on those very rows: the evidence
            # disagrees, and the simpler policy is kept.
            best, failed = reference, "as kept"
        reason = why(failed, picked, best, held_out_choice, challengers)
        if best == reference:
            # Kept as the simplest, not chosen among others: its own
            # cross-fitted figures are out of sample (a mixture of the folds'
            # choices would describe policies that are not kept).
            held_out_choice, held_out_ran = exit_stage[reference], ran[reference]
        return best, held_out_choice, held_out_ran, reason

    best, held_out_choice, held_out_ran, reason = decide(all_challengers)
    per_candidate = [
        search.evaluate_exits(None, e, np.nan, r) for e, r in zip(exit_stage, ran)
    ]
    estimate = search.evaluate_exits(None, held_out_choice, np.nan, held_out_ran)
    if return_exits:
        return best, per_candidate, estimate, held_out_choice, held_out_ran, reason
    return best, per_candidate, estimate


def _in_sample_loss(search, candidates) -> np.ndarray:
    """Each candidate's weighted average loss (that of
    :func:`select_out_of_sample`) on the rows it was fitted to."""
    rows = np.arange(len(search.y_encoded))
    stage_loss = search.stage_risk(0.0)
    share = search.weight / search.weight.sum()
    return np.array(
        [
            stage_loss[c.policy.exit_stage(search.stage_probas), rows] @ share
            for c in candidates
        ]
    )


def grouped_mean_and_error(
    values, weight, group_of_row, first_of_group, ddof: int = 1
) -> tuple:
    """The weighted mean of a per-row figure and its standard error, rows of
    one group counted once with their summed weight, so that weight k on a
    row is k copies of it: equal rows, which share a figure, and rows of one
    of the user's groups (their figure is then the group's weighted mean:
    one unit of evidence, as a group's rows are not independent)."""
    group_weight = np.bincount(group_of_row, weights=weight)
    kept = group_weight > 0
    value = values[first_of_group]
    if not np.array_equal(value[group_of_row], values):
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.bincount(group_of_row, weights=weight * values) / group_weight
    value = value[kept]
    mean = value @ (group_weight[kept] / group_weight[kept].sum())
    return mean, _standard_error(value, group_weight[kept], ddof=ddof)


def _clear_gain(values, weight, group_of_row, first_of_group) -> tuple:
    """The weighted mean of a paired per-row gain, and whether it is above
    one standard error of it (see :func:`grouped_mean_and_error`)."""
    mean, error = grouped_mean_and_error(values, weight, group_of_row, first_of_group)
    return mean, _is_clear(mean, error)


def _is_clear(mean: float, error: float) -> bool:
    """Whether a mean gain is above one standard error of it."""
    return mean > error * (1 + 1e-9)


def _mean_gain_words(
    mean: float, error: float, loss_name: str, error_digits: int = 3
) -> str:
    """A mean gain (a fall in ``loss_name``) and its standard error in words:
    a negative gain is a higher loss, and none that is not clear reads as
    "no lower".

    Examples
    --------
    >>> from skadaptive.policies._selection import _mean_gain_words
    >>> _mean_gain_words(-0.00025, 0.001, "loss")
    '0.00025 higher loss, standard error 0.001'
    """
    if _tie_key(mean) == 0 and not _is_clear(mean, error):
        return f"no lower {loss_name}, standard error {error:.{error_digits}g}"
    side = "lower" if mean > 0 else "higher"
    return (
        f"{abs(mean):.3g} {side} {loss_name}, standard error {error:.{error_digits}g}"
    )


def held_out_choice_words(
    reference_loss: np.ndarray,
    challenger_loss: np.ndarray,
    group_of_row: np.ndarray,
    weight: np.ndarray,
    keep: bool,
    chosen_in_fold: np.ndarray,
    loss_name: str = "loss",
) -> str:
    """In words, what :func:`clearly_better_held_out` decided (``keep`` and
    ``chosen_in_fold``, as it returned them) and its figures: the mean gain
    in ``loss_name`` of the challenger and its standard error, on all the
    rows and with the choice held out (a negative gain is a higher loss).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._selection import held_out_choice_words
    >>> reference, challenger = np.array([1.0, 1, 0, 0]), np.array([1.0, 0, 0, 1])
    >>> rows, ones = np.arange(4), np.ones(4)
    >>> held_out_choice_words(
    ...     reference, challenger, rows, ones, False, np.zeros(4, bool), "error rate"
    ... )
    'not clearly better out of sample: no lower error rate, standard error 0.408'
    """
    first_of_group = np.unique(group_of_row, return_index=True)[1]
    gain = reference_loss - challenger_loss

    def figures(values) -> tuple[str, bool]:
        # The words for a gain, and whether it is clear.
        mean, error = grouped_mean_and_error(
            values, weight, group_of_row, first_of_group
        )
        # Both to three figures, so that neither reads larger than it is.
        return _mean_gain_words(mean, error, loss_name), _is_clear(mean, error)

    all_rows, clear = figures(gain)
    if not (keep or clear):
        return f"not clearly better out of sample: {all_rows}"
    held_out = figures(np.where(chosen_in_fold, gain, 0.0))[0]
    if keep:
        return (
            f"clearly better out of sample ({all_rows}; {held_out} with the "
            "choice held out)"
        )
    return (
        f"clearly better out of sample ({all_rows}), but the choice made "
        f"again without each fold's rows is not ({held_out})"
    )


def clearly_better_held_out(
    reference_loss: np.ndarray,
    challenger_loss: np.ndarray,
    group_of_row: np.ndarray,
    weight: np.ndarray,
    folds: np.ndarray,
) -> tuple[bool, np.ndarray]:
    """Whether a challenger replaces a reference, by the rule of
    :func:`select_out_of_sample`, from their out-of-sample per-row losses.

    The challenger is kept when its loss is lower by more than one standard
    error of the paired per-row difference, and when the same choice, made
    for each fold on the other folds' rows, is too (a challenger that wins
    only on the rows it is judged on is not kept).

    Parameters
    ----------
    reference_loss, challenger_loss : ndarray of shape (n_rows,)
        Each row's out-of-sample loss under each.
    group_of_row : ndarray of int of shape (n_rows,)
        Equal rows share a group (see :func:`_row_groups`); a group counts
        once, with its summed weight.
    weight : ndarray of shape (n_rows,)
    folds : ndarray of int of shape (n_rows,)

    Returns
    -------
    keep : bool
    chosen_in_fold : ndarray of bool of shape (n_rows,)
        Whether the choice made without a row's fold took the challenger:
        the held-out choice, whose figures are out of sample for it.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._selection import clearly_better_held_out
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.integers(0, 2, 600).astype(float)
    >>> better = np.where(rng.random(600) < 0.3, 0.0, reference)
    >>> rows, ones, folds = np.arange(600), np.ones(600), np.arange(600) % 5
    >>> clearly_better_held_out(reference, better, rows, ones, folds)[0]
    True
    >>> clearly_better_held_out(reference, reference, rows, ones, folds)[0]
    False
    """
    first_of_group = np.unique(group_of_row, return_index=True)[1]
    gain = reference_loss - challenger_loss
    if not _clear_gain(gain, weight, group_of_row, first_of_group)[1]:
        return False, np.zeros(len(gain), dtype=bool)
    chosen_in_fold = np.zeros(len(gain), dtype=bool)
    for fold in np.unique(folds):
        inside = folds == fold
        outside = weight * ~inside
        if outside.sum() > 0:
            chosen_in_fold[inside] = _clear_gain(
                gain, outside, group_of_row, first_of_group
            )[1]
    held_out_gain = np.where(chosen_in_fold, gain, 0.0)
    keep = _clear_gain(held_out_gain, weight, group_of_row, first_of_group)[1]
    return bool(keep), chosen_in_fold


def row_folds(
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    n_splits: int,
    random_state,
    weight: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Fold of each row: equal rows together, folds balanced by weight.

    Rows with the same probabilities and label form one group, and a group
    goes whole to one fold, so that weight k on a row is the same as k copies
    of it (copies are never split between choosing a policy and evaluating
    it). Groups are dealt, heaviest first, to the fold with the least weight so
    far, in an order salted by ``random_state``; groups of zero weight follow
    and never change where the others go. Weights are compared as shares of
    their total, so a common factor on every weight changes no fold.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._selection import row_folds
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1], [0.6, 0.4]])
    >>> folds = row_folds([proba], np.array([0, 1, 0, 1]), 2, 0)
    >>> bool(folds[0] == folds[2]), sorted(np.bincount(folds).tolist())
    (True, [2, 2])
    """
    weight = np.ones(len(y_encoded)) if weight is None else np.asarray(weight)
    keys, group_of_row = _row_groups(stage_probas, y_encoded, groups, weight)
    return deal_groups(group_of_row, keys, weight, n_splits, random_state)


def deal_groups(
    group_of_row: np.ndarray,
    keys: np.ndarray,
    weight: np.ndarray,
    n_splits: int,
    random_state,
) -> np.ndarray:
    """Fold of each row, its group dealt whole, folds balanced by weight.

    Groups are dealt, heaviest first, to the fold with the least weight so
    far, in an order salted by ``random_state`` (one fixed order without one);
    groups of zero weight follow and never change where the others go.
    Weights are compared as shares of their total, so a common factor on
    every weight changes no fold, and a group of k copies of a row goes where
    the row with weight k would.

    Parameters
    ----------
    group_of_row : ndarray of int of shape (n_rows,)
        Each row's group, an index into ``keys``.
    keys : ndarray of shape (n_groups, ...) or list of bytes
        What identifies each group (its bytes salt the order of ties): an
        array's rows, or the bytes themselves (:func:`unit_keys`).
    weight : ndarray of shape (n_rows,)
    n_splits : int
    random_state : int, RandomState instance or None

    Returns
    -------
    folds : ndarray of int of shape (n_rows,)
    """
    n_groups = len(keys)
    group_weight = np.bincount(group_of_row, weights=weight, minlength=n_groups)
    # Deterministic without a random_state: refitting gives the same policy.
    salt = (
        0
        if random_state is None
        else check_random_state(random_state).randint(2**31 - 1)
    )
    key = int(salt).to_bytes(4, "little")
    tie_break = np.array(
        [
            int.from_bytes(
                hashlib.blake2b(g, digest_size=8, key=key).digest(),
                "little",
            )
            for g in _key_bytes(keys)
        ],
        dtype=np.uint64,
    )
    fold_of_group = np.empty(n_groups, dtype=np.intp)
    load = np.zeros(n_splits)
    positive = group_weight > 0
    # Weights and loads compared as rounded shares of the total: a common
    # factor on every weight must not break (or make) a tie, which moved
    # rows between folds (weights 3 + 4 against 7, times 7.3).
    total = group_weight[positive].sum() if positive.any() else 1.0
    share = np.round(group_weight / total, 12)
    for group in np.lexsort((tie_break, -share)):
        if positive[group]:
            fold = int(np.argmin(np.round(load / total, 12)))
            load[fold] += group_weight[group]
        else:
            fold = int(tie_break[group] % np.uint64(n_splits))
        fold_of_group[group] = fold
    return fold_of_group[group_of_row]


def _key_bytes(keys) -> list:
    """Each group's key as bytes: an array's rows, or bytes as given."""
    if isinstance(keys, np.ndarray):
        return [g.tobytes() for g in np.ascontiguousarray(keys)]
    return list(keys)


def unit_keys(
    rows: np.ndarray, group_of_row: np.ndarray, weight=None, full=None
) -> list:
    """A key for each of the user's groups that neither their labels nor the
    order of their rows decide.

    A group's key is made from its distinct rows of positive weight (all its
    rows where none weighs) and each one's share of the group's weight: the
    bytes of that row where there is one, so that one group per row keys the
    rows as no groups do, else a digest of the rows in sorted order with
    their shares. Relabelling the groups, reordering the rows, or adding
    rows of zero weight changes no key (keyed by a label's bytes or a
    group's first row, the folds, and so the fitted policy, moved with
    them); weight k on a row and k copies of it give the same key. Groups
    whose keys tie but whose ``full`` content differs (``full``: e.g. the
    rows' labels besides ``rows``' feature hashes) are keyed by that content
    instead, so that only interchangeable groups tie.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_columns)
        Each row's content (e.g. its rounded answers and label).
    group_of_row : ndarray of int of shape (n_rows,)
        Each row's group, ``0 .. n_groups - 1``.
    weight : ndarray of shape (n_rows,), default=None
    full : ndarray of shape (n_rows, n_more_columns), default=None
        Content that tells tied groups apart.

    Returns
    -------
    keys : list of bytes of length n_groups
    """
    group_of_row = np.asarray(group_of_row)
    n_rows = len(group_of_row)
    if n_rows == 0:
        return []
    rows = _signless(np.ascontiguousarray(rows).reshape(n_rows, -1))
    n_groups = int(group_of_row.max()) + 1
    given = np.ones(n_rows) if weight is None else np.asarray(weight, float)
    positive = given > 0
    weighs = np.bincount(group_of_row[positive], minlength=n_groups) > 0
    used = positive | ~weighs[group_of_row]
    # A group of no weight: its rows count alike.
    weight = np.where(weighs[group_of_row], given, 1.0)[used]
    distinct, row_id = np.unique(rows[used], axis=0, return_inverse=True)
    pairs, pair_of_row = np.unique(
        np.column_stack([group_of_row[used], row_id.ravel()]),
        axis=0,
        return_inverse=True,
    )
    pair_weight = np.bincount(pair_of_row.ravel(), weights=weight)
    pair_group, pair_row = pairs[:, 0], pairs[:, 1]
    group_weight = np.bincount(pair_group, weights=pair_weight)
    share = np.round(pair_weight / group_weight[pair_group], 12)
    bounds = np.searchsorted(pair_group, np.arange(n_groups + 1))
    keys = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if stop - start == 1:
            keys.append(distinct[pair_row[start]].tobytes())
        else:
            content = distinct[pair_row[start:stop]].tobytes()
            digest = hashlib.blake2b(
                content + share[start:stop].tobytes(), digest_size=16
            )
            keys.append(digest.digest())
    # Ties among groups of positive weight only: a group of none goes after
    # the others and moves none of them, and must not re-key its twin.
    tied = _tied(keys, weighs) if full is not None else []
    if len(tied):
        # Both contents, byte for byte, for the tied groups only.
        more = np.hstack(
            [
                _as_bytes(rows),
                _as_bytes(
                    _signless(np.asarray(full, dtype=np.float64).reshape(n_rows, -1))
                ),
            ]
        )
        in_tie = np.isin(group_of_row, tied)
        local = np.unique(group_of_row[in_tie], return_inverse=True)[1].ravel()
        for g, key in zip(tied, unit_keys(more[in_tie], local, given[in_tie])):
            keys[g] = key
    return keys


def _as_bytes(values: np.ndarray) -> np.ndarray:
    """Each row of ``values`` as its bytes (a row of ``uint8``)."""
    values = np.ascontiguousarray(values)
    return values.view(np.uint8).reshape(len(values), -1)


def _signless(values: np.ndarray) -> np.ndarray:
    """Floats with -0.0 made 0.0 (equal, but with other bytes: the order of
    a group's rows chose which one keyed it)."""
    if np.issubdtype(values.dtype, np.floating):
        return values + 0.0
    return values


def _tied(keys: list, weighs: np.ndarray) -> np.ndarray:
    """The groups of positive weight (``weighs``) whose key another such
    group has too, in order."""
    seen: dict = {}
    for g, key in enumerate(keys):
        if weighs[g]:
            seen.setdefault(key, []).append(g)
    return np.array(
        sorted(g for groups in seen.values() if len(groups) > 1 for g in groups),
        dtype=np.intp,
    )


def answer_rows(stage_answers: list, y) -> np.ndarray:
    """Each row's answers at every exit and its label, rounded: what tells
    rows apart (the same row scored by two fits may differ in the last bits,
    and so may a regression target scaled by a weighted mean: weight k and k
    copies give centres one unit in the last place apart)."""
    return np.column_stack(
        [np.round(np.asarray(a, dtype=np.float64), 6) for a in stage_answers]
        + [np.round(np.asarray(y, dtype=np.float64), 6)]
    )


def _row_groups(stage_probas, y_encoded, groups=None, weight=None):
    """Distinct rows (probabilities and label) and each row's group index.

    With ``groups`` (the user's, routed to the splitter: e.g. a patient's
    rows), the groups are the units instead: each is dealt whole to a fold
    and counts as one unit of evidence, as the rows of one group are not
    independent (equal rows of one group are in it; equal rows of two groups
    are, by the user's word, independent). Each group is keyed by its
    distinct rows of positive weight (``weight``; :func:`unit_keys`), not by
    its label or its first row.
    """
    rows = answer_rows(stage_probas, y_encoded)
    if groups is None:
        keys, group_of_row = np.unique(rows, axis=0, return_inverse=True)
        return keys, group_of_row.ravel()
    group_of_row = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    return unit_keys(rows, group_of_row, weight), group_of_row


def _margin_units(search) -> np.ndarray:
    """Each row's unit of evidence for the noise of the cost: copies of a row
    (the same content and label) count once, with their summed weight, so
    that weight k on a row is k copies of it; distinct rows count apart, even
    where the stages answer them alike (trees give few distinct answers).
    With the user's groups, the groups; without the rows' content (a search
    made without the estimator), rows answered alike with one label."""
    groups = search_groups(search)
    content = getattr(search, "content", None)
    if groups is not None or content is None:
        return _row_groups(search.stage_probas, search.y_encoded, groups)[1]
    # The content in place of the answers, and the label as answer_rows has it.
    keys = answer_rows([content], search.y_encoded)
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


def budget_target(search, normalized_budget, confidence=None) -> float:
    """The normalised budget the thresholds are searched for.

    ``normalized_budget`` itself, or with ``confidence`` that budget lowered by
    a margin so that, for every candidate policy (whichever is kept), the
    one-sided upper confidence bound (at that level) of its average cost per
    row is within the budget: a normal approximation over the weighted policy
    rows, whose effective number is Kish's. The margin covers the sampling
    noise of rows like the policy rows, not a shift of the data; it never goes
    below the first stage's cost.
    """
    if confidence is None:
        return normalized_budget
    z = float(norm.ppf(confidence))
    target = normalized_budget
    group_of_row = _margin_units(search)
    first_of_group = np.unique(group_of_row, return_index=True)[1]
    units = np.count_nonzero(np.bincount(group_of_row, weights=search.weight) > 0)
    if units < 2:
        # One unit (one distinct row, or one group) shows no noise at all:
        # no margin can be estimated, and the most cautious is taken.
        warn(
            f"budget_confidence={confidence:g} needs the noise of the cost "
            "per row, which one unit of the policy rows (one distinct row of "
            "positive weight, or one group routed to the splitter) cannot "
            "show: the budget is searched at the first stage's cost, the most "
            "cautious. Learn the policy from more rows or groups."
        )
        return float(search.cumulative_cost[0])
    for _ in range(_MARGIN_ROUNDS):
        bounds = []
        for candidate in search.budget_candidates(target):
            exit_stage, ran = candidate.policy.walk(search.stage_probas)
            costs = answer_costs(exit_stage, ran, search.cumulative_cost)
            error = grouped_mean_and_error(
                costs, search.weight, group_of_row, first_of_group, ddof=0
            )[1]
            bounds.append((candidate.normalized_cost, error))
        if all(c + z * e <= normalized_budget * (1 + 1e-9) for c, e in bounds):
            break
        margin = max(z * e for _, e in bounds)
        target = max(min(target, normalized_budget - margin), search.cumulative_cost[0])
        if target == search.cumulative_cost[0]:
            break
    return target


def budget_status(cost: float, searched_budget: float) -> str:
    """``"spent"`` when ``cost`` on the policy rows is within 3 % below the
    budget searched (in the same unit), else ``"saturated"``.

    Examples
    --------
    >>> from skadaptive.policies._selection import budget_status
    >>> budget_status(0.98, 1.0), budget_status(0.9, 1.0)
    ('spent', 'saturated')
    """
    return "spent" if cost >= (1 - _SPENT_TOLERANCE) * searched_budget else "saturated"


def _standard_error(values, weight, ddof: int = 0) -> float:
    """Standard error of a weighted mean (Kish's effective sample size).

    With ``ddof=1`` the variance is the unbiased one (divided by
    ``n_effective - 1``), so that a difference carried by a single row is
    exactly one standard error.
    """
    weight = weight / weight.sum()
    mean = weight @ values
    n_effective = 1.0 / (weight @ weight)
    if n_effective <= ddof:
        return float("inf")
    variance = weight @ (values - mean) ** 2 * n_effective / (n_effective - ddof)
    return float(np.sqrt(variance / n_effective))


def choose_policy(
    search: PolicySearch,
    *,
    cost_weight: float,
    normalized_budget: float | None = None,
    confidence: float | None = None,
    random_state=None,
    cost_unit: float = 1.0,
) -> dict:
    """The policy an estimator keeps, with its figures in and out of sample.

    For a ``cost_weight`` the family's policy for it; for a budget, the
    candidate of :meth:`~PolicySearch.budget_candidates` (one per kind of exit
    score) with the lowest cross-fitted loss, searched for the budget lowered
    by :func:`budget_target` when a ``confidence`` is given. The last
    candidate (per-stage max-probability thresholds; for regression, one exit
    for every row) is kept unless another's cross-fitted loss is lower by
    more than one standard error, and so is the choice of kind made again
    without each fold's rows, and its loss as kept (fitted on all the policy
    rows) is no higher there (see :func:`select_out_of_sample`).

    Parameters
    ----------
    search : PolicySearch
    cost_weight : float
        Used when ``normalized_budget`` is None.
    normalized_budget : float, default=None
        Maximum average cost, as a fraction of running every stage.
    confidence : float, default=None
        See :func:`budget_target`.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds of the cross-fitting.
    cost_unit : float, default=1.0
        The cost of running every stage: costs are returned in its unit.

    Returns
    -------
    chosen : dict
        ``policy``, ``cost_weight``, ``exit_rates``, ``policy_rows_cost`` and
        ``policy_rows_accuracy`` (in sample), ``expected_cost`` and
        ``expected_accuracy`` (out of sample, never clamped),
        ``expected_exit_rates`` (out of sample), ``run_rates`` and
        ``expected_run_rates`` (the share of rows that run each stage, in and
        out of sample), ``held_out_exits`` (each row's exit in those
        out-of-sample figures), and for a
        budget ``budget_status`` ("spent" or "saturated") and
        ``budget_search`` (every candidate's figures), else None.
    """
    if normalized_budget is None:

        def choose(search):
            return [search.at_cost_weight(cost_weight)]

    else:

        def choose(search):
            target = budget_target(search, normalized_budget, confidence)
            return search.budget_candidates(target)

    if normalized_budget is None:
        candidates, searched = choose(search), None
    else:
        # The margin search runs once here; the folds repeat it on their rows.
        searched = budget_target(search, normalized_budget, confidence)
        candidates = search.budget_candidates(searched)
    # Out of sample for the policy: each row decided by policies chosen
    # (rules, thresholds, budget search) without it. With a budget, the
    # kind of exit score is chosen on these figures, not on the rows the
    # thresholds were fitted to. Never clamped.
    exit_stage, folds, ran = cross_fitted_exits(
        search,
        choose,
        n_splits=_POLICY_FOLDS,
        random_state=random_state,
        return_folds=True,
    )
    # The last budget candidate is the simplest: per-stage max-probability
    # thresholds for classification, one exit for every row for regression
    # (disagreement cannot rank a first stage's rows at all). Another kind
    # replaces it only when clearly better out of sample.
    reference = None if normalized_budget is None else len(candidates) - 1
    challengers = [k for k, c in enumerate(candidates) if c.challenger]
    best, out_of_sample, estimate, held_out_exits, _, reason = select_out_of_sample(
        search,
        exit_stage,
        folds,
        reference,
        ran,
        challengers,
        in_sample_loss=_in_sample_loss(search, candidates),
        names=[c.kind for c in candidates],
        return_exits=True,
    )
    chosen = candidates[best]
    result = {
        "policy": chosen.policy,
        "cost_weight": chosen.cost_weight,
        "exit_rates": chosen.exit_rates,
        "policy_rows_cost": chosen.normalized_cost * cost_unit,
        "policy_rows_accuracy": chosen.accuracy,
        "expected_cost": estimate.normalized_cost * cost_unit,
        "expected_accuracy": estimate.accuracy,
        "expected_exit_rates": estimate.exit_rates,
        "run_rates": chosen.run_rates,
        "expected_run_rates": estimate.run_rates,
        "budget_status": None,
        "budget_search": None,
        "held_out_exits": held_out_exits,
    }
    if normalized_budget is not None:
        result["budget_status"] = budget_status(chosen.normalized_cost, searched)
        result["budget_search"] = {
            "scores": np.array([c.kind for c in candidates]),
            "cost_weight": np.array([c.cost_weight for c in candidates]),
            "policy_rows_accuracy": np.array([c.accuracy for c in candidates]),
            "policy_rows_cost": np.array(
                [c.normalized_cost * cost_unit for c in candidates]
            ),
            "expected_accuracy": np.array([e.accuracy for e in out_of_sample]),
            "expected_cost": np.array(
                [e.normalized_cost * cost_unit for e in out_of_sample]
            ),
            "chosen": best,
            "reason": reason,
            "searched_budget": searched * cost_unit,
            "challenger": np.array([c.challenger for c in candidates]),
        }
    return result
