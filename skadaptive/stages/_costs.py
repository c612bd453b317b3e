"""Measured cost of a stage: the ``costs="auto"`` option.

A call of a stage on ``n`` rows takes about ``per_call + n * per_row`` seconds:
a fixed part (Python and library overhead, a tree's traversal set-up, an ONNX
session run) and a part per row. :func:`measure_exit_seconds` times each
exit's increment at a few batch sizes and fits that line, over any stage source
(independent stages, whose state is None, or exits that share computation);
:func:`measure_exit_seconds_per_row` and :func:`measure_seconds_per_row` give
the time per row of one call on the whole sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import nnls
from sklearn.utils import Bunch, check_random_state

from .._sklearn_private import _num_samples, _safe_indexing
from .._typing import RandomState, Rows

if TYPE_CHECKING:
    from ..engine import StageSource

# Each stage is timed on the same sample of rows, ``_REPEATS`` times after a
# warm-up call, and the fastest run is kept: noise from the rest of the machine
# only ever adds time, so the minimum is the most repeatable estimate.
_REPEATS = 5
_MAX_TIMING_ROWS = 1000
# Distinct rows for the line over batch sizes: tree models answer repeated
# rows faster (the same paths stay in cache), so rows are repeated only where
# the sample has fewer than the batch (an 8,192-row batch always repeats).
_MAX_LINE_ROWS = 4096
# Batch sizes the line per_call + n * per_row is fitted over (with the whole
# sample): a single row, where the per-call part dominates, up to the sample.
_TIMING_BATCH_SIZES = (1, 16, 128, 1024, 4096)
# For a batch size above the largest of those, one more timing at this many
# rows: the line is otherwise extended from the largest size timed, and a
# tree's time per row keeps falling up to thousands of rows (on digits, extra
# trees timed up to 1,024 rows and extended to 10,000 overestimated that call
# threefold).
_LARGEST_TIMED = 8192


def timing_scale(batch_size: int | None) -> int | None:
    """What of ``batch_size`` decides the sizes timed: None up to 1,024 rows,
    else 4,096 up to 4,096 rows, else 8,192 (so that a cache keyed by it is
    shared by every batch size that times the same sizes)."""
    if batch_size is None or batch_size <= _TIMING_BATCH_SIZES[-2]:
        return None
    return (
        _TIMING_BATCH_SIZES[-1]
        if batch_size <= _TIMING_BATCH_SIZES[-1]
        else _LARGEST_TIMED
    )


def timing_batches(
    n_distinct: int, batch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and batch sizes of a timing: 1, 16, 128, 1,024 and 4,096 rows,
    and 8,192 rows where ``batch_size`` is larger than 4,096.

    The first ``size`` rows of ``tiled`` (positions in a sample of
    ``n_distinct`` rows, repeated as often as needed) make a batch of each
    size, so that a line fitted to their times holds up to large batches
    even where the sample is small. The 4,096-row batch is timed only where
    the sample has at least half as many rows or ``batch_size`` is above
    1,024, so that small data are timed quickly and on few repeats unless
    the batches they will be answered in are large.
    """
    sizes = list(_TIMING_BATCH_SIZES)
    scale = timing_scale(batch_size)
    if n_distinct < sizes[-1] // 2 and scale is None:
        sizes = sizes[:-1]
    if scale == _LARGEST_TIMED:
        sizes.append(_LARGEST_TIMED)
    sizes = np.array(sizes)
    return np.arange(sizes[-1]) % n_distinct, sizes


def measure_seconds_per_row(
    run_stages: list[Callable],
    X: Rows,
    *,
    max_rows: int = _MAX_TIMING_ROWS,
    repeats: int = _REPEATS,
    random_state: RandomState = None,
) -> np.ndarray:
    """Wall-clock seconds per row of each stage, timed on a sample of ``X``.

    Parameters
    ----------
    run_stages : list of callable
        ``run_stages[k](X_rows)`` runs stage ``k`` alone on ``X_rows``.
    X : array-like
        Rows to time on; at most ``max_rows`` of them, drawn at random.
    max_rows : int, default=1000
    repeats : int, default=5
        Timed runs per stage after one warm-up run; the fastest is kept.
    random_state : int, RandomState instance or None

    Returns
    -------
    seconds_per_row : ndarray of shape (n_stages,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skadaptive.stages import measure_seconds_per_row
    >>> X, y = load_iris(return_X_y=True)
    >>> lr = LogisticRegression(max_iter=1000).fit(X, y)
    >>> seconds = measure_seconds_per_row([lr.predict_proba], X)
    >>> bool(seconds[0] > 0)
    True
    """
    return measure_exit_seconds_per_row(
        _EachAlone(run_stages),
        X,
        max_rows=max_rows,
        repeats=repeats,
        random_state=random_state,
    )


