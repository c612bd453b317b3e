"""Docstring fragments the estimators share (their parameters and attributes)."""

from __future__ import annotations

import re

_SHARED_PARAMETERS = """cost_weight : float, default=0.01
        The trade-off ``lam`` >= 0 in ``loss + lam * cost``. Costs are divided by
        the cost of running every stage, so ``lam`` is unit-free: with the 0/1
        loss, ``lam = 0.01`` gives up one accuracy point only to save the full
        cost. Ignored when ``budget`` is set (a value other than the default then
        warns). For the heuristics, whose one shared threshold is chosen
        exactly on scores that do not depend on it, a larger ``cost_weight``
        never costs more on the policy rows. EENet's per-exit thresholds are
        set one exit at a time, each exactly given the others, which can stop
        short of the best combination, and the Bolukbasi rules (``"linear"``,
        a classifier) are learned again for each value: for both, the cost
        can rise between close values (see ``frontier_``).

    budget : float, default=None
        Maximum average cost per row, in the units of ``costs``. The fit
        chooses one threshold per exit directly for the budget: for each kind
        of exit score (this family's, and per-stage max probabilities, which
        every family tries; the Bolukbasi families ``"linear"``,
        ``"constant"`` and a classifier try their rules at three cost
        weights, on ``policy_features`` and on ``"classes"``, and EENet's
        correctness scores) the most accurate thresholds whose average cost
        on the held-out policy rows is within it. Per-stage max
        probabilities are kept unless the kind with the lowest out-of-sample
        loss (5-fold cross-fitting over the policy rows) is lower by more
        than one standard error, and so is that choice of kind made again
        without each fold's rows, and the kind as kept (fitted on all the
        policy rows) has no higher ``loss`` on them than the thresholds as
        kept; ``policy_`` can hold rules of another kind
        than ``policy`` names (``budget_search_`` lists every kind tried and
        the one kept).
        What is guaranteed is the average over rows like the policy rows;
        ``expected_cost_`` estimates it out of sample, and
        ``budget_confidence`` adds a margin. A budget below the first stage's
        cost cannot be met and is an error that says by how much.

    budget_confidence : float in (0.5, 1), default=None
        With ``budget`` (ignored without): choose the policy so that the
        one-sided upper confidence bound, at this level, of its average cost
        per row is within the budget (a normal approximation over the
        held-out policy rows, copies of a row (the same features and label)
        counted once with their summed weight, so that weight k on a row and
        k copies of it get the same margin, distinct rows apart even where
        the stages answer them alike, and their number counted as Kish's
        effective number; with groups routed to the splitter, each group is
        one). The budget
        searched is lowered by that margin (``budget_search_["searched_budget"]``),
        so that new rows like the policy rows stay within the budget more
        often; where the policy does not spend the budget anyway
        (``budget_status_ == "saturated"``), the kind of exit score kept may
        differ and need not cost less. None
        meets the budget on the policy rows exactly. ``with_policy`` keeps it
        unless given another. With ``refit=False`` and one split the policy
        rows are the held-out fraction only, so its figures are noisier: use
        it there.

    policy : str, classifier or PolicySearch subclass, default="linear"
        How exits are decided; every family honours ``cost_weight`` and
        ``budget``. Bolukbasi et al.'s rules learned bottom-up: ``"linear"``
        (an L2-regularised logistic regression on standardised features),
        ``"constant"`` (one decision per stage for all rows) or a classifier
        that accepts ``sample_weight``. ``"eenet"``: learned per-stage
        correctness scores with per-stage thresholds (EENet). Heuristic
        baselines with one threshold shared by all stages for a ``cost_weight``
        and one per stage for a ``budget``: ``"max_proba"``,
        ``"entropy"`` (one minus normalised entropy) and ``"patience"``
        (consecutive stages that agree). A subclass of
        :class:`skadaptive.policies.PolicySearch` is a family of your own (see
        the architecture page). See :mod:`skadaptive.policies`.

    policy_features : {"confidence", "history", "probabilities", "classes"}, \
            default="history"
        Bolukbasi rules only. What the rule after stage k sees:
        ``"confidence"`` is stage k's max probability, top-1 minus top-2
        margin and normalised entropy; ``"history"`` adds the earlier stages'
        max probabilities and their agreement with stage k, and stage k's
        probability of the previous stage's class; ``"probabilities"`` adds
        stage k's whole probability vector; ``"classes"`` adds, per class,
        whether stage k predicts it and its max probability if it does (a
        confidence per predicted class; three columns per class more than
        ``"history"``, so it wants more policy rows per class). With a
        ``budget`` the given set and ``"classes"`` are both tried, and the
        kind kept is chosen out of sample. See
        :func:`skadaptive.policies.policy_features`.

    tune_threshold : bool, default=True
        Bolukbasi rules only. Move each rule's cut on its learned score to the
        value that minimises the held-out risk. False uses the rule's own
        prediction, as in the paper.

    loss : {"zero_one", "log_loss"}, default="zero_one"
        Loss of the answering stage in the objective ``loss + lam * cost``.
        The fit's loss stays that of everything learned from it
        (``with_policy``, ``frontier_``, ``evaluate_frontier``) until a refit.

    answer : {"stage", "combined"}, default="stage"
        What a row gets at the exit that answers it. ``"stage"``: that exit's
        own probabilities (as in the paper). ``"combined"``: a combiner's
        answer from the probabilities of every exit the row ran (already paid
        for: no stage runs again, only the combiner's own arithmetic, timed
        with the routing by ``costs="auto"`` and not counted with costs given
        as numbers or trees). Per exit, a weighted pooling of the exits'
        log-probabilities or a multinomial logistic regression on them
        (each the weighted mean log loss with a small L2 penalty: only the
        ratios of ``sample_weight`` count)
        replaces the exit's own probabilities only where its 3-fold
        cross-validated ``loss`` (error rate, or log loss) on the policy rows
        is lower by more than one standard error of the paired per-row
        difference; from the simplest kind up, each replaces the one kept so
        far only where it is that much better than it (see ``combiners_``).
        Combiners are fitted on the cross-fitted held-out probabilities, never
        on a stage's training rows, and the policy is learned on their
        out-of-fold answers, so it decides when the combined answer is good
        enough. With ``budget=``, the policy ``answer="stage"`` would learn
        is learned too, and the combined answers' replaces it only where it
        is clearly more accurate out of sample (the one-standard-error rule
        of the budget search, on the cross-fitted policies, and again with
        the choice made without each fold): at a budget, combining is never
        worse than the stage answers by more than that noise (``answer_``
        says which were kept; a policy that answers no row at an exit that
        combines keeps the stage answers). Exit 0 always answers with its own
        probabilities; with fewer than 30 distinct policy rows of positive
        weight (copies of a row count once), or a fold whose training rows
        hold a single class, every exit does (with a warning). Switching it
        needs a refit; with ``memory=`` the stages come from the cache, and
        only the combiners (and their timing) and the policy are fitted again.

    cv : int, float, cross-validation generator or iterable, default=5
        How stage probabilities for the policy are held out. An int is the
        number of stratified folds of cross-fitting (with ``refit=False``,
        folds of equal rows together, drawn from a hash of the rows'
        content: see ``refit``); a float in (0, 1) is the fraction of rows
        held out from the stages to learn the policy; a splitter must give
        each row to at most one test fold, and never test a split on rows it
        trains on (the policy would learn from over-confident answers).
        What is fitted here is then
        refitted on all rows, unless ``refit=False``. With only frozen
        stages, ``cv`` and ``refit`` are unused and the policy is learned on
        the data passed to ``fit``.

    refit : bool, default=True
        Whether the stages fitted here are refitted on all rows once their
        held-out probabilities are computed, as scikit-learn's stacking does:
        stages fitted on more rows, but not the stages the policy learned
        from. A refitted stage may be surer or less sure of new rows than its
        cross-fitted copies were of the held-out rows, so that new rows exit
        elsewhere and ``budget``, ``expected_cost_`` and the accuracy
        estimate need not hold on them: on ``benchmarks/REFIT_RESULTS.md``
        cascades fitted for a budget with ``cv=3`` cost from 27 % less to 31 %
        more than the budget on new rows. False keeps the stages that gave
        the held-out probabilities, so that new rows are decided on outputs
        like those the policy learned from and the budget holds on rows like
        the policy rows (up to sampling noise, see ``budget_confidence``).
        With one split (``cv`` a float, the fraction of rows held out for the
        policy, or a splitter with one split) that is the one model per
        stage. With an int ``cv`` (cascades only; an early-exit model
        refuses it), each row is held out in the fold a hash of its content
        picks (equal rows in one fold; not stratified, and not changed by
        ``random_state``), each stage keeps its fold models, and a new row is
        answered by the model of its hash's fold, which held out the rows
        equal to it (the same in any batch, order or container): every row
        stays a policy row, at the price of one model per fold in memory and
        up to one call per fold for each call of a stage (measured costs,
        ``costs="auto"``, grow with it). ``estimators_`` then holds each
        stage as a ``CrossFitted``: its ``models``, and ``fold_of(X)``, the
        fold model that answers each row. A splitter with
        several splits is refused. Each fold's training rows must hold every
        class, and the stages see fewer rows:
        on the same benchmark (measured, not a bound) ``cv=3`` with the fold
        models kept cost from 3.5 % less to 4.5 % more than the budget on new
        rows, 1.5-7 points less accurate than refitted stages. With ``refit=True``,
        ``recalibrate`` puts the cost of new unlabelled rows back on the
        budget.

    memory : str, joblib.Memory or None, default=None
        Caches the fitting and cross-fitting of the stages (and measured costs),
        so that searching policy parameters (``cost_weight``, ``budget``,
        ``policy``, ...) does not refit the stages for every candidate. The
        cache key holds the stages, the data and ``random_state``: with
        ``random_state=None`` (or a stage's or a shuffling splitter's), a fit
        that finds its key answers with the first such fit's random draws, as
        scikit-learn's ``Pipeline(memory=)`` does; set the seeds, or
        ``memory=None``, to see fits vary. Stages must be picklable (no
        lambdas).

    batch_size : int, default=None
        Rows routed through the stages together at prediction. ``None`` routes
        them in batches of 65,536 rows, so that the memory a prediction needs
        beyond the stages' own is a small multiple of one batch's share of ``X``
        and of the probabilities, whatever the number of rows; raise it for
        stages that are faster on larger calls (e.g. a network on a GPU). It
        does not change any row's exit (a stage whose arithmetic depends on the
        shape of its input, as a matrix product may, can round the
        probabilities differently in the last bits).

    cost_batch_size : int, default=None
        The number of rows per call of ``predict`` that measured costs
        (``costs="auto"``) are for: ``batch_size``, or 65,536 when that is
        None. A stage's measured time inside the cascade is
        ``per_call + n_rows * per_row``, a line fitted to its times on calls
        of ``cost_batch_size / 64`` rows up to the first timed size at or
        above ``cost_batch_size`` (timed: 1, 16, 128, 1,024 and 4,096 rows,
        4,096 only with 2,048 policy rows or a ``cost_batch_size`` above
        1,024, and 8,192 rows where ``cost_batch_size`` is above 4,096; beyond,
        the line is extended): the
        calls it gets in such batches, since a tree's or a network's time
        grows more slowly than its rows and no one line holds from one row to
        thousands. The per-call part is paid once per batch by every stage
        that at least one row reaches, so the policy (which may then stop
        every row before a stage that is dear per call), ``expected_cost_``
        and the budget are for batches of this size. Set it to the number of
        rows you predict at a time (1 for a service answering one row per
        call) so that the expected speed-up is the one you measure. No effect
        on costs given as numbers or counted in trees.

    n_jobs : int, default=None
        Parallel jobs for fitting across folds, and threads for routing
        batches at prediction.

    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split for a float ``cv``, the sample of rows on
        which ``costs="auto"`` is timed, and the order in which rows are dealt
        to the folds of the policy's cross-fitting and of the combiners (one
        fixed order without it).

    verbose : int, default=0
        Progress of the fitting: 0 prints nothing; 1 or more prints a line,
        with its time, for each stage fitted on each fold and refitted, for
        the measurement of ``costs="auto"`` and for the policy learned (its
        ``cost_weight`` or ``budget``, exit rates and expected figures).
        Values above 1 print the same lines."""


