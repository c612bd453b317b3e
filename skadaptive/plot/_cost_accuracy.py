"""CostAccuracyDisplay: accuracy (or a regressor's error) against average cost,
as scikit-learn displays do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import is_regressor
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._typing import ArrayLike, Rows
from .._validation import check_row_weights
from .._wrapped import adaptive_inside
from ..stages._regression import constant_target

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .._base import BaseAdaptive

#: ``baselines``: curves to compare with, by name, each a pair (costs,
#: accuracies) of 1-d array-likes of the same length.
Baselines = Mapping[str, tuple[ArrayLike, ArrayLike]]


def _pyplot(caller: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib, which is not installed. Install it with "
            '`pip install "skadaptive[plot]"` (or `pip install matplotlib`).'
        ) from exc
    return plt


def draw_oracle(ax, display, label: str = "oracle", color: str = "tab:green"):
    """Draw ``display``'s oracle point (a star) on ``ax``; the artist."""
    return ax.scatter(
        [display.oracle_cost],
        [display.oracle_accuracy],
        marker="*",
        s=120,
        color=color,
        zorder=3,
        label=label,
    )


def _check_baselines(baselines) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if baselines is None:
        return {}
    if not isinstance(baselines, Mapping):
        raise TypeError(
            "baselines must be a dict {name: (costs, accuracies)}; got "
            f"{type(baselines).__name__}."
        )
    checked = {}
    for name, curve in baselines.items():
        try:
            costs, accuracies = curve
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"baseline {name!r} must be a pair (costs, accuracies); got {curve!r}."
            ) from exc
        costs, accuracies = np.atleast_1d(costs), np.atleast_1d(accuracies)
        if costs.shape != accuracies.shape or costs.ndim != 1:
            raise ValueError(
                f"baseline {name!r}: costs and accuracies must be 1-D and of the "
                f"same length; got shapes {costs.shape} and {accuracies.shape}."
            )
        checked[str(name)] = (costs.astype(float), accuracies.astype(float))
    return checked