class _EachAlone:
    """Callables as a stage source whose stages run alone (state is None)."""

    def __init__(self, run_stages):
        self.run_stages = run_stages
        self.n_stages = len(run_stages)

    def run_stage(self, stage, X_rows, state):
        return self.run_stages[stage](X_rows), None


def measure_exit_seconds_per_row(
    source: StageSource,
    X: Rows,
    *,
    max_rows: int = _MAX_TIMING_ROWS,
    repeats: int = _REPEATS,
    random_state: RandomState = None,
) -> np.ndarray:
    """Wall-clock seconds per row of each exit's *increment*, timed on ``X``.

    Stage ``k`` is timed continuing from the state stage ``k - 1`` produced, so
    the result is the incremental cost that routing pays for a row that goes
    on to exit ``k``. Each stage runs once to warm up, then ``repeats`` times;
    the fastest run is kept.

    Parameters
    ----------
    source : StageSource
        Anything with ``n_stages`` and ``run_stage`` (see
        :class:`~skadaptive.engine.StageSource`).
    X : array-like or sparse matrix
        Rows to time on; at most ``max_rows`` of them, drawn at random.
    max_rows : int, default=1000
    repeats : int, default=5
    random_state : int, RandomState instance or None

    Returns
    -------
    seconds_per_row : ndarray of shape (n_stages,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skadaptive.stages import TreeEnsembleExits, measure_exit_seconds_per_row
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> seconds = measure_exit_seconds_per_row(TreeEnsembleExits(forest, [5, 20]), X)
    >>> bool(seconds[1] > 0)   # the 15 trees after the first exit
    True
    """
    _check_repeats(repeats)
    X, n_rows, _ = _timing_sample(X, max_rows, random_state)
    seconds = np.empty(source.n_stages)
    state = None
    for stage in range(source.n_stages):
        seconds[stage] = _fastest(source, stage, X, state, repeats) / n_rows
        _, state = source.run_stage(stage, X, state)
    return seconds


