"""ONNX stages benchmark: the measurements, shared by the CPU and GPU runs.

Three adaptive models over the CNNs of ``tests/fixtures/onnx`` (trained on the
digits training split by ``scripts/train_onnx_fixtures.py``):

- ``cascade``: ``AdaptiveCascadeClassifier`` of the frozen tiny -> medium ->
  large networks, ``costs="auto"`` (seconds per row); full model: ``large``.
- ``multi_exit_macs``: ``EarlyExitClassifier`` over the split multi-exit network
  (``OnnxMultiExit``) with its default costs, multiply-accumulates per segment.
- ``multi_exit_auto``: the same network with ``costs="auto"``.

The full model of the multi-exit network is the *unsplit* graph in one
onnxruntime session (``OnnxClassifier`` on its ``"logits"`` output), which is
what one would deploy without early exit (it also computes the two small exit
heads: 2,560 of its 945,792 multiply-accumulates per row).

The digits test split (540 rows, never seen by the networks) is split in two
stratified halves: the policy is learned on one, the operating point is chosen
and accuracy is reported on the other. Timings tile the evaluation rows.

Everything takes a ``device`` (``"cpu"`` or ``"cuda"``): the providers every
session gets, and IO binding for the multi-exit network on CUDA. The CPU run
goes through exactly the code the GPU run does.
"""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.stages import OnnxClassifier, OnnxMultiExit
from skadaptive.stages._multi_exit import exit_probas

from . import _tables
from .frontier import Point, cheapest_within_loss, speed_up
from .timing import tile_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDERS = {"cpu": [CPU], "cuda": [CUDA, CPU]}
CLASSES = list(range(10))
CASCADE_MODELS = ("tiny", "medium", "large")
SETUPS = ("cascade", "multi_exit_macs", "multi_exit_auto")
BATCH_SIZES = (1, 64, 1024)


def fixture_info() -> dict:
    """``tests/fixtures/onnx/fixtures.json``: what each network is."""
    return json.loads((FIXTURES / "fixtures.json").read_text())


def model_path(name: str) -> Path:
    return FIXTURES / fixture_info()["models"][name]["file"]


def exit_outputs() -> list[str]:
    return list(fixture_info()["models"]["multi_exit"]["exit_outputs"])


def configuration(quick: bool, device: str = "cpu") -> dict:
    """What the run does; ``quick`` is a smoke run (few rows, 2 repeats)."""
    if device not in PROVIDERS:
        raise ValueError(f"device must be one of {list(PROVIDERS)}; got {device!r}.")
    config = {
        "device": device,
        "providers": PROVIDERS[device],
        "io_binding": device == "cuda",
        "intra_op_num_threads": 1,
        "batch_sizes": list(BATCH_SIZES),
        "cascade_models": list(CASCADE_MODELS),
        "exit_outputs": exit_outputs(),
        # Rows timed at each batch size: the evaluation rows tiled.
        "timing_rows": {"1": 1080, "64": 8640, "1024": 8640},
        "repeats": 7,
        "loss": 0.005,
        "fallback_loss": 0.01,
        "default_threads_batch_size": 1024,
        "split_tolerance": 1e-5,
        "wall_clock_target": 0.9,
        # Measured costs are for calls of this many rows (the target's batch
        # size): each stage's per-call part is spread over this many rows.
        "cost_batch_size": max(BATCH_SIZES),
        "random_state": 0,
    }
    if quick:
        config.update(
            timing_rows={"1": 32, "64": 270, "1024": 1080},
            repeats=2,
            default_threads_batch_size=None,
        )
    return config