class CostAccuracyDisplay:
    """Accuracy against average cost: a policy frontier and what to compare it to.

    Shows the frontier of an adaptive estimator (one point per policy, joined in
    order of cost), each stage on its own, the oracle that exits at the first
    correct stage, any baseline curves, and the chosen operating point. Build it
    with :meth:`from_estimator` (on new rows or on the held-out frontier of the
    fit) or :meth:`from_predictions`, or directly from numbers, then call
    :meth:`plot`.

    Parameters
    ----------
    cost, accuracy : array-like of shape (n_points,)
        Average cost per row and accuracy of each frontier point (for
        regressors, the figure named by ``score_label``: an error or R²;
        every ``accuracy`` below is then that figure).
    stage_costs, stage_accuracies : array-like of shape (n_stages,), default=None
        Cost of answering every row at each stage, and that stage's accuracy.
    stage_names : list of str, default=None
    oracle_cost, oracle_accuracy : float, default=None
    chosen_cost, chosen_accuracy : float, default=None
        The operating point of the estimator (its ``cost_weight`` or ``budget``).
    baselines : dict of str to (costs, accuracies), default=None
        Other methods' curves, e.g. ``{"max-prob threshold": (costs, accs)}``.
    cost_label : str, default="average cost per row"
        X axis label: say the unit, e.g. ``"trees per row"`` or ``"seconds"``.
    name : str, default=None
        Legend label of the frontier.
    score_label : str, default="accuracy"
        Y axis label: what ``accuracy`` holds (``"MSE"``, ``"MAE"`` or
        ``"R²"`` for regressors).

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    line_ : matplotlib Line2D
        The frontier.
    stage_points_, oracle_point_, chosen_point_ : matplotlib artists or None
    baseline_lines_ : dict of str to Line2D

    See Also
    --------
    sklearn.metrics.RocCurveDisplay : The convention this display follows.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> from skadaptive.plot import CostAccuracyDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("stump", DecisionTreeClassifier(max_depth=1)),
    ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3,
    ... ).fit(X[::2], y[::2])
    >>> display = CostAccuracyDisplay.from_estimator(cascade, X[1::2], y[1::2])
    >>> display.ax_.get_xlabel()
    'average cost per row'
    """

    def __init__(
        self,
        *,
        cost,
        accuracy,
        stage_costs=None,
        stage_accuracies=None,
        stage_names=None,
        oracle_cost=None,
        oracle_accuracy=None,
        chosen_cost=None,
        chosen_accuracy=None,
        baselines=None,
        cost_label: str = "average cost per row",
        name: str | None = None,
        score_label: str = "accuracy",
    ):
        self.cost = cost
        self.accuracy = accuracy
        self.stage_costs = stage_costs
        self.stage_accuracies = stage_accuracies
        self.stage_names = stage_names
        self.oracle_cost = oracle_cost
        self.oracle_accuracy = oracle_accuracy
        self.chosen_cost = chosen_cost
        self.chosen_accuracy = chosen_accuracy
        self.baselines = baselines
        self.cost_label = cost_label
        self.name = name
        self.score_label = score_label

    def plot(
        self,
        ax: Axes | None = None,
        *,
        name: str | None = None,
        show_stages: bool = True,
        show_oracle: bool = True,
        legend: bool = True,
        chosen_label: str = "chosen operating point",
        **kwargs: Any,
    ) -> CostAccuracyDisplay:
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        name : str, default=None
            Legend label of the frontier; overrides ``self.name``.
        show_stages, show_oracle : bool, default=True
            Draw each stage alone and the oracle (turn them off for all but
            one display drawn on shared axes).
        legend : bool, default=True
        chosen_label : str, default="chosen operating point"
            Legend label of the chosen operating point (``from_estimator``'s
            default adds "(stage answers)" where the frontier's exits combine
            but the estimator's policy answers with the stages' own,
            ``answer_``; a label passed is drawn as given).
        **kwargs : dict
            Passed to the frontier's ``ax.plot``.

        Returns
        -------
        display : CostAccuracyDisplay
            ``self``, with the matplotlib objects as attributes.
        """
        plt = _pyplot("CostAccuracyDisplay.plot")
        cost = np.asarray(self.cost, dtype=float)
        accuracy = np.asarray(self.accuracy, dtype=float)
        if cost.shape != accuracy.shape or cost.ndim != 1 or cost.size == 0:
            raise ValueError(
                "cost and accuracy must be non-empty 1-D arrays of the same "
                f"length; got shapes {cost.shape} and {accuracy.shape}."
            )
        baselines = _check_baselines(self.baselines)
        shapes = [
            None if values is None else np.shape(values)
            for values in (self.stage_costs, self.stage_accuracies)
        ]
        if shapes[0] != shapes[1]:
            raise ValueError(
                "stage_costs and stage_accuracies go together: give both, one "
                f"value per stage, or neither; got shapes {shapes[0]} and "
                f"{shapes[1]}."
            )
        if (
            self.stage_names is not None
            and shapes[0] is not None
            and len(self.stage_names) != shapes[0][0]
        ):
            raise ValueError(
                f"stage_names names {len(self.stage_names)} stages but "
                f"stage_costs has {shapes[0][0]}: give one name per stage."
            )
        for point in ("chosen", "oracle"):
            given = [
                getattr(self, f"{point}_{part}") is not None
                for part in ("cost", "accuracy")
            ]
            if given[0] != given[1]:
                raise ValueError(
                    f"{point}_cost and {point}_accuracy go together: give both "
                    "or neither."
                )
        if ax is None:
            _, ax = plt.subplots()
        order = np.argsort(cost, kind="stable")
        line_kw = {"marker": "o", "markersize": 3, "label": name or self.name}
        line_kw["label"] = line_kw["label"] or "learned policy"
        line_kw.update(kwargs)
        (self.line_,) = ax.plot(cost[order], accuracy[order], **line_kw)

        self.baseline_lines_ = {}
        for label, (b_cost, b_accuracy) in baselines.items():
            b_order = np.argsort(b_cost, kind="stable")
            (self.baseline_lines_[label],) = ax.plot(
                b_cost[b_order], b_accuracy[b_order], "--", marker=".", label=label
            )

        self.stage_points_ = None
        if show_stages and self.stage_costs is not None:
            stage_costs = np.asarray(self.stage_costs, dtype=float)
            stage_accuracies = np.asarray(self.stage_accuracies, dtype=float)
            self.stage_points_ = ax.scatter(
                stage_costs,
                stage_accuracies,
                marker="s",
                color="black",
                zorder=3,
                label="each stage alone",
            )
            names = self.stage_names or [str(k) for k in range(len(stage_costs))]
            for label, x, y in zip(names, stage_costs, stage_accuracies):
                ax.annotate(
                    label,
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize="small",
                )

        self.oracle_point_ = None
        if show_oracle and self.oracle_cost is not None:
            self.oracle_point_ = draw_oracle(ax, self)

        self.chosen_point_ = None
        if self.chosen_cost is not None:
            self.chosen_point_ = ax.scatter(
                [self.chosen_cost],
                [self.chosen_accuracy],
                marker="D",
                s=50,
                facecolors="none",
                # The frontier's own colour: overlaid displays stay apart.
                edgecolors=self.line_.get_color(),
                linewidths=2,
                zorder=4,
                label=chosen_label,
            )

        ax.set_xlabel(self.cost_label)
        ax.set_ylabel(getattr(self, "score_label", "accuracy"))
        ax.grid(True, alpha=0.3)
        if legend:
            # Where it hides the fewest points (the curve rises to the right).
            ax.legend(loc="best", fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator: BaseAdaptive,
        X: Rows | None = None,
        y: ArrayLike | None = None,
        *,
        sample_weight: ArrayLike | None = None,
        cost: str = "units",
        baselines: Baselines | None = None,
        name: str | None = None,
        metric: str = "error",
        ax: Axes | None = None,
        **kwargs: Any,
    ) -> CostAccuracyDisplay:
        """Plot a fitted estimator's frontier on rows ``X`` or as held out.

        Parameters
        ----------
        estimator : AdaptiveCascadeClassifier, EarlyExitClassifier, \
                AdaptiveCascadeRegressor or EarlyExitRegressor
            Fitted.
        X, y : array-like, default=None
            Rows to evaluate every frontier policy, every stage and the oracle
            on (see ``estimator.evaluate_frontier``). When None, the held-out
            figures of the fit are shown (``frontier_``, ``stage_accuracies_``,
            ``oracle_accuracy_``...).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows ``X, y``; only with them (the held-out
            figures are weighted as the fit was).
        cost : {"units", "seconds"}, default="units"
            ``"units"``: the estimator's ``costs_`` units. ``"seconds"``: the
            stages' wall-clock seconds per row, measured on ``X`` (required).
        baselines : dict of str to (costs, accuracies), default=None
            Curves to compare with, in the same cost unit.
        name : str, default=None
            Legend label of the frontier; the estimator's class name when None
            (and "(combined answers)" where its fitted exits combine,
            ``combiners_``). Draw two estimators
            (e.g. ``answer="stage"`` and ``answer="combined"``) on one plot
            by passing the first display's ``ax_`` as ``ax`` to the second,
            with ``show_stages=False, show_oracle=False`` and a
            ``chosen_label`` of its own so that the legend names each once
            (on held-out rows the title then says only which rows).
        metric : {"error", "accuracy", "mse", "mae", "r2"}, default="error"
            What the y axis shows: the figure the estimator reports
            (``"error"``). For a classifier that is its accuracy (``"error"``
            and ``"accuracy"`` alike; any other value is an error). For a
            regressor, its error (``"error"``, or its name: ``"mse"`` for
            ``loss="squared_error"``, ``"mae"`` for ``"absolute_error"``), or
            R² (``1 - MSE / variance of y`` on the same rows; with
            ``loss="squared_error"`` only).
        ax : matplotlib Axes, default=None
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : CostAccuracyDisplay
        """
        _pyplot("CostAccuracyDisplay.from_estimator")
        # The estimator inside a Pipeline (X through its first steps), a
        # fitted search or a FrozenEstimator, as the cost scorers take it.
        estimator, X = adaptive_inside(estimator, X)
        if not hasattr(type(estimator), "evaluate_frontier"):
            raise TypeError(
                f"{type(estimator).__name__} has no cost-accuracy frontier; "
                "from_estimator draws a skadaptive estimator's "
                "(AdaptiveCascadeClassifier, EarlyExitClassifier or their "
                "Regressor counterparts), or one inside a Pipeline, a fitted "
                "search or a FrozenEstimator. For other models' answers use "
                "from_predictions."
            )
        # Not check_is_fitted(estimator, "frontier_"): reading frontier_ on
        # an estimator whose policy rows were discarded raises the error that
        # says so, which hasattr would turn into "not fitted".
        check_is_fitted(estimator, "policy_")
        if cost not in ("units", "seconds"):
            raise ValueError(f"cost must be 'units' or 'seconds'; got {cost!r}.")
        if (X is None) != (y is None):
            raise ValueError("Pass both X and y, or neither (held-out frontier).")
        if X is None and sample_weight is not None:
            raise ValueError(
                "sample_weight weighs the rows X, y; without them the held-out "
                "figures of the fit are drawn, weighted as the fit was. Pass X "
                "and y with their weights, or no sample_weight."
            )
        regression = is_regressor(estimator)
        if regression:
            # The loss the figures were learned for (set_params(loss=...)
            # after a fit changes them only at a refit).
            score_label = _check_metric(metric, estimator._loss())
        elif metric in ("error", "accuracy"):
            score_label = "accuracy"
        elif metric in ("mse", "mae", "r2"):
            raise ValueError(
                f"metric={metric!r} is for regressors; a classifier's frontier is "
                "drawn in accuracy. Leave metric at its default or pass "
                "metric='accuracy'."
            )
        else:
            raise ValueError(
                "metric must be 'error' or 'accuracy' (the same: its accuracy) "
                f"for a classifier; got {metric!r}."
            )
        if X is None:
            if cost == "seconds":
                raise ValueError(
                    "cost='seconds' times the stages on rows: pass X and y."
                )
            frontier = estimator.frontier_
            oracle_rates = None
            figures = {
                # The costs the estimator reports: what the rows ran (jumps
                # and a router included), not their exit rates.
                "cost": np.asarray(frontier["expected_cost"], dtype=np.float64),
                "chosen_cost": float(estimator.policy_rows_cost_),
                **_figures(
                    frontier,
                    ("accuracy", "stage_accuracies_", "oracle_accuracy_"),
                    estimator,
                    regression,
                ),
                "chosen_accuracy": (
                    estimator.policy_rows_error_
                    if regression
                    else estimator.policy_rows_accuracy_
                ),
            }
            title = f"{name or _default_name(estimator)} (held-out rows)"
            if score_label == _PREDICTION_METRICS["r2"]:
                _, y_encoded, weight = estimator._policy_rows()
                r2_rows = (y_encoded, weight, estimator.target_scale_**2)
        else:
            test = estimator.evaluate_frontier(X, y, sample_weight=sample_weight)
            oracle_rates = test["oracle_exit_rates"]
            figures = {
                "cost": test["expected_cost"],
                "chosen_cost": test["cost_at_fit"],
                "run_rates": test["run_rates"],
                "chosen_run_rates": test["run_rates_at_fit"],
                **_figures(
                    test,
                    ("accuracy", "stage_accuracies", "oracle_accuracy"),
                    None,
                    regression,
                ),
                "chosen_accuracy": test[
                    "error_at_fit" if regression else "accuracy_at_fit"
                ],
            }
            title = None
            if score_label == _PREDICTION_METRICS["r2"]:
                r2_rows = (np.asarray(y, dtype=float), sample_weight, 1.0)
        if score_label == _PREDICTION_METRICS["r2"]:
            for key in ("accuracy", "stage_accuracies", "oracle_accuracy"):
                figures[key] = _r_squared(figures[key], *r2_rows)
            figures["chosen_accuracy"] = float(
                _r_squared(figures["chosen_accuracy"], *r2_rows)
            )
        if cost == "seconds":
            increments = estimator.measure_stage_seconds(X)
            unit = "seconds"
            cost_label = "average time per row (measured now)"
        else:
            increments = estimator.costs_
            unit = estimator._cost_unit()
            cost_label = (
                "average time per row"
                if unit == "seconds"
                else f"average {unit or 'cost'} per row"
            )
        if cost == "seconds":
            # Each stage's measured increment, paid by the rows that run it
            # (the router's own time is not measured).
            figures["cost"] = figures["run_rates"] @ increments
            figures["chosen_cost"] = float(figures["chosen_run_rates"] @ increments)
            stage_costs = np.cumsum(increments)

            def cost_of(rates):
                return float(rates @ stage_costs)
        else:
            # As the estimator reports it: with per-call costs, a batch pays
            # each stage that one of its rows reaches once.
            cost_of = estimator._cost_of_rates
        oracle_cost = (
            estimator.oracle_cost_ if oracle_rates is None else cost_of(oracle_rates)
        )
        display = cls(
            cost=np.asarray(figures["cost"], dtype=np.float64),
            accuracy=figures["accuracy"],
            stage_costs=estimator._alone_costs(increments),
            stage_accuracies=figures["stage_accuracies"],
            stage_names=estimator._stage_names(),
            oracle_cost=float(oracle_cost),
            oracle_accuracy=figures["oracle_accuracy"],
            chosen_cost=float(figures["chosen_cost"]),
            chosen_accuracy=figures["chosen_accuracy"],
            baselines=baselines,
            cost_label=cost_label,
            name=name or _default_name(estimator),
            score_label=score_label,
        )
        kwargs.setdefault(
            "chosen_label", "chosen operating point" + kept_answers_note(estimator)
        )
        display = display.plot(ax=ax, **kwargs)
        if unit == "seconds":
            # Ticks such as "20 µs" rather than 2e-05.
            from matplotlib.ticker import EngFormatter

            display.ax_.xaxis.set_major_formatter(EngFormatter(unit="s"))
        _title_rows(display.ax_, title, held_out=X is None)
        return display

    @classmethod
    def from_predictions(
        cls,
        y_true: ArrayLike,
        y_preds: Sequence,
        costs: Sequence,
        *,
        sample_weight: ArrayLike | None = None,
        baselines: Baselines | None = None,
        cost_label: str = "average cost per row",
        name: str | None = None,
        metric: str | None = None,
        ax: Axes | None = None,
        **kwargs: Any,
    ) -> CostAccuracyDisplay:
        """Plot operating points from their predictions and per-row costs.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
        y_preds : sequence of array-like of shape (n_samples,)
            Predicted labels (or, for regression, values) at each operating
            point.
        costs : sequence of float or array-like of shape (n_samples,)
            Each operating point's cost per row (e.g. ``predict_cost``), or its
            average cost.
        sample_weight : array-like of shape (n_samples,), default=None
        baselines : dict of str to (costs, accuracies), default=None
        cost_label : str, default="average cost per row"
        name : str, default=None
        metric : {"accuracy", "mse", "mae", "r2", "error"}, default=None
            What the y axis shows: the share of right labels, or for
            regression the mean squared or absolute error, or R². None (or
            ``"error"``, the name :meth:`from_estimator` takes for an
            estimator's own figure, which predictions alone do not tell):
            ``"mse"`` when ``y_true`` or any of ``y_preds`` is continuous (a
            regression target or prediction, as
            :func:`sklearn.utils.multiclass.type_of_target` says), else
            ``"accuracy"``; ``"accuracy"`` of continuous targets or
            predictions is refused. A target of whole numbers such as
            ``load_diabetes``'s reads as class labels, and so do whole-number
            predictions (a fully grown tree's, a 1-nearest-neighbour's): for
            a regression whose predictions are all whole numbers, name the
            metric.
        ax : matplotlib Axes, default=None
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : CostAccuracyDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from skadaptive.plot import CostAccuracyDisplay
        >>> display = CostAccuracyDisplay.from_predictions(
        ...     [0, 1, 1, 0], [[0, 0, 1, 0], [0, 1, 1, 0]], [1.0, [1, 5, 1, 5]])
        >>> display.accuracy
        array([0.75, 1.  ])
        """
        _pyplot("CostAccuracyDisplay.from_predictions")
        if len(y_preds) and np.ndim(y_preds[0]) == 0:
            raise ValueError(
                "y_preds must be a list of prediction arrays, one per operating "
                "point; got a flat list of labels. Wrap a single one: [y_pred]."
            )
        y_preds = [column_or_1d(y_pred) for y_pred in y_preds]
        named = [("y_true", y_true)] + [
            (f"y_preds[{k}]", y_pred) for k, y_pred in enumerate(y_preds)
        ]
        continuous = [
            name for name, values in named if type_of_target(values) == "continuous"
        ]
        if metric in (None, "error"):
            metric = "mse" if continuous else "accuracy"
        elif metric == "accuracy" and continuous:
            raise ValueError(
                f"metric='accuracy' compares labels, but {continuous[0]} is "
                "continuous (a regression target or prediction): pass "
                "metric='mse', 'mae' or 'r2'."
            )
        if metric not in _PREDICTION_METRICS:
            raise ValueError(
                f"metric must be one of {sorted(_PREDICTION_METRICS)} or 'error' "
                f"(the default for the data); got {metric!r}."
            )
        y_true = column_or_1d(y_true)
        n_rows = len(y_true)
        if np.isscalar(costs) or getattr(costs, "ndim", 1) == 0:
            raise ValueError(
                "costs must be a list with one entry per operating point (a "
                "number or one cost per row); got a single value. Wrap it: "
                f"[{costs!r}]."
            )
        if len(y_preds) != len(costs) or len(y_preds) == 0:
            raise ValueError(
                "y_preds and costs must give the same number (>= 1) of operating "
                f"points; got {len(y_preds)} and {len(costs)}."
            )
        sample_weight = check_row_weights(sample_weight, y_true)
        weight = np.ones(n_rows) if sample_weight is None else sample_weight
        accuracy, average_cost = [], []
        for k, (y_pred, cost) in enumerate(zip(y_preds, costs)):
            if len(y_pred) != n_rows:
                raise ValueError(
                    f"y_preds[{k}] has {len(y_pred)} rows but y_true has {n_rows}."
                )
            cost = np.asarray(cost, dtype=float)
            if not np.all(np.isfinite(cost)):
                raise ValueError(
                    f"costs[{k}] holds values that are not finite (NaN or inf); "
                    "every operating point needs a cost."
                )
            if cost.ndim == 0:
                average_cost.append(float(cost))
            elif cost.shape == (n_rows,):
                average_cost.append(float(cost @ weight / weight.sum()))
            else:
                raise ValueError(
                    f"costs[{k}] must be a number or one cost per row ({n_rows}); "
                    f"got shape {cost.shape}."
                )
            accuracy.append(_score(metric, y_true, y_pred, weight))
        display = cls(
            cost=np.array(average_cost),
            accuracy=np.array(accuracy),
            baselines=baselines,
            cost_label=cost_label,
            name=name,
            score_label=_PREDICTION_METRICS[metric],
        )
        display = display.plot(ax=ax, **kwargs)
        _title_rows(display.ax_, None, held_out=False)
        return display


def kept_answers_note(estimator) -> str:
    """ " (stage answers)" where the exits combine but the estimator's own
    policy answers with the stages' own answers (``answer_``: a budget kept
    them), so its point and oracle are not the frontier's answers; else ""."""
    from ..stages._combined import combines

    combiners = getattr(estimator, "combiners_", None)
    if combiners is None or not combines(combiners):
        return ""
    return " (stage answers)" if estimator.answer_ == "stage" else ""