_SHARED_ATTRIBUTES = """costs_per_row_, costs_per_call_ : ndarray of shape (n_stages,)
        The two parts of each stage's cost: per row, and paid once per call
        whatever the number of rows (zeros unless measured or given as a
        dict). ``costs_ = costs_per_row_ + costs_per_call_ / cost_batch_size_``.
    cost_batch_size_ : int
        The batch size the costs, the policy and ``expected_cost_`` are for.
    cost_weight_ : float
        The trade-off the policy's scores were learned with: ``cost_weight``;
        with a ``budget``, the cost weight of the Bolukbasi rules whose scores
        were chosen, ``nan`` when the chosen scores depend on none (EENet's,
        a heuristic's, or the per-stage max-probability baseline's).
    policy_ : CascadePolicy
        The exit rules, one per stage but the last (a ``SkipPolicy``, with
        its ``jumps`` and ``router``, where the policy kept jumps stages or a
        router was kept).
    budget_ : float or None
        The budget the policy was chosen for (``budget``).
    budget_status_ : {"spent", "saturated"} or None
        With a budget: ``"spent"`` when the policy's average cost on the
        policy rows is within 3 % below the budget searched; ``"saturated"``
        when it costs less because, for the kind of exit score kept, the most
        accurate thresholds the search found within the budget cost less (a
        dearer policy may still be more accurate, beyond the budget; another
        kind of score might have spent more, see ``budget_search_``), or,
        with ``skips=True``,
        because the policy kept jumps stages at which it answers no row (the
        same answers for less) and spending the saving (its thresholds
        searched again, or learned jumps) was not clearly better out of
        sample; with a router kept, the routed policy's cost is the one
        compared. On a copy from ``recalibrate`` given a budget, the
        recalibration's: ``"spent"`` where it met the budget on the rows
        recalibrated on (``recalibration_["status"]`` ``"met"``: the cost
        there within it and the next step over it; a cost on few rows moves
        in steps, so it can stay more than 3 % under), else ``"saturated"``.
        None without a budget.
    budget_search_ : dict or None
        With a budget, one entry per kind of exit score tried, like the
        ``cv_results_`` of a search: ``scores`` (its name: ``"rules on
        history x1"`` for Bolukbasi rules on ``policy_features="history"``
        learned at 1 times the budget's price of cost -- the cost weight at
        which per-stage thresholds minimising ``loss + cost_weight * cost``
        meet the budget, 0 where the budget does not bind, and then the x0.3,
        x1 and x3 rules are the same --, ``"eenet scores"``,
        ``"max_proba per exit"``, ...; the kept rules' ``feature_set`` is
        also on each of ``policy_.rules``), ``cost_weight``
        (of learned rules, else nan), ``policy_rows_accuracy`` and
        ``policy_rows_cost`` (in sample), ``expected_accuracy`` and
        ``expected_cost`` (each kind's own 5-fold cross-fitted figures),
        ``chosen`` (the index kept: the last kind, the reference, unless the
        kind of lowest cross-fitted loss (ties to the cheaper) passes three
        tests: 1. its loss is lower by more than one standard error of the
        paired per-row difference; 2. so is the loss of the choice of kind
        made again without each fold's rows; 3. as kept, fitted on all the
        policy rows, its loss on them is no higher than the reference's (for
        the default loss: its ``policy_rows_accuracy`` no lower). Most often
        the reference is kept; ``expected_accuracy_`` is not the kept kind's
        own figure, which would be optimistic by the choice, but one with the
        choice held out too), ``reason`` (which test decided, with its
        figures in the loss, lower is better) and ``searched_budget`` (lower
        than ``budget`` with ``budget_confidence``). ``challenger`` is True
        only with ``skips=True``, for the kinds whose policy
        jumps over a stage with thresholds searched for it: the one of lowest
        cross-fitted loss replaces the kind kept among the others only where
        more accurate by more than one standard error, or as accurate and
        cheaper by more than one (so a challenger slightly better on both
        figures may not be kept, nor one whose loss as kept is higher than
        that kind's). With per-call costs, the kept option's
        search, with its ``deepest_stage`` and ``per_call_accounting``
        (``"set aside"`` or ``"per row"``), its costs as that search counted
        them (an upper bound of ``policy_rows_cost_``). With
        ``answer="combined"`` where the exits combine, the kept answers'
        search, and ``answer_kinds`` (``["stage", "combined"]``) with
        ``answer_expected_accuracy`` and ``answer_expected_cost``: each
        kind's policy's own out-of-sample figures, from which ``answer_`` was
        chosen, and ``answer_reason``, that choice's test and figures in
        words (the paired difference of the two policies' cross-fitted
        losses, and its standard error). None without a budget.
    exit_rates_ : ndarray of shape (n_stages,)
        Fraction of held-out policy rows answered by each stage (in sample:
        the rows the policy was chosen on).
    expected_exit_rates_ : ndarray of shape (n_stages,)
        Out-of-sample estimate of the fraction of rows each stage answers,
        from the same cross-fitting as ``expected_cost_`` (each policy row
        decided by a policy chosen without it), so that it and
        ``expected_cost_`` describe the same exits. :meth:`exit_report`
        compares new rows with it.
    deepest_stage_ : int
        The last stage the policy may send a row to. With per-call costs
        (``costs_per_call_``), one policy is learned for each possible deepest
        stage (every later stage skipped), with the per-call parts of the
        stages up to it taken off the budget; for a budget the depth most
        accurate out of sample is kept, for a ``cost_weight`` the one with the
        lowest ``error + cost_weight * cost`` on the policy rows (as
        ``frontier_`` chooses). In small batches, a stage dear per call may
        cost more than it adds. Without them, the last stage any policy row
        reaches.
    policy_rows_cost_, policy_rows_accuracy_ : float
        Average cost per row (units of ``costs_``; with per-call costs, of a
        batch of ``cost_batch_size_`` rows drawn like them, each stage that
        one of its rows reaches paying its call once) and accuracy on the
        held-out policy rows, the rows the policy's rules and thresholds were chosen
        on: in sample for the policy, so optimistic. The budget holds here
        (on a copy from ``recalibrate``, which meets it on other rows, it may
        not).
    expected_cost_, expected_accuracy_ : float
        Out-of-sample estimates of the average cost per row (units of
        ``costs_``) and of the accuracy: the policy rows are split in 5 folds,
        the policy is chosen again on four (same family, same ``cost_weight``
        or ``budget``) and decides the fifth; with a budget, the kind of exit
        score for each fold is also chosen without that fold's rows (see
        ``budget_search_``). Never clamped: with a budget,
        ``expected_cost_`` may exceed it. It estimates what new rows cost if
        the stages answer them as they answered the held-out rows, which
        stages refitted on all rows need not do (see ``refit``). It estimates
        the fitting procedure, not the one policy kept: where the choice is
        unstable (the policy rows' fit leaves the budget unspent, "saturated",
        while fits on four fifths of them spend it), it can differ from
        ``policy_rows_cost_`` by more than sampling noise, and the kept
        policy's cost on new rows may then be nearer ``policy_rows_cost_``.
        With fewer than 5 distinct policy rows of positive weight (equal rows
        share a fold) nothing can be held out: both are then the policy
        rows' own figures, and a warning says so. On a copy from
        ``recalibrate``, ``expected_cost_`` is the cost measured on the rows
        recalibrated on, and ``expected_accuracy_`` the fitted estimate,
        unchanged (without labels it cannot be re-estimated).
    expected_speed_up_ : float
        The last stage's cost alone (an early exit's: the whole model's) over
        ``expected_cost_``: how many times cheaper than that stage alone the
        estimator expects to answer in calls of ``cost_batch_size_`` rows.
        With measured costs, the stage's time alone (without the routing work
        ``costs_`` includes; an early exit over a tree ensemble or a booster:
        the backbone's own ``predict_proba`` or ``predict``, timed beside its
        exits): the ratio of wall-clock times you would measure.
        With declared costs (numbers, or an early exit's trees) it is a ratio
        in their unit, not a time: trees count work, and a tree run on few
        rows costs more per row; fit with ``costs="auto"`` for a speed-up on
        the clock.
    recalibrated_cost_, recalibration_ : float, dict
        Only on a copy from ``recalibrate``: the average cost per row measured
        on the unlabelled rows it was recalibrated on, and what was done
        there (budget, cost, next step, status, shift, thresholds and exit
        rates before and after).
    stage_accuracies_ : ndarray of shape (n_stages,)
        Held-out accuracy of each stage alone (its own probabilities).
    exit_accuracies_ : ndarray of shape (n_stages,)
        Held-out accuracy of answering every row at each exit as the
        estimator answers there: ``stage_accuracies_`` where ``answer_`` is
        ``"stage"``; where it is ``"combined"``, the combiners' (out-of-fold)
        answers.
    oracle_accuracy_, oracle_cost_ : float
        Held-out accuracy and average cost of the oracle that answers at the
        first exit whose answer is right: the upper bound of any policy.
    answer_ : {"stage", "combined"}
        What the kept policy's exits answer with: ``"combined"`` where the
        exits combine (``combiners_``) and, for a budget, the combined
        answers' policy was clearly more accurate out of sample than the stage
        answers' and answers some policy rows at an exit that combines (see
        ``answer``; ``budget_search_`` has both kinds' figures); else
        ``"stage"``, each stage's own probabilities, and the combiners are
        not used by the policy. ``frontier_`` and :meth:`with_policy` with a
        ``cost_weight`` answer with the combiners whenever they combine.
    combiners_ : list of ExitCombiner
        One per exit: how it answers (``kind``: ``"stage"`` for every exit
        with ``answer="stage"``, and for exit 0; else the kind chosen, with
        each kind's out-of-fold ``cv_error`` and ``cv_log_loss``, and its
        ``weights`` and ``bias``). See
        :class:`~skadaptive.stages.ExitCombiner`.
    frontier_ : dict of ndarray
        Trade-off on the held-out policy rows, traced by refitting the policy
        (not the stages) over a grid of ``cost_weight`` when first read (a fit
        pays for one policy only), with the policy parameters of the moment,
        as :meth:`with_policy` learns (``policy``, ``policy_features``,
        ``tune_threshold``, ``skips``, ``router``: after ``set_params`` on one
        it is traced again, whenever it was first read): keys ``cost_weight``,
        ``accuracy``, ``expected_cost`` (units of ``costs_``),
        ``normalized_cost`` (fraction of the full cost) and ``exit_rate_0``,
        ``exit_rate_1``, ... (the share of rows answered at each stage, in
        stage order). With ``skips=True`` or a
        router, a point's policy may jump stages or start rows late: its
        ``expected_cost`` counts what the rows ran (and the router), so two
        points with the same exit rates may cost differently. Its figures
        are in sample for each point's policy, like ``policy_rows_accuracy_``
        and ``policy_rows_cost_`` (the key ``expected_cost`` is the average
        cost per row on the policy rows, not the out-of-sample
        ``expected_cost_``); :meth:`evaluate_frontier` gives them on other
        rows. With ``router="auto"`` (or a router given), each point keeps
        a router where it lowers that point's risk on the policy rows, in
        sample, where ``fit`` and :meth:`with_policy` keep one only on their
        cross-fitted figures: :meth:`with_policy` at a point's
        ``cost_weight`` may then drop the point's router and answer at
        another cost; the key ``router`` says which points kept one. Every
        value has one entry per point, so
        ``pandas.DataFrame(est.frontier_)`` loads it, as it does
        ``cv_results_``.
    n_features_in_ : int
        Only where ``X`` has a number of features: rows of one dimension
        (not lists of texts, nor images of several dimensions, whose shape
        the stages check).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only where ``X`` has string column names."""