# ------------------------------------------------------------------- data
@dataclass
class DigitsSplit:
    """The digits test split, halved into policy rows and evaluation rows."""

    X_policy: np.ndarray
    y_policy: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def describe(self) -> dict:
        return {
            "dataset": "sklearn.datasets.load_digits, X / 16 as float32 (flat 64 "
            "values per row; the networks reshape to 1 x 8 x 8)",
            "test_split": "train_test_split(X, y, test_size=0.3, stratify=y, "
            "random_state=0): the rows the networks were not trained on",
            "halves": "train_test_split(test rows, test_size=0.5, stratify=y_test, "
            "random_state=0): policy rows / evaluation rows",
            "n_test": int(len(self.y_test)),
            "n_policy": int(len(self.y_policy)),
            "n_eval": int(len(self.y_eval)),
            "points_per_eval_row": 100.0 / len(self.y_eval),
        }


def load_split(random_state: int = 0) -> DigitsSplit:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    _, X_test, _, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    policy, evaluation = train_test_split(
        np.arange(len(y_test)),
        test_size=0.5,
        stratify=y_test,
        random_state=random_state,
    )
    policy, evaluation = np.sort(policy), np.sort(evaluation)
    return DigitsSplit(
        X_test[policy],
        y_test[policy],
        X_test[evaluation],
        y_test[evaluation],
        X_test,
        y_test,
    )


# ----------------------------------------------------------------- models
def onnx_classifier(name, providers, threads, *, output=None, batch_size=None):
    """A fixture network as an ``OnnxClassifier``."""
    return OnnxClassifier(
        model_path(name),
        classes=CLASSES,
        output=output,
        providers=list(providers),
        batch_size=batch_size,
        intra_op_num_threads=threads,
    )


def multi_exit_source(providers, threads, io_binding) -> OnnxMultiExit:
    """The multi-exit network split into one session per exit."""
    return OnnxMultiExit(
        model_path("multi_exit"),
        exit_outputs=exit_outputs(),
        classes=CLASSES,
        providers=list(providers),
        io_binding=io_binding,
        intra_op_num_threads=threads,
    )


def full_model(setup: str, providers, threads, batch_size=None) -> OnnxClassifier:
    """The model an adaptive one is compared with, run on every row."""
    if setup == "cascade":
        return onnx_classifier("large", providers, threads, batch_size=batch_size)
    return onnx_classifier(
        "multi_exit", providers, threads, output="logits", batch_size=batch_size
    )


def build(setup: str, config: dict, threads, costs="default"):
    """Unfitted adaptive estimator; ``costs="default"`` is the setup's own."""
    providers = config["providers"]
    random_state = config["random_state"]
    if setup == "cascade":
        stages = [
            (name, FrozenEstimator(onnx_classifier(name, providers, threads)))
            for name in CASCADE_MODELS
        ]
        costs = "auto" if isinstance(costs, str) else costs
        return AdaptiveCascadeClassifier(
            stages,
            costs=costs,
            cost_batch_size=config["cost_batch_size"],
            random_state=random_state,
        )
    source = multi_exit_source(providers, threads, config["io_binding"])
    if isinstance(costs, str):
        costs = None if setup == "multi_exit_macs" else "auto"
    return EarlyExitClassifier(
        source,
        costs=costs,
        cost_batch_size=config["cost_batch_size"],
        random_state=random_state,
    )


def session_providers(estimator) -> list[list[str]]:
    """The execution providers each onnxruntime session of ``estimator`` got."""
    if isinstance(estimator, AdaptiveCascadeClassifier):
        return [list(stage.estimator.providers_) for stage in estimator.estimators_]
    return [list(estimator.source_.providers_)]


def check_providers(estimator, config: dict) -> list[list[str]]:
    """Fail when a session did not get the device's first provider."""
    got = session_providers(estimator)
    wanted = config["providers"][0]
    for providers in got:
        if not providers or providers[0] != wanted:
            raise RuntimeError(
                f"A session got providers {providers}, not {wanted} first: the "
                f"{config['device']} run would not measure what it says."
            )
    return got


# -------------------------------------------------------------- operating
def _points(estimator, test: dict) -> list[Point]:
    frontier = estimator.frontier_
    return [
        Point(
            f"cost_weight={w:.4g}",
            float(test["accuracy"][i]),
            float(test["normalized_cost"][i]),
            float(frontier["accuracy"][i]),
            float(frontier["normalized_cost"][i]),
            np.round(test["exit_rates"][i], 4).tolist(),
            {"cost_weight": float(w)},
        )
        for i, w in enumerate(frontier["cost_weight"])
    ]


