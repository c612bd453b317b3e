"""Lazy prediction with Dask on 20 million generated rows, against in-memory predict.

Usage::

    python -m benchmarks.run_dask            # 20 million rows (a few minutes)
    python -m benchmarks.run_dask --quick    # 400,000 rows, writes nothing

Rows: 20 features drawn from 12 Gaussian clusters (4 per class, 3 classes),
made block by block from the block's number alone (numpy's ``default_rng``
seeded with the seed and the block number), so that the 20 million rows (3.0
GiB of float64) are never held whole: each task makes its 262,144 rows (4
routing batches of 65,536) and answers them. The cascade, ``LogisticRegression``
then ``HistGradientBoostingClassifier`` (30 iterations) with costs 1 and 10 and
a budget of 4, is fitted (``cv=3``) on 30,000 rows of the same generator that
no prediction sees.

* **In memory**: ``predict`` on 1 million generated rows held in memory, with
  the machine's default threads and with BLAS/OpenMP limited to 1 thread, and
  the same rows as a dask array computed lazily in this process by Dask's
  synchronous scheduler (fastest of 3 calls after a warm-up).
* **Dask**: a ``distributed.LocalCluster`` of 2 worker processes with 1 thread
  each (Dask's nanny sets ``OMP_NUM_THREADS=1`` and the BLAS equivalents in the
  workers) on the same machine. Timed: generating the rows alone (their sum),
  and ``da.bincount(cascade.predict(X))`` (the predicted class counts: every
  row is generated and answered on the workers; only 3 counts come back), one
  run each after a warm-up on one block.
* **CPU time per row**: of this process (every thread) in memory, and of the
  two worker processes (psutil) with Dask; less disturbed than wall time by
  other processes on a shared machine.
* **Peak memory per worker**: the resident set size (RSS) of each worker
  process, read with psutil every 20 ms from the client process during the
  predict run; the most of each, and each worker's RSS just before the run.

Writes ``benchmarks/results/dask.json`` and ``benchmarks/DASK_RESULTS.md``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.engine._routing import DEFAULT_BATCH_SIZE

from ._tables import (
    cell,
    command_line,
    environment,
    preamble,
    section,
    table,
    write_json,
    write_markdown,
)

HERE = Path(__file__).resolve().parent
N_FEATURES = 20
N_CLASSES = 3
CLUSTERS_PER_CLASS = 4
SEED = 0
#: Rows per generated block: a whole number of routing batches, so that a
#: block's batches are the in-memory call's and the answers are the same bits.
CHUNK_ROWS = 4 * DEFAULT_BATCH_SIZE
#: The block number of the training rows (no predicted block has it).
TRAIN_BLOCK = 2**40


def _clusters(seed: int = SEED):
    """The clusters' centres and classes (the same in every block)."""
    rng = np.random.default_rng(seed)
    n_clusters = N_CLASSES * CLUSTERS_PER_CLASS
    centres = rng.normal(scale=1.4, size=(n_clusters, N_FEATURES))
    return centres, np.repeat(np.arange(N_CLASSES), CLUSTERS_PER_CLASS)


def generated_rows(block: int, n_rows: int, seed: int = SEED):
    """Rows ``X`` and labels ``y`` of block number ``block``, from it alone."""
    centres, classes = _clusters(seed)
    rng = np.random.default_rng([seed, block])
    cluster = rng.integers(0, len(centres), n_rows)
    X = centres[cluster] + rng.standard_normal((n_rows, N_FEATURES))
    return X, classes[cluster]


def _block(block_info=None):
    """One block of the lazy rows (``dask.array.map_blocks`` calls it)."""
    info = block_info[None]
    return generated_rows(info["chunk-location"][0], info["chunk-shape"][0])[0]


def lazy_rows(n_rows: int, chunk_rows: int = CHUNK_ROWS):
    """``n_rows`` generated rows as a dask array of row chunks (nothing made yet)."""
    import dask.array as da

    n_full, rest = divmod(n_rows, chunk_rows)
    chunks = (chunk_rows,) * n_full + ((rest,) if rest else ())
    return da.map_blocks(
        _block,
        chunks=(chunks, (N_FEATURES,)),
        dtype=np.float64,
        meta=np.empty((0, 0)),
    )


def fit_cascade(n_train: int, max_iter: int = 30) -> AdaptiveCascadeClassifier:
    """The cascade, fitted on ``n_train`` generated rows (1 thread: on a busy
    2-core machine OpenMP's second thread makes the fit several times slower)."""
    X, y = generated_rows(TRAIN_BLOCK, n_train)
    with threadpool_limits(limits=1):
        return AdaptiveCascadeClassifier(
            [
                ("lr", LogisticRegression(max_iter=500)),
                (
                    "hgb",
                    HistGradientBoostingClassifier(max_iter=max_iter, random_state=0),
                ),
            ],
            costs=[1.0, 10.0],
            budget=4.0,
            cv=3,
            random_state=0,
        ).fit(X, y)