def fill_shared_docs(cls):
    """Put the parameters and attributes both estimators share into a docstring."""
    cls.__doc__ = cls.__doc__.replace(
        "{shared_parameters}", _SHARED_PARAMETERS
    ).replace("{shared_attributes}", _SHARED_ATTRIBUTES)
    return cls


def _from(text: str, first: str) -> str:
    """``text`` from the line that starts documenting ``first``."""
    return text[text.index(f"{first} :") :]


def _reworded(text: str, *pairs: tuple[str, str]) -> str:
    """``text`` with each ``(old, new)`` replaced, whatever the line breaks
    and indentation inside ``old``; an ``old`` not found is an error, so that
    a change of the shared text cannot leave a regressor's words behind."""
    for old, new in pairs:
        pattern = r"\s+".join(re.escape(word) for word in old.split())
        text, found = re.subn(pattern, new, text)
        if not found:
            raise AssertionError(f"not in the shared docs: {old!r}")
    return text


_REGRESSION_PARAMETERS = """cost_weight : float, default=0.01
        The trade-off ``lam`` >= 0 in ``loss + lam * cost``. Costs are divided by
        the cost of running every stage and the loss by a scale of ``y``
        learned at fit (its variance for ``"squared_error"``, its mean
        absolute deviation from the median for ``"absolute_error"``: the loss
        of predicting a constant is 1), so ``lam`` is unit-free and the same
        grid means the same trade-off on any target scale. Ignored when
        ``budget`` is set (a value other than the default then warns).

    budget : float, default=None
        Maximum average cost per row, in the units of ``costs``. The fit
        chooses one threshold per exit directly for the budget: for each kind
        of exit score (this family's, and per-stage disagreement thresholds,
        which every family tries; the Bolukbasi families ``"linear"``,
        ``"constant"`` and a classifier try their rules at three cost
        weights, on ``policy_features`` and on ``"probabilities"``, and EENet's error
        scores) the lowest-error thresholds whose average cost on the
        held-out policy rows is within it. The reference is one exit for
        every row (the lowest-error exit within the budget): it is kept
        unless the kind with the lowest out-of-sample loss (5-fold
        cross-fitting over the policy rows) is lower by more than one
        standard error, and so is that choice of kind made again without
        each fold's rows (a score fitted to the noise of few policy rows
        seldom is), and the kind as kept (fitted on all the policy rows) has
        no higher error on them than the reference; ``policy_`` can hold
        rules of another kind than
        ``policy`` names (``budget_search_`` lists every kind tried and the
        one kept). What is guaranteed is the average over rows like the
        policy rows; ``expected_cost_`` estimates it out of sample, and
        ``budget_confidence`` adds a margin. A budget below the first stage's
        cost cannot be met and is an error that says by how much.

    budget_confidence : float in (0.5, 1), default=None
        With ``budget`` (ignored without): choose the policy so that the
        one-sided upper confidence bound, at this level, of its average cost
        per row is within the budget (a normal approximation over the
        held-out policy rows, copies of a row (the same features and target)
        counted once with their summed weight, so that weight k on a row and
        k copies of it get the same margin, distinct rows apart even where
        the stages answer them alike, and their number counted as Kish's
        effective number; with groups routed to the splitter, each group is
        one). None meets the budget on the policy rows exactly.

    policy : str, classifier or PolicySearch subclass, default="linear"
        How exits are decided; every family honours ``cost_weight`` and
        ``budget``. Bolukbasi et al.'s rules learned bottom-up: ``"linear"``
        (an L2-regularised logistic regression on standardised features),
        ``"constant"`` (one decision per stage for all rows) or a classifier
        that accepts ``sample_weight``. ``"eenet"``: per-stage scores that
        predict each stage's error (a ridge regression on the same features)
        with per-stage thresholds. Heuristic baselines with one threshold
        shared by all stages for a ``cost_weight`` and one per stage for a
        ``budget``: ``"disagreement"`` (defer while the last two stages'
        predictions differ by more than the threshold; the first stage has no
        earlier one, so every row or none exits there) and ``"uncertainty"``
        (defer while the stage's own uncertainty exceeds it). See
        :mod:`skadaptive.policies`.

    policy_features : {"confidence", "history", "probabilities"}, \
            default="history"
        Bolukbasi rules only (the classifiers' ``"classes"``, a confidence
        per predicted class, has no meaning here). What the rule after stage
        k sees (see :func:`skadaptive.policies.regression_features`):
        ``"confidence"`` is
        stage k's uncertainty and its disagreement with stage k - 1;
        ``"history"`` adds stage k's prediction and its square, the earlier
        stages' predictions, and stage k's differences from each of them;
        ``"probabilities"`` (there is no probability vector in regression)
        adds a piecewise-linear basis of stage k's prediction, for a stage
        whose error depends on the level of its prediction in no monotone
        way. With a ``budget`` both are tried and the one with the lower
        out-of-sample error is kept.

    tune_threshold : bool, default=True
        Bolukbasi rules only. Move each rule's cut on its learned score to the
        value that minimises the held-out risk. False uses the rule's own
        prediction, as in the paper.

    loss : {"squared_error", "absolute_error"}, default="squared_error"
        Per-row loss of the answering stage in ``loss + lam * cost``, divided
        by the scale of ``y`` (see ``cost_weight``). The figures the
        estimator reports are the matching errors in the target's units:
        mean squared or mean absolute error. The scale is learned for the
        fit's loss, which stays that of everything learned from the fit
        (``with_policy``, ``frontier_``, ``evaluate_frontier``) until a refit.
        With ``"squared_error"``, a ``y`` whose squared errors float64 cannot
        hold (a scale beyond about 1e154, or below 1e-162) is an error.
    answer : {"stage", "combined"}, default="stage"
        What a row gets at the exit that answers it. ``"stage"``: that exit's
        own prediction. ``"combined"``: a combination of the predictions of
        every exit the row ran (already paid for: no stage runs again, only
        the combiner's arithmetic, timed with the routing by ``costs="auto"``
        and not counted with costs given as numbers or trees). Per exit, a
        convex blend of the exits' predictions (weights at least 0 summing to
        1) or a linear regression on them with an intercept (stacking, with a
        small ridge penalty), both fitted by weighted least squares on the
        policy's scale of ``y``, replaces the exit's own prediction only
        where its 3-fold cross-validated ``loss`` on the policy rows is lower
        by more than one standard error of the paired per-row difference;
        from the simplest kind up, each replaces the one kept so far only
        where it is that much better than it (see ``combiners_``). Combiners
        are fitted on the cross-fitted held-out predictions, never on a
        stage's training rows, and the policy is learned on their
        out-of-fold answers, so it decides when the combined prediction is
        good enough. With ``budget=``, the policy ``answer="stage"`` would
        learn is learned too, and the combined answers' replaces it only
        where its error is clearly lower out of sample (the one-standard-error
        rule of the budget search, on the cross-fitted policies, and again
        with the choice made without each fold; ``answer_`` says which were
        kept). A combined answer keeps its exit's own uncertainty.
        Exit 0 always answers with its own prediction; with fewer than 30
        distinct policy rows of positive weight (copies of a row count once),
        every exit does (with a warning).
        Switching it needs a refit; with ``memory=`` the stages come from
        the cache, and only the combiners (and their timing) and the policy
        are fitted again.

    """ + (
    _from(_SHARED_PARAMETERS, "cv")
    .replace("number of stratified folds", "number of shuffled folds (KFold)")
    .replace(
        "Seeds the hold-out split for a float ``cv``",
        "Seeds the hold-out split for a float ``cv``, the shuffle of an int\n"
        "        ``cv``'s folds (one fixed shuffle without a seed: folds cut in the\n"
        "        rows' order left each fold's models without the targets of rows\n"
        "        sorted by them)",
    )
    .replace("cross-fitting and of the combiners", "cross-fitting")
    .replace("stage probabilities", "stage answers")
    .replace("and of the probabilities", "and of the answers")
    .replace("round the\n        probabilities", "round the\n        answers")
)
_REGRESSION_PARAMETERS = _reworded(
    _REGRESSION_PARAMETERS,
    ("held-out probabilities are computed", "held-out predictions are computed"),
    ("gave the held-out probabilities", "gave the held-out predictions"),
    (
        "surer or less sure of new rows than its cross-fitted copies were of",
        "more or less accurate on new rows than its cross-fitted copies were on",
    ),
    ("and the accuracy estimate", "and the error estimate"),
    (
        "Each fold's training rows must hold every class, and the stages",
        "The stages",
    ),
    (
        "on ``benchmarks/REFIT_RESULTS.md`` cascades",
        "on ``benchmarks/REFIT_RESULTS.md`` classifier cascades",
    ),
    ("1.5-7 points less accurate", "(classifiers) 1.5-7 points less accurate"),
)