def _default_name(estimator) -> str:
    """The estimator's class, and "(combined answers)" where its exits answer
    so: as fitted (``combiners_``; ``answer`` set after a fit changes nothing
    until a refit), else as ``answer`` says."""
    from ..stages._combined import combines

    combiners = getattr(estimator, "combiners_", None)
    if combiners is not None:
        combined = combines(combiners)
    else:
        combined = getattr(estimator, "answer", "stage") != "stage"
    name = type(estimator).__name__
    return f"{name} (combined answers)" if combined else name


def _title_rows(ax, title: str | None, *, held_out: bool) -> None:
    """Title ``ax`` with ``title`` (held-out rows: which estimator's), as long
    as every curve on it is of held-out rows: a second estimator's makes it
    "held-out rows" (the legend names each), and curves of other rows (given,
    or from predictions), in either order, leave no title."""
    # The curves drawn on ax by kind of rows, as long as they are on it (a
    # cleared axes forgets them); kept as objects, whose ids then stay theirs.
    drawn = ax.__dict__.setdefault("_skadaptive_rows", {})
    artists = (*ax.lines, *ax.collections)
    on_ax = {id(artist) for artist in artists}
    for kind in drawn:
        drawn[kind] = [a for a in drawn[kind] if id(a) in on_ax]
    known = {id(a) for kept in drawn.values() for a in kept}
    new = [a for a in artists if id(a) not in known]
    drawn.setdefault("held-out" if held_out else "given", []).extend(new)
    rows = {kind for kind, kept in drawn.items() if kept}
    if rows != {"held-out"}:
        if "held-out rows" in ax.get_title():
            ax.set_title("")
        return
    shown = ax.get_title()
    ax.set_title("held-out rows" if shown and shown != title else title)


