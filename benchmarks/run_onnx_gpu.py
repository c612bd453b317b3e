"""Benchmark ONNX stages on a CUDA GPU (onnxruntime-gpu), as run_onnx does on the CPU.

Usage::

    python -m benchmarks.run_onnx_gpu            # full run, writes results
    python -m benchmarks.run_onnx_gpu --quick    # smoke run, writes nothing

The same code as ``benchmarks.run_onnx`` with every session asking for
``["CUDAExecutionProvider", "CPUExecutionProvider"]`` and IO binding for the
multi-exit network (hand-on tensors stay on the GPU). It records the
onnxruntime build, the providers it lists and those each session got, and
writes ``benchmarks/results/onnx_gpu.json`` and ``benchmarks/ONNX_GPU_RESULTS.md``.

It refuses to run (exit status 2, with the reason) where CUDA cannot be used:
the CPU-only onnxruntime, no GPU, or missing CUDA / cuDNN libraries.
"""

from __future__ import annotations

import sys

from . import onnx_bench, run_onnx

EXIT_NO_CUDA = 2


def main(argv=None) -> int:
    """Check that CUDA is usable, then run the shared benchmark on it."""
    problem = onnx_bench.cuda_problem()
    if problem is not None:
        print(
            f"benchmarks.run_onnx_gpu: CUDA is not usable, so there is nothing to "
            f"measure: {problem}. Install onnxruntime-gpu (pip install "
            '"skadaptive[gpu]", without the CPU onnxruntime) on a machine with an '
            "NVIDIA GPU and matching CUDA and cuDNN libraries, or run "
            "python -m benchmarks.run_onnx for the CPU figures.",
            file=sys.stderr,
        )
        return EXIT_NO_CUDA
    run_onnx.main(argv, device="cuda")
    return 0


if __name__ == "__main__":
    sys.exit(main())