def measure_exit_seconds(
    source: StageSource,
    X: Rows,
    *,
    max_rows: int = _MAX_LINE_ROWS,
    repeats: int = _REPEATS,
    random_state: RandomState = None,
    batch_size: int | None = None,
    whole: Callable[[Rows], object] | None = None,
) -> Bunch:
    """Seconds per call and per row of each exit's increment, timed on ``X``.

    Stage ``k`` is timed continuing from the state stage ``k - 1`` produced,
    on batches of 1, 16, 128, 1,024 and 4,096 rows (and 8,192 where
    ``batch_size`` is larger than 4,096; see :func:`timing_batches`) of a
    sample of at most ``max_rows`` rows (repeated where it has fewer, which
    can make a tree model look cheaper per row than on as many distinct
    rows), in ``repeats`` rounds over every stage and batch size
    (:func:`fastest_in_rounds`); the fastest timed run is kept. The line
    ``seconds = per_call + n_rows * per_row`` with both parts non-negative is
    fitted to those times by least squares on
    the relative error, so that the one-row time weighs as much as the
    whole-sample one.

    Parameters
    ----------
    source : StageSource
        Anything with ``n_stages``, ``run_stage`` and ``keep_rows`` (see
        :class:`~skadaptive.engine.StageSource`).
    X : array-like or sparse matrix
        Rows to time on; at most ``max_rows`` of them, drawn at random.
    max_rows : int, default=4096
    repeats : int, default=5
    random_state : int, RandomState instance or None
    batch_size : int, default=None
        The rows per call the costs are for: a larger batch is timed too.
    whole : callable, default=None
        ``whole(X_rows)``: the model's own prediction over every exit (an
        early exit's backbone, as its users call it), timed on the same
        batches in the same rounds, for the speed-up over it.

    Returns
    -------
    seconds : Bunch
        ``per_call`` and ``per_row``, each an ndarray of shape (n_stages,):
        a call of stage ``k`` on ``n`` rows takes about
        ``per_call[k] + n * per_row[k]`` seconds. ``batch_sizes`` and
        ``timings`` (n_stages, n_batch_sizes): what the line was fitted to;
        ``rows``: the positions in ``X`` of the rows timed; ``whole_timings``
        (n_batch_sizes,): the times of ``whole``, or None without it.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skadaptive.stages import TreeEnsembleExits, measure_exit_seconds
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> seconds = measure_exit_seconds(TreeEnsembleExits(forest, [5, 20]), X)
    >>> bool(seconds.per_call[1] > seconds.per_row[1])  # a call's set-up dominates
    True
    """
    _check_repeats(repeats)
    X, n_distinct, sample = _timing_sample(X, max_rows, random_state)
    tiled, sizes = timing_batches(n_distinct, batch_size)
    X = _safe_indexing(X, tiled)
    n_rows = len(tiled)
    # The state each stage continues from, for every row, then for the first
    # rows of each batch size.
    states = [None]
    for stage in range(source.n_stages - 1):
        states.append(source.run_stage(stage, X, states[-1])[1])
    calls = []
    for stage in range(source.n_stages):
        for size in sizes:
            if size == n_rows:
                calls.append((stage, X, states[stage]))
                continue
            state = states[stage]
            if state is not None:
                state = source.keep_rows(state, np.arange(n_rows) < size)
            calls.append((stage, _safe_indexing(X, np.arange(size)), state))
    runs = [lambda call=call: source.run_stage(*call) for call in calls]
    n_timed = np.tile(sizes, source.n_stages)
    if whole is not None:
        # In the same rounds as the exits, so that a slow spell of the
        # machine slows both alike.
        batches = [
            X if size == n_rows else _safe_indexing(X, np.arange(size))
            for size in sizes
        ]
        runs += [lambda rows=rows: whole(rows) for rows in batches]
        n_timed = np.concatenate([n_timed, sizes])
    timings = fastest_in_rounds(runs, n_timed, repeats)
    whole_timings = None
    if whole is not None:
        timings, whole_timings = timings[: -len(sizes)], timings[-len(sizes) :]
    timings = timings.reshape(source.n_stages, len(sizes))
    per_call, per_row = fit_call_line(sizes, timings)
    return Bunch(
        per_call=per_call,
        per_row=per_row,
        batch_sizes=sizes,
        timings=timings,
        rows=sample,
        whole_timings=whole_timings,
    )


#: Calls of this many rows or more are timed without a warm-up run and in
#: ``_LARGE_ROUNDS`` rounds at most: their time hardly depends on caches, and
#: they are most of the timing's own cost.
_LARGE_CALL = 1024
_LARGE_ROUNDS = 3


def fastest_in_rounds(runs, n_rows, repeats: int) -> np.ndarray:
    """Fastest time of each callable, timed in ``repeats`` rounds over all.

    Rounds over every call: a slow spell of the machine slows every stage and
    batch size alike, so that their ratios (what a policy trades) hold. A
    small call's timed run follows an untimed one of the same call, as in a
    run of batches through the same stage.
    """
    best = np.full(len(runs), np.inf)
    for j, warm_up in timing_rounds(n_rows, repeats):
        if warm_up:
            runs[j]()
        start = time.perf_counter()
        runs[j]()
        best[j] = min(best[j], time.perf_counter() - start)
    return best


def timing_rounds(n_rows, repeats: int):
    """``(j, warm_up)`` for each timed run, round after round over the calls
    of ``n_rows[j]`` rows: a large call (``_LARGE_CALL`` rows or more) only in
    the first ``_LARGE_ROUNDS`` rounds and without a warm-up, a small one
    after an untimed run of itself (``warm_up``)."""
    for round_ in range(repeats):
        for j, rows in enumerate(n_rows):
            large = rows >= _LARGE_CALL
            if large and round_ >= _LARGE_ROUNDS:
                continue
            yield j, not large


#: A line fitted for calls of ``batch_size`` rows uses the timings of the
#: batch sizes from ``batch_size / _LINE_WINDOW`` up to ``batch_size`` (and the
#: first timed size above it): the calls a stage gets in such a batch when
#: from 1.5 % to all of its rows reach it.
_LINE_WINDOW = 64