def choose_point(points, reference, loss, fallback_loss):
    """Cheapest point within ``loss`` of ``reference``, else within the fallback."""
    for allowed in (loss, fallback_loss):
        point = cheapest_within_loss(points, reference, allowed)
        if point is not None:
            return point, allowed
    return max(points, key=lambda p: (p.accuracy, -p.cost)), None


def _accuracy(estimator, proba, y) -> float:
    return float(np.mean(estimator.classes_[np.argmax(proba, axis=1)] == y))


def _offline_exits(estimator, X) -> np.ndarray:
    """Exits the policy gives each row from every stage's probabilities."""
    if isinstance(estimator, AdaptiveCascadeClassifier):
        probas = [stage.predict_proba(X) for stage in estimator.estimators_]
    else:
        probas = exit_probas(estimator.source_, X)
    return estimator.policy_.exit_stage(probas)


def fit_setup(setup: str, split: DigitsSplit, config: dict) -> dict:
    """Fit on the policy rows, choose the operating point on the evaluation rows.

    Returns the JSON summary and, under ``"_adaptive"``, the estimator at the
    chosen point (``with_policy`` of the fitted one, no stage refitted).
    """
    start = time.perf_counter()
    estimator = build(setup, config, config["intra_op_num_threads"])
    estimator.fit(split.X_policy, split.y_policy)
    fit_seconds = time.perf_counter() - start
    providers = check_providers(estimator, config)
    test = estimator.evaluate_frontier(split.X_eval, split.y_eval)
    total = float(estimator.cumulative_costs_[-1])
    # The full model: the largest stage alone (cascade) or every exit (network).
    # The full model alone: without the routing work that ``costs_`` adds to
    # a stage's own time (the largest stage, or every segment of the network).
    reference_cost = (
        float(estimator._alone_seconds(estimator.cost_batch_size_)[-1]) / total
    )
    reference = float(test["stage_accuracies"][-1])
    held_out_reference = float(estimator.stage_accuracies_[-1])
    points = _points(estimator, test)
    chosen, allowed = choose_point(
        points, reference, config["loss"], config["fallback_loss"]
    )
    held_chosen = cheapest_within_loss(
        points, held_out_reference, config["loss"], held_out=True
    )
    adaptive = estimator.with_policy(cost_weight=chosen.params["cost_weight"])
    routed = adaptive.route(split.X_eval)
    routed_accuracy = _accuracy(adaptive, routed.proba, split.y_eval)
    routing_matches = bool(
        np.array_equal(routed.exit_stage, _offline_exits(adaptive, split.X_eval))
        and np.isclose(routed_accuracy, chosen.accuracy, rtol=0, atol=1e-12)
        and np.isclose(
            adaptive._average_cost(routed.exit_stage) / total, chosen.cost, rtol=1e-9
        )
    )
    return {
        "setup": setup,
        "cost_unit": estimator._cost_unit(),
        "costs": estimator.costs_.tolist(),
        "cumulative_costs": estimator.cumulative_costs_.tolist(),
        "full_model_cost": reference_cost * total,
        "stage_names": list(estimator._stage_names()),
        "stage_eval_accuracies": np.asarray(test["stage_accuracies"]).tolist(),
        "stage_held_out_accuracies": estimator.stage_accuracies_.tolist(),
        "reference_accuracy": reference,
        "held_out_reference_accuracy": held_out_reference,
        "oracle_accuracy": float(test["oracle_accuracy"]),
        "oracle_cost": float(test["oracle_cost"]),
        "session_providers": providers,
        "fit_seconds": fit_seconds,
        "chosen": {
            **chosen.to_dict(),
            "loss_allowed": allowed,
            "accuracy_loss_points": 100 * (reference - chosen.accuracy),
            "expected_cost": chosen.cost * total,
            "expected_speed_up": speed_up(chosen, reference_cost),
        },
        "held_out_chosen": None
        if held_chosen is None
        else {
            **held_chosen.to_dict(),
            "accuracy_loss_points": 100 * (reference - held_chosen.accuracy),
            "expected_speed_up": speed_up(held_chosen, reference_cost),
        },
        "routed_eval_accuracy": routed_accuracy,
        "routing_matches_offline": routing_matches,
        "frontier": [p.to_dict() for p in points],
        "_adaptive": adaptive,
    }