#: Values of ``from_predictions``'s ``metric``, and their axis labels.
_PREDICTION_METRICS = {"accuracy": "accuracy", "mse": "MSE", "mae": "MAE", "r2": "R²"}


def _score(metric: str, y_true, y_pred, weight) -> float:
    if metric == "accuracy":
        # As accuracy_score (and the estimators' score) has it: labels of
        # another type than y_true's (strings against numbers) are an error,
        # not every row wrong.
        return float(accuracy_score(y_true, y_pred, sample_weight=weight))
    error = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    if metric == "mae":
        return float(np.abs(error) @ weight / weight.sum())
    mse = float(error**2 @ weight / weight.sum())
    if metric == "mse":
        return mse
    return float(_r_squared(mse, np.asarray(y_true, dtype=float), weight))


def _r_squared(mse, y, weight, unit: float = 1.0):
    """``1 - mse / (variance of y * unit)``, as scikit-learn's ``r2_score``
    gives it for a constant ``y`` (up to rounding): 1 where the answers are
    exact, else 0 (not -inf, nor a division by zero)."""
    mse = np.asarray(mse, dtype=np.float64)
    if constant_target(y, weight):
        return np.where(mse == 0, 1.0, 0.0)
    return 1.0 - mse / (_variance(y, weight) * unit)