def _line_sizes(sizes: np.ndarray, batch_size: int) -> np.ndarray:
    """Positions in ``sizes`` of the timings a line for ``batch_size`` uses:
    those from ``batch_size / 64`` up to the first timed size at or above
    ``batch_size`` (so that a line for 1,000 rows holds at 1,000 rows, not
    stretched from 128), or, where fewer than two, the two nearest (on a log
    scale)."""
    logs = np.log(sizes)
    low, high = np.log(batch_size / _LINE_WINDOW), np.log(batch_size)
    if np.any(sizes >= batch_size):
        high = np.log(sizes[sizes >= batch_size].min())
    distance = np.maximum(low - logs, 0.0) + np.maximum(logs - high, 0.0)
    inside = np.flatnonzero(distance == 0)
    if len(inside) >= 2:
        return inside
    return np.sort(np.argsort(distance, kind="stable")[:2])


def fit_call_line(sizes: np.ndarray, timings: np.ndarray, batch_size=None) -> tuple:
    """Both parts of ``seconds = per_call + n_rows * per_row``, each >= 0.

    Fitted for each row of ``timings`` (n_stages, n_sizes) by least squares on
    the relative error, so that a one-row time weighs as much as a large
    batch's; with one size, all of the time is per row. With ``batch_size``,
    only the timings of calls of ``batch_size / 64`` rows up to the first
    timed size at or above ``batch_size`` (at least the two sizes nearest to
    them) are used: a tree's or a network's time grows more slowly than its
    rows (a call on many rows reuses what the first rows brought into the
    cache), so one line does not hold from one row to thousands, and the
    calls that matter are those a stage gets in batches of ``batch_size``
    rows. Beyond the largest size timed (4,096 or 8,192 rows) the line is
    extended.
    """
    sizes = np.asarray(sizes)
    if batch_size is not None and len(sizes) > 2:
        keep = _line_sizes(sizes, batch_size)
        sizes, timings = sizes[keep], timings[:, keep]
    n_stages = timings.shape[0]
    per_call, per_row = np.zeros(n_stages), timings[:, -1] / sizes[-1]
    if len(sizes) > 1:
        for stage, seconds in enumerate(timings):
            seconds = np.maximum(seconds, 1e-12)
            design = np.column_stack([np.ones(len(sizes)), sizes]) / seconds[:, None]
            (per_call[stage], per_row[stage]), _ = nnls(design, np.ones(len(sizes)))
    return per_call, per_row


def call_line_for(seconds: Bunch, batch_size: int) -> Bunch:
    """A measurement's per-call and per-row parts, fitted again for calls of
    ``batch_size`` rows (see :func:`fit_call_line`) from its ``timings``.

    Parameters
    ----------
    seconds : Bunch
        What :func:`measure_exit_seconds` (or the routing's measurement)
        returned; one without ``timings`` is returned as it is.
    batch_size : int

    Returns
    -------
    seconds : Bunch
        A copy with ``per_call`` and ``per_row`` for that batch size.
    """
    if "timings" not in seconds:
        return seconds
    per_call, per_row = fit_call_line(
        seconds.batch_sizes, seconds.timings, batch_size=batch_size
    )
    return Bunch(**{**seconds, "per_call": per_call, "per_row": per_row})


def _check_repeats(repeats) -> None:
    """Refuse a number of timed runs that would time nothing (every timing
    would stay infinite, and the costs fitted to them would be zero)."""
    if isinstance(repeats, bool) or not isinstance(repeats, Integral) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1; got {repeats!r}.")


def _timing_sample(X, max_rows, random_state):
    """At most ``max_rows`` rows of ``X``, drawn at random in their order,
    their number and their positions in ``X``."""
    n_rows = _num_samples(X)
    rows = np.arange(n_rows)
    if n_rows > max_rows:
        rng = check_random_state(random_state)
        rows = np.sort(rng.choice(n_rows, size=max_rows, replace=False))
        X = _safe_indexing(X, rows)
        n_rows = max_rows
    return X, n_rows, rows


def _fastest(source, stage, X_rows, state, repeats) -> float:
    """Fastest of ``repeats`` timed runs of one stage, after a warm-up run."""
    source.run_stage(stage, X_rows, state)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        source.run_stage(stage, X_rows, state)
        timings.append(time.perf_counter() - start)
    return min(timings)