# ----------------------------------------------------------------- timing
def fastest(funcs: dict, repeats: int) -> dict:
    """Fastest of ``repeats`` runs of each callable, after one warm-up run each.

    The callables take turns (one run of each per round) so that a slow spell
    of a shared machine hits all of them alike; noise only ever adds time, so
    the minimum is kept (as ``benchmarks.timing.best_time`` does).
    """
    for func in funcs.values():
        func()
    best = dict.fromkeys(funcs, np.inf)
    for _ in range(repeats):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _segment_runs(source, X_rows, batch_size: int) -> list:
    """Callables running segment k alone on every batch, from the states before.

    The states each segment starts from are computed once, up front.
    """
    chunks = [X_rows[s : s + batch_size] for s in range(0, len(X_rows), batch_size)]
    states = [None] * len(chunks)
    runs = []
    for stage in range(source.n_stages):
        before = list(states)

        def run(stage=stage, before=before):
            for chunk, state in zip(chunks, before):
                source.run_stage(stage, chunk, state)

        runs.append(run)
        states = [source.run_stage(stage, c, s)[1] for c, s in zip(chunks, before)]
    return runs


def _split_no_exit(source, X_rows, batch_size):
    """Every row through every segment of the split network (no early exit)."""

    def run():
        for s in range(0, len(X_rows), batch_size):
            exit_probas(source, X_rows[s : s + batch_size])

    return run


def _stage_time_seconds(stage_seconds, exits, n_stages) -> float:
    """Seconds per row predicted from each stage's own time at this batch size.

    Stage k (a cascade stage, or a segment's increment) runs on the rows that
    reach it, at the time per row measured running it alone on all the rows in
    batches of this size. Unlike ``costs_``, this includes each call's fixed
    overhead at this batch size, but not routing (policy, row selection).
    """
    rates = np.bincount(exits, minlength=n_stages) / len(exits)
    reach = 1 - np.concatenate([[0.0], np.cumsum(rates)[:-1]])
    return float(reach @ np.asarray(stage_seconds))


