"""Benchmark ONNX stages on the CPU: a cascade of CNNs and a split multi-exit CNN.

Usage::

    python -m benchmarks.run_onnx            # full run, writes results
    python -m benchmarks.run_onnx --quick    # smoke run, writes nothing

Accuracy and expected versus measured speed-up of an ``AdaptiveCascadeClassifier``
of frozen ``OnnxClassifier`` CNNs (tiny -> medium -> large) and of an
``EarlyExitClassifier`` over the split multi-exit CNN (``OnnxMultiExit``), at
batch sizes 1, 64 and 1024, against the full model run alone; and a row-by-row
check that the split network gives the unsplit graph's outputs. See
``benchmarks/ONNX_RESULTS.md`` for the latest numbers and
``benchmarks/onnx_bench.py`` for the method.
"""

from __future__ import annotations

from pathlib import Path

from . import onnx_bench, onnx_report
from ._tables import command_line, write_json, write_markdown

HERE = Path(__file__).resolve().parent
COMMANDS = {
    "cpu": "python -m benchmarks.run_onnx",
    "cuda": "python -m benchmarks.run_onnx_gpu",
}
OUTPUTS = {
    "cpu": (HERE / "results" / "onnx.json", HERE / "ONNX_RESULTS.md"),
    "cuda": (HERE / "results" / "onnx_gpu.json", HERE / "ONNX_GPU_RESULTS.md"),
}


def run(quick: bool = False, device: str = "cpu") -> dict:
    """Run the benchmark on ``device`` and return the results (nothing is written)."""
    command = COMMANDS[device] + (" --quick" if quick else "")
    return onnx_bench.run(quick=quick, device=device, command=command)


def main(argv=None, device: str = "cpu") -> None:
    """Command-line entry point, shared with ``run_onnx_gpu``."""
    doc = __doc__ if device == "cpu" else onnx_bench.__doc__
    args = command_line(doc, "small smoke run; writes nothing").parse_args(argv)
    results = run(args.quick, device)
    onnx_report.print_results(results)
    if args.quick:
        return
    json_path, markdown_path = OUTPUTS[device]
    write_json(json_path, results)
    write_markdown(markdown_path, onnx_report.markdown(results))


if __name__ == "__main__":
    main()