_REGRESSION_ATTRIBUTES = (
    _SHARED_ATTRIBUTES[: _SHARED_ATTRIBUTES.index("    policy_rows_cost_,")]
    .replace("policy_rows_accuracy", "policy_rows_error")
    .replace("expected_accuracy", "expected_error")
    .replace(
        "or the per-stage max-probability baseline's",
        "per-exit disagreement\n        thresholds' or one exit for every row",
    )
    .replace("kept, the most\n        accurate", "kept, the\n        lowest-error")
    + """    policy_rows_cost_, policy_rows_error_ : float
        Average cost per row (units of ``costs_``) and error (mean squared or
        absolute error, as ``loss``, in the target's units) on the held-out
        policy rows, the rows the policy's rules and thresholds were chosen
        on: in sample for the policy, so optimistic. The budget holds here
        (on a copy from ``recalibrate``, which meets it on other rows, it may
        not).
    expected_cost_, expected_error_ : float
        Out-of-sample estimates of the average cost per row and of the error:
        the policy rows are split in 5 folds, the policy is chosen again on
        four and decides the fifth. Never clamped. With fewer than 5
        distinct policy rows of positive weight nothing can be held out, and
        both are the policy rows' own figures. On a copy from
        ``recalibrate``, ``expected_cost_`` is the cost measured on the rows
        recalibrated on, and ``expected_error_`` the fitted estimate,
        unchanged (without labels it cannot be re-estimated).
"""
    # The speed-up reads as the classifiers'.
    + _SHARED_ATTRIBUTES[
        _SHARED_ATTRIBUTES.index("    expected_speed_up_ :") : _SHARED_ATTRIBUTES.index(
            "    recalibrated_cost_, recalibration_ :"
        )
    ]
    + """    recalibrated_cost_, recalibration_ : float, dict
        Only on a copy from ``recalibrate``: the average cost per row measured
        on the unlabelled rows it was recalibrated on, and what was done
        there (budget, cost, next step, status, shift, thresholds and exit
        rates before and after).
    stage_errors_ : ndarray of shape (n_stages,)
        Held-out error of each stage alone.
    exit_errors_ : ndarray of shape (n_stages,)
        The same, for the exits as the estimator answers there: each stage's
        own prediction where ``answer_`` is ``"stage"``; where it is
        ``"combined"``, the combiners' (out-of-fold) predictions.
    oracle_error_, oracle_cost_ : float
        Held-out error and average cost of the oracle that answers each row
        at the first exit whose error is the smallest, with the exits'
        answers (``exit_errors_``: combined ones where ``answer_`` is
        ``"combined"``):
        the lower bound of any policy over these exits.
    answer_ : {"stage", "combined"}
        What the kept policy's exits answer with: ``"combined"`` where the
        exits combine (``combiners_``) and, for a budget, the combined
        answers' policy was clearly lower in error out of sample than the stage
        answers' and answers some policy rows at an exit that combines (see
        ``answer``; ``budget_search_`` has both kinds' figures); else
        ``"stage"``, each stage's own prediction, and the combiners are not
        used by the policy. ``frontier_`` and :meth:`with_policy` with a
        ``cost_weight`` answer with the combiners whenever they combine.
    combiners_ : list of RegressionCombiner
        One per exit: how it answers (``kind``: ``"stage"`` for every exit
        with ``answer="stage"``, and for exit 0; else the kind chosen, with
        each kind's out-of-fold ``cv_error`` in the target's units, and its
        ``weights`` and ``bias``). See
        :class:`~skadaptive.stages.RegressionCombiner`.
    target_center_, target_scale_ : float
        The centre and scale of ``y`` the policy works on (see
        ``cost_weight``), learned on the rows passed to ``fit``.
    frontier_ : dict of ndarray
        Trade-off on the held-out policy rows, traced by refitting the policy
        (not the stages) over a grid of ``cost_weight`` when first read: keys
        ``cost_weight``, ``error``, ``expected_cost``, ``normalized_cost`` and
        ``exit_rate_0``, ``exit_rate_1``, ... In sample for each point's
        policy, like ``policy_rows_error_`` and ``policy_rows_cost_`` (the key
        ``expected_cost`` is not the out-of-sample ``expected_cost_``);
        :meth:`evaluate_frontier` gives them on other rows. Every value has
        one entry per point, so ``pandas.DataFrame(est.frontier_)`` loads it.
    n_features_in_ : int
        Only where ``X`` has a number of features: rows of one dimension (not
        images of several dimensions, whose shape the stages check).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only where ``X`` has string column names."""
)
_REGRESSION_ATTRIBUTES = _reworded(
    _REGRESSION_ATTRIBUTES,
    (
        '``"max_proba per exit"``, ...;',
        '``"disagreement per exit"``, ``"one exit for every row"``, ...;',
    ),
    (
        "(for the default loss: its ``policy_rows_error`` no lower)",
        "(its ``policy_rows_error`` no higher)",
    ),
    (
        "figures in the loss, lower is better)",
        "figures in the loss, lower is better: the error divided by "
        '``target_scale_``, squared for ``loss="squared_error"``, as the '
        "text ends by saying)",
    ),
    (
        "more accurate by more than one standard error, or as accurate and cheaper",
        "lower in error by more than one standard error, or as low and cheaper",
    ),
    (
        "dearer policy may still be more accurate, beyond",
        "dearer policy may still be lower in error, beyond",
    ),
    (
        "the depth most\n        accurate out of sample",
        "the depth lowest\n        in error out of sample",
    ),
)


def fill_regression_docs(cls):
    """Put the parameters and attributes both regressors share into a docstring."""
    cls.__doc__ = cls.__doc__.replace(
        "{shared_parameters}", _REGRESSION_PARAMETERS
    ).replace("{shared_attributes}", _REGRESSION_ATTRIBUTES)
    return cls