def _variance(y, weight) -> float:
    weight = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    mean = weight @ y / weight.sum()
    return float(weight @ (y - mean) ** 2 / weight.sum())


def _check_metric(metric: str, loss: str) -> str:
    """The y label of a regressor's display for ``metric``, or a clear error.

    ``"error"`` is the estimator's own error; ``"mse"`` and ``"mae"`` name it
    (each only for the matching ``loss``); ``"r2"`` needs the squared error.
    """
    own = "mse" if loss == "squared_error" else "mae"
    if metric not in ("error", "mse", "mae", "r2"):
        raise ValueError(
            "metric must be 'error' (the estimator's own: MSE or MAE, as its "
            f"loss), 'mse', 'mae' or 'r2' for a regressor; got {metric!r}."
        )
    if metric == "r2" and loss != "squared_error":
        raise ValueError(
            "metric='r2' is 1 - MSE / variance of y: it needs the squared "
            f"error, and this estimator's loss is {loss!r}. Use "
            "metric='error' (MAE) or refit with loss='squared_error'."
        )
    if metric in ("mse", "mae") and metric != own:
        raise ValueError(
            f"metric={metric!r}: the estimator's figures are its own error, the "
            f"{own.upper()} (loss={loss!r}). Use metric='error', or refit with "
            f"loss={'squared_error' if metric == 'mse' else 'absolute_error'!r}."
        )
    if metric == "r2":
        return _PREDICTION_METRICS["r2"]
    return own.upper()


def _figures(source, keys, estimator, regression) -> dict:
    """The frontier's, each stage's and the oracle's figures, for a display.

    ``source`` is ``frontier_`` (with ``estimator`` for its attributes) or
    ``evaluate_frontier``'s result; for regressors the error-named entries.
    """
    frontier_key, stages_key, oracle_key = keys
    if regression:
        frontier_key, stages_key, oracle_key = (
            key.replace("accuracies", "errors").replace("accuracy", "error")
            for key in keys
        )

    def get(key):
        return (
            source[key]
            if estimator is None or not key.endswith("_")
            else getattr(estimator, key)
        )

    return {
        "accuracy": source[frontier_key],
        "stage_accuracies": get(stages_key),
        "oracle_accuracy": get(oracle_key),
    }