def time_batch(fitted: dict, split: DigitsSplit, config: dict, batch_size: int):
    """Wall clock of every adaptive model and its full model at one batch size."""
    n_rows = config["timing_rows"][str(batch_size)]
    X_rows = tile_rows(split.X_eval, n_rows)[:n_rows]
    eval_index = np.arange(len(X_rows)) % len(split.X_eval)
    y_rows = split.y_eval[eval_index]
    threads, providers = config["intra_op_num_threads"], config["providers"]
    repeats = config["repeats"]
    out = {
        "batch_size": batch_size,
        "n_rows": int(len(X_rows)),
        "tiled": bool(len(X_rows) != len(split.X_eval)),
        "setups": {},
        "routed": {},
    }

    # The cascade: large alone, the cascade, and each stage alone.
    cascade = fitted["cascade"]["_adaptive"].set_params(batch_size=batch_size)
    alone = {
        name: onnx_classifier(name, providers, threads, batch_size=batch_size)
        for name in CASCADE_MODELS
    }
    funcs = {"full": lambda: alone["large"].predict_proba(X_rows)}
    funcs["adaptive"] = lambda: cascade.predict_proba(X_rows)
    for name in CASCADE_MODELS[:-1]:
        funcs[name] = lambda m=alone[name]: m.predict_proba(X_rows)
    seconds = fastest(funcs, repeats)
    seconds["large"] = seconds["full"]
    stage_seconds = [seconds[name] / len(X_rows) for name in CASCADE_MODELS]
    out["setups"]["cascade"], _ = _timed(
        fitted["cascade"], cascade, X_rows, y_rows, seconds, stage_seconds
    )

    # The multi-exit network: unsplit, both policies, split without exits,
    # and each segment alone.
    full = full_model("multi_exit_macs", providers, threads, batch_size)
    models = {
        s: fitted[s]["_adaptive"].set_params(batch_size=batch_size)
        for s in ("multi_exit_macs", "multi_exit_auto")
    }
    source = models["multi_exit_macs"].source_
    funcs = {"full": lambda: full.predict_proba(X_rows)}
    for setup, model in models.items():
        funcs[setup] = lambda m=model: m.predict_proba(X_rows)
    funcs["split_no_exit"] = _split_no_exit(source, X_rows, batch_size)
    for k, run in enumerate(_segment_runs(source, X_rows, batch_size)):
        funcs[f"segment_{k}"] = run
    seconds = fastest(funcs, repeats)
    segment_seconds = [
        seconds[f"segment_{k}"] / len(X_rows) for k in range(source.n_stages)
    ]
    for setup, model in models.items():
        timed = dict(seconds, adaptive=seconds[setup])
        out["setups"][setup], routed = _timed(
            fitted[setup], model, X_rows, y_rows, timed, segment_seconds
        )
        out["setups"][setup]["split_no_exit_seconds"] = seconds["split_no_exit"]
        out["routed"][setup] = (routed, eval_index)
    return out


def _timed(summary, model, X_rows, y_rows, seconds, stage_seconds):
    """The timing summary of one adaptive model, and its routing of the rows."""
    routed = model.route(X_rows)
    n_stages = len(summary["costs"])
    exits = routed.exit_stage
    reference_cost = summary["full_model_cost"]
    expected = reference_cost / model._average_cost(routed.exit_stage)
    measured = seconds["full"] / seconds["adaptive"]
    n_rows = len(X_rows)
    predicted = _stage_time_seconds(stage_seconds, exits, n_stages)
    return {
        "full_seconds": seconds["full"],
        "adaptive_seconds": seconds["adaptive"],
        "full_us_per_row": seconds["full"] / len(X_rows) * 1e6,
        "adaptive_us_per_row": seconds["adaptive"] / len(X_rows) * 1e6,
        "stage_us_per_row": [s * 1e6 for s in stage_seconds],
        "measured_speed_up": measured,
        "expected_speed_up": expected,
        "ratio": measured / expected,
        "stage_time_speed_up": seconds["full"] / n_rows / predicted,
        "routing_overhead_us_per_row": (seconds["adaptive"] / n_rows - predicted) * 1e6,
        "exit_rates": (np.bincount(exits, minlength=n_stages) / len(exits))
        .round(4)
        .tolist(),
        "accuracy_on_timed_rows": _accuracy(model, routed.proba, y_rows),
    }, routed