def _best_seconds(call, repeats: int = 3) -> dict:
    """Wall and CPU seconds (this process, every thread) of the fastest of
    ``repeats`` calls after a warm-up."""
    call()
    best = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        timing = {
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
        }
        if best is None or timing["wall"] < best["wall"]:
            best = timing
    return best


class _Workers:
    """The worker processes during a run: wall time, their CPU time, and the
    peak of each one's RSS (sampled in a thread every ``interval`` s)."""

    def __init__(self, pids: dict, interval: float = 0.02):
        import psutil

        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._interval = interval

    def _cpu(self) -> float:
        unique = {p.pid: p for p in self._processes.values()}  # threads: one
        times = [p.cpu_times() for p in unique.values()]
        return sum(t.user + t.system for t in times)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, process in self._processes.items():
                self.peak[name] = max(self.peak[name], process.memory_info().rss)
            self._stop.wait(self._interval)

    def run(self, call):
        """``call()``'s value; ``wall``, ``cpu``, ``before`` and ``peak`` are set."""
        self.before = {n: p.memory_info().rss for n, p in self._processes.items()}
        self.peak = dict(self.before)
        self._stop = threading.Event()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        cpu, wall = self._cpu(), time.perf_counter()
        try:
            value = call()
        finally:
            self.wall = time.perf_counter() - wall
            self.cpu = self._cpu() - cpu
            self._stop.set()
            thread.join()
        return value


def run(quick: bool = False, n_rows: int | None = None, processes: bool = True) -> dict:
    """Measure (nothing is written).

    ``n_rows`` overrides the number of rows; ``processes=False`` runs the
    workers as threads of this process (a smoke test: no worker imports, but
    the memory and CPU time measured are this whole process's).
    """
    import dask
    import dask.array as da
    import distributed

    begin = time.perf_counter()
    if n_rows is None:
        n_rows = 400_000 if quick else 20_000_000
    n_memory = 50_000 if quick else 1_000_000
    chunk_rows = DEFAULT_BATCH_SIZE if quick else CHUNK_ROWS
    cascade = fit_cascade(3_000 if quick else 30_000, max_iter=10 if quick else 30)
    print("cascade fitted", flush=True)

    X_memory, _ = generated_rows(0, n_memory)
    exit_rates = np.bincount(cascade.predict_exit(X_memory), minlength=2) / n_memory
    repeats = 1 if quick else 3
    in_memory = {"default_threads": _best_seconds(lambda: cascade.predict(X_memory))}
    lazy_memory = da.from_array(X_memory, chunks=(chunk_rows, N_FEATURES))
    with threadpool_limits(limits=1):
        in_memory["1_thread"] = _best_seconds(
            lambda: cascade.predict(X_memory), repeats
        )
        # The lazy path on the same rows, in this process: its own cost.
        in_memory["lazy_sync"] = _best_seconds(
            lambda: cascade.predict(lazy_memory).compute(scheduler="sync"), repeats
        )
    print(f"in memory: {in_memory}", flush=True)

    X = lazy_rows(n_rows, chunk_rows)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=processes,
            # threads talk in-process; processes over this machine's loopback
            **({"host": "127.0.0.1"} if processes else {}),
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # Warm-up (imports in the workers), and a check that the lazy answers
        # of the first two blocks are the in-memory ones.
        lazy_head = cascade.predict_proba(X[: 2 * chunk_rows]).compute()
        head = np.concatenate([generated_rows(b, chunk_rows)[0] for b in range(2)])
        same_as_memory = bool(
            np.array_equal(lazy_head, cascade.predict_proba(head[: len(lazy_head)]))
        )
        workers = _Workers(client.run(os.getpid))
        workers.run(lambda: float(X.sum().compute()))
        generate = {"wall": workers.wall, "cpu": workers.cpu}
        print(f"generated: {generate}", flush=True)
        predictions = da.bincount(cascade.predict(X), minlength=N_CLASSES)
        counts = workers.run(lambda: dask.compute(predictions)[0])
        predict = {"wall": workers.wall, "cpu": workers.cpu}
        print(f"generated and predicted: {predict}", flush=True)
        memory = {
            name: {"before_bytes": workers.before[name], "peak_bytes": peak}
            for name, peak in sorted(workers.peak.items())
        }
    return {
        "command": "python -m benchmarks.run_dask" + (" --quick" if quick else ""),
        "n_rows": n_rows,
        "worker_processes": processes,
        "n_features": N_FEATURES,
        "chunk_rows": chunk_rows,
        "n_chunks": len(X.chunks[0]),
        "x_bytes": n_rows * N_FEATURES * 8,
        "n_memory_rows": n_memory,
        "exit_rates": exit_rates,
        "class_counts": counts,
        "lazy_equals_in_memory": same_as_memory,
        "seconds": {
            "in_memory": in_memory,
            "dask_generate": generate,
            "dask_generate_and_predict": predict,
        },
        "workers": memory,
        "environment": environment(
            dask=dask.__version__, distributed=distributed.__version__
        ),
        "total_seconds": time.perf_counter() - begin,
    }


