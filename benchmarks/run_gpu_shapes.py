"""Time one ONNX network on a CUDA GPU with the same and with new row counts.

Usage::

    python -m benchmarks.run_gpu_shapes     # prints a table; writes nothing

A cascade's later stages get a different number of rows at almost every
call. For each digits CNN of ``tests/fixtures/onnx`` (tiny, medium, large),
with cuDNN's ``"HEURISTIC"`` (the package's default) and ``"EXHAUSTIVE"``
(onnxruntime's) convolution search, it times ``predict_proba`` on 1,000 rows
20 times (the median), then once on each of 1,001 to 1,020 rows, then on
those counts again. It refuses to run (exit status 2) where CUDA cannot be
used, as ``benchmarks.run_onnx_gpu`` does.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.datasets import load_digits

from skadaptive.stages import OnnxClassifier

from . import onnx_bench
from .run_onnx_gpu import EXIT_NO_CUDA

SEARCHES = ("HEURISTIC", "EXHAUSTIVE")


def _network(name: str, search: str, X) -> OnnxClassifier:
    providers = [
        (onnx_bench.CUDA, {"cudnn_conv_algo_search": search}),
        onnx_bench.CPU,
    ]
    network = OnnxClassifier(
        onnx_bench.model_path(name),
        classes=range(10),
        providers=providers,
        intra_op_num_threads=1,
    )
    return network.fit(X[:10], np.arange(10))


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> int:
    problem = onnx_bench.cuda_problem()
    if problem is not None:
        print(
            f"benchmarks.run_gpu_shapes: CUDA is not usable: {problem}.",
            file=sys.stderr,
        )
        return EXIT_NO_CUDA
    X = load_digits().data
    X = np.tile((X / 16).astype(np.float32), (6, 1))
    print(
        "network | search | same 1,000 rows: median ms | 1,001-1,020 rows, "
        "first call: median ms (max) | those counts again: median ms"
    )
    for name in ("tiny", "medium", "large"):
        for search in SEARCHES:
            network = _network(name, search, X)
            predict = network.predict_proba
            for _ in range(2):
                predict(X[:1000])
            same = [_seconds(lambda f=predict: f(X[:1000])) for _ in range(20)]
            counts = range(1001, 1021)
            new = [_seconds(lambda f=predict, n=n: f(X[:n])) for n in counts]
            again = [_seconds(lambda f=predict, n=n: f(X[:n])) for n in counts]
            print(
                f"{name} | {search} | {1e3 * np.median(same):.2f} | "
                f"{1e3 * np.median(new):.2f} ({1e3 * max(new):.2f}) | "
                f"{1e3 * np.median(again):.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