def time_default_threads(fitted: dict, split: DigitsSplit, config: dict) -> dict:
    """One comparison with onnxruntime's default thread pools, every session.

    Each estimator is refitted on the same policy rows with its costs fixed to
    the single-threaded run's ``costs_``, so it learns the same policy; its
    exits on the evaluation rows are checked to be the same.
    """
    batch_size = config["default_threads_batch_size"]
    n_rows = config["timing_rows"][str(batch_size)]
    X_rows = tile_rows(split.X_eval, n_rows)[:n_rows]
    providers = config["providers"]
    results = {"batch_size": batch_size, "n_rows": int(len(X_rows)), "setups": {}}
    fulls = {
        "cascade": full_model("cascade", providers, None, batch_size),
        "multi_exit": full_model("multi_exit_macs", providers, None, batch_size),
    }
    funcs = {
        "full_cascade": lambda: fulls["cascade"].predict_proba(X_rows),
        "full_multi_exit": lambda: fulls["multi_exit"].predict_proba(X_rows),
    }
    models = {}
    for setup in SETUPS:
        summary = fitted[setup]
        estimator = build(setup, config, None, costs=np.asarray(summary["costs"]))
        estimator.set_params(batch_size=batch_size)
        estimator.fit(split.X_policy, split.y_policy)
        model = estimator.with_policy(
            cost_weight=summary["chosen"]["params"]["cost_weight"]
        )
        same = np.array_equal(
            model.predict_exit(split.X_eval),
            summary["_adaptive"].predict_exit(split.X_eval),
        )
        models[setup] = (model, same)
        funcs[setup] = lambda m=model: m.predict_proba(X_rows)
    seconds = fastest(funcs, config["repeats"])
    for setup, (model, same) in models.items():
        full = seconds["full_cascade" if setup == "cascade" else "full_multi_exit"]
        routed_cost = model._average_cost(model.predict_exit(X_rows))
        expected = fitted[setup]["full_model_cost"] / routed_cost
        measured = full / seconds[setup]
        results["setups"][setup] = {
            "full_seconds": full,
            "adaptive_seconds": seconds[setup],
            "measured_speed_up": measured,
            "expected_speed_up": expected,
            "ratio": measured / expected,
            "same_exits_as_single_thread": bool(same),
            "session_providers": session_providers(model),
        }
    return results


# ------------------------------------------------------------ split check
def split_check(fitted: dict, split: DigitsSplit, batches: list, config: dict):
    """Split network versus the unsplit graph, row by row.

    Every exit of every test row (540) with and without IO binding, and every
    routed row of the timed runs (its answering exit's probabilities against
    the unsplit graph's output at that exit, softmaxed, for the same row).
    """
    providers, threads = config["providers"], config["intra_op_num_threads"]
    X_all = split.X_test
    checks = {}
    for io_binding in (False, True):
        source = multi_exit_source(providers, threads, io_binding)
        unsplit = source.run_unsplit(X_all)
        got = exit_probas(source, X_all)
        checks[f"all_exits_all_test_rows_io_binding_{io_binding}"] = {
            "n_rows": int(len(X_all)),
            "max_abs_difference": float(
                max(np.abs(g - u).max() for g, u in zip(got, unsplit))
            ),
        }
    for setup in ("multi_exit_macs", "multi_exit_auto"):
        source = fitted[setup]["_adaptive"].source_
        unsplit = np.stack(source.run_unsplit(split.X_eval))
        for batch in batches:
            routed, eval_index = batch["routed"][setup]
            want = unsplit[routed.exit_stage, eval_index]
            checks[f"routed_{setup}_batch_{batch['batch_size']}"] = {
                "n_rows": int(len(eval_index)),
                "max_abs_difference": float(np.abs(routed.proba - want).max()),
            }
    worst = max(c["max_abs_difference"] for c in checks.values())
    return {
        "compared": "probabilities (softmax of the exit outputs), float64",
        "io_binding_in_timed_runs": config["io_binding"],
        "checks": checks,
        "max_abs_difference": worst,
        "n_rows_checked": int(sum(c["n_rows"] for c in checks.values())),
        "tolerance": config["split_tolerance"],
        "met": bool(worst <= config["split_tolerance"]),
    }


# ---------------------------------------------------------------- overall
def cuda_problem() -> str | None:
    """Why the CUDA execution provider cannot be used here, or None if it can."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    available = ort.get_available_providers()
    if CUDA not in available:
        return (
            f"onnxruntime {ort.__version__} lists providers {available}, without "
            f"{CUDA} (the CPU-only onnxruntime package, or no onnxruntime-gpu)"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            model_path("tiny").read_bytes(), options, providers=[CUDA, CPU]
        )
    except Exception as exc:  # onnxruntime raises plain Exceptions
        return f"onnxruntime could not create a session with {CUDA}: {exc}"
    got = session.get_providers()
    if not got or got[0] != CUDA:
        return (
            f"onnxruntime {ort.__version__} lists {CUDA}, but a session asking for "
            f"it got {got} (CUDA or cuDNN libraries missing, or no GPU)"
        )
    return None


def gpu_name() -> str | None:
    """The GPU's name and driver from ``nvidia-smi``, where there is one."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return "; ".join(lines) if done.returncode == 0 and lines else None