def markdown(results: dict) -> str:
    seconds = results["seconds"]
    n_rows, n_memory = results["n_rows"], results["n_memory_rows"]
    reference = seconds["in_memory"]["1_thread"]
    generate = seconds["dask_generate"]
    both = seconds["dask_generate_and_predict"]
    predict_only = {key: both[key] - generate[key] for key in ("wall", "cpu")}

    def row(what, rows, timing):
        cpu_per_row = timing["cpu"] / rows
        return {
            "run": what,
            "rows": f"{rows:,}",
            "rows/s": f"{rows / timing['wall']:,.0f}",
            "us per row": cell(1e6 * timing["wall"] / rows),
            "CPU us per row": cell(1e6 * cpu_per_row),
            "CPU per row / in memory, 1 thread": (
                f"{cpu_per_row / (reference['cpu'] / n_memory):.2f}x"
            ),
        }

    throughput = table(
        [
            row(
                "in memory, default threads",
                n_memory,
                seconds["in_memory"]["default_threads"],
            ),
            row("in memory, 1 thread", n_memory, reference),
            row(
                "lazy, same rows, synchronous scheduler, 1 thread",
                n_memory,
                seconds["in_memory"]["lazy_sync"],
            ),
            row("Dask, 2 workers: generate rows only", n_rows, generate),
            row("Dask, 2 workers: generate and predict", n_rows, both),
            row("Dask, 2 workers: predict (less generating)", n_rows, predict_only),
        ]
    )
    memory = table(
        [
            {
                "worker": name,
                "RSS before (MiB)": cell(value["before_bytes"] / 2**20),
                "peak RSS (MiB)": cell(value["peak_bytes"] / 2**20),
                "peak - before (MiB)": cell(
                    (value["peak_bytes"] - value["before_bytes"]) / 2**20
                ),
            }
            for name, value in results["workers"].items()
        ]
    )
    env = results["environment"]
    chunk_mib = results["chunk_rows"] * results["n_features"] * 8 / 2**20
    rates = "/".join(f"{r:.1%}" for r in results["exit_rates"])
    return "\n".join(
        preamble(
            "Lazy prediction with Dask",
            results,
            f"Machine: {env['cpu_count']} cores ({env['processor']}), "
            f"{env['platform']}, Python {env['python']}, numpy {env['numpy']}, "
            f"scikit-learn {env['scikit-learn']}, dask {env['dask']}, "
            f"distributed {env['distributed']}, skadaptive {env['skadaptive']}. "
            "Cluster: distributed.LocalCluster(n_workers=2, threads_per_worker=1, "
            f"processes={results['worker_processes']}) on the same machine. Other "
            "processes may have shared the machine; the Dask times are of one "
            "run each.",
        )
        + section(
            f"Throughput: {n_rows:,} rows x {results['n_features']} features "
            f"({results['x_bytes'] / 2**30:.1f} GiB, never held whole; "
            f"{results['n_chunks']} blocks of {results['chunk_rows']:,} rows, "
            f"{chunk_mib:.0f} MiB each)",
            throughput,
            "Exit rates (lr/hgb) on the in-memory rows: "
            f"{rates} (a budget of 4 of the full cost 11 per row). The lazy "
            "answers of the first two blocks equal the in-memory ones bit for "
            f"bit: {results['lazy_equals_in_memory']}.",
            "The synchronous run is the lazy path (a dask array of the in-memory "
            "rows, in blocks, computed in this process): what it costs itself. "
            "The Dask runs make every row from its block's seed on the workers "
            "and return only the 3 class counts; the in-memory runs answer rows "
            "already in memory. 'predict (less generating)' takes the "
            "generating run's times off the predict run's: prediction alone. "
            "CPU us per row: the CPU time (user and system) of the processes "
            "doing the work per row -- in memory this process, every thread; "
            "with Dask the two worker processes (psutil) -- which other "
            "processes on the machine disturb less than the wall time.",
        )
        + section(
            "Peak memory per worker",
            memory,
            "RSS of each worker process (psutil, sampled every 20 ms from the "
            "client during the predict run), and just before it: the Python "
            "process with numpy, scikit-learn and Dask loaded and the fitted "
            "cascade, then the rows of the block it is making and answering "
            f"({chunk_mib:.0f} MiB of features each) and the routing's arrays.",
        )
    )


def main(argv=None) -> None:
    args = command_line(__doc__).parse_args(argv)
    results = run(quick=args.quick)
    text = markdown(results)
    print(text)
    if not args.quick:
        write_json(HERE / "results" / "dask.json", results)
        write_markdown(HERE / "DASK_RESULTS.md", text + "\n")


if __name__ == "__main__":
    main()