def environment(config: dict) -> dict:
    import onnx
    import onnxruntime as ort

    problem = cuda_problem()
    return _tables.environment(
        onnxruntime=ort.__version__,
        onnxruntime_device=ort.get_device(),
        onnx=onnx.__version__,
        available_providers=list(ort.get_available_providers()),
        requested_providers=list(config["providers"]),
        cuda_usable=problem is None,
        cuda_problem=problem,
        gpu=gpu_name() if config["device"] == "cuda" else None,
        threads=f"onnxruntime intra_op_num_threads="
        f"{config['intra_op_num_threads']} in every session (one table: "
        "onnxruntime's defaults); numpy's BLAS limited to 1 thread",
    )


def run(quick: bool = False, device: str = "cpu", command: str = "") -> dict:
    """Run the whole ONNX benchmark and return its results (nothing is written)."""
    start = time.perf_counter()
    config = configuration(quick, device)
    results = {"command": command, "quick": quick, "device": device}
    results["config"] = config
    results["environment"] = environment(config)
    split = load_split(config["random_state"])
    results["data"] = split.describe()
    results["fixtures"] = {
        name: {
            "file": info["file"],
            "macs_per_row": info.get("macs_per_row"),
            "fixture_test_accuracy": info.get("test_accuracy"),
        }
        for name, info in fixture_info()["models"].items()
    }
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # A session that silently fell back to another provider is an error.
        warnings.filterwarnings("error", message=".*asked for execution providers")
        fitted = {setup: fit_setup(setup, split, config) for setup in SETUPS}
        batches = []
        for batch_size in config["batch_sizes"]:
            print(f"== batch size {batch_size}", flush=True)
            batches.append(time_batch(fitted, split, config, batch_size))
        results["split_check"] = split_check(fitted, split, batches, config)
        if config["default_threads_batch_size"] is not None:
            print("== default onnxruntime threads", flush=True)
            results["default_threads"] = time_default_threads(fitted, split, config)
        else:
            results["default_threads"] = None
    results["setups"] = {
        setup: {k: v for k, v in summary.items() if not k.startswith("_")}
        for setup, summary in fitted.items()
    }
    results["batches"] = [
        {k: v for k, v in batch.items() if k != "routed"} for batch in batches
    ]
    results["total_seconds"] = time.perf_counter() - start
    results["targets"] = targets(results)
    return results


def targets(results: dict) -> dict:
    """The issue's targets, with the numbers behind them."""
    config = results["config"]
    largest = max(config["batch_sizes"])
    batch = next(b for b in results["batches"] if b["batch_size"] == largest)
    cascade = batch["setups"]["cascade"]
    chosen = results["setups"]["cascade"]["chosen"]
    within = chosen["loss_allowed"] == config["loss"]
    return {
        "wall_clock": {
            "met": bool(within and cascade["ratio"] >= config["wall_clock_target"]),
            "device": results["device"],
            "batch_size": largest,
            "ratio": cascade["ratio"],
            "measured_speed_up": cascade["measured_speed_up"],
            "expected_speed_up": cascade["expected_speed_up"],
            "accuracy_loss_points": chosen["accuracy_loss_points"],
            "point_within_loss": bool(within),
            "required_ratio": config["wall_clock_target"],
            "multi_exit_ratios": {
                setup: batch["setups"][setup]["ratio"]
                for setup in ("multi_exit_macs", "multi_exit_auto")
            },
        },
        "split_equals_unsplit": {
            "met": results["split_check"]["met"],
            "max_abs_difference": results["split_check"]["max_abs_difference"],
            "tolerance": results["split_check"]["tolerance"],
            "n_rows_checked": results["split_check"]["n_rows_checked"],
        },
    }
