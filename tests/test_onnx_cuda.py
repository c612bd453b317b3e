"""ONNX stages on a CUDA GPU answer as on the CPU.

Run where onnxruntime can use the CUDA execution provider (onnxruntime-gpu and
an NVIDIA GPU); skipped elsewhere, which includes CI. The CPU tests in
``test_onnx.py`` exercise the same code paths (IO binding, rows selected by a
``Gather`` session) on the CPU device.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.stages import OnnxClassifier, OnnxMultiExit

ort = pytest.importorskip("onnxruntime")

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
INFO = json.loads((FIXTURES / "fixtures.json").read_text())
EXITS = INFO["models"]["multi_exit"]["exit_outputs"]
CPU = ["CPUExecutionProvider"]
CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
#: GPU against CPU, or one batch against another on the GPU: cuDNN picks its
#: convolution algorithm per input shape and rounds in TF32 by default.
#: Measured on an H200: up to 1.3e-3 apart in a probability.
GPU_ATOL = 5e-3


def _cuda_problem():
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime lists no CUDAExecutionProvider"
    options = ort.SessionOptions()
    options.log_severity_level = 3
    path = FIXTURES / INFO["models"]["tiny"]["file"]
    try:
        session = ort.InferenceSession(str(path), options, providers=CUDA)
    except Exception as exc:  # onnxruntime raises plain Exceptions
        return f"no CUDA session: {exc}"
    if session.get_providers()[0] != CUDA[0]:
        return f"a session asking for CUDA got {session.get_providers()}"
    return None


pytestmark = pytest.mark.skipif(
    _cuda_problem() is not None, reason=f"CUDA is not usable: {_cuda_problem()}"
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def _clf(name, providers):
    return OnnxClassifier(
        FIXTURES / INFO["models"][name]["file"],
        classes=list(range(10)),
        providers=providers,
    )


def _multi(providers, io_binding):
    return OnnxMultiExit(
        FIXTURES / INFO["models"]["multi_exit"]["file"],
        exit_outputs=EXITS,
        classes=list(range(10)),
        providers=providers,
        io_binding=io_binding,
    )


@pytest.mark.parametrize("name", ["tiny", "medium", "large"])
def test_a_network_on_the_gpu_answers_as_on_the_cpu(digits, name):
    X, _ = digits
    gpu = _clf(name, CUDA).fit(X[:10], np.arange(10))
    assert gpu.providers_[0] == CUDA[0]
    options = gpu._get_runtime().session.get_provider_options()[CUDA[0]]
    assert options["cudnn_conv_algo_search"] == "HEURISTIC"
    cpu = _clf(name, CPU).fit(X[:10], np.arange(10))
    # cuDNN's convolutions (TF32 by default) round otherwise than the CPU's.
    assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=GPU_ATOL)


@pytest.mark.parametrize("io_binding", [False, True])
def test_exits_on_the_gpu_continue_from_the_rows_kept(digits, io_binding):
    """Every exit of the rows kept at each stage, on the GPU (hand-on tensors
    on the device with IO binding) and on the CPU."""
    X, _ = digits
    answers = {}
    for device, providers in (("gpu", CUDA), ("cpu", CPU)):
        rng = np.random.default_rng(0)
        source = _multi(providers, io_binding if device == "gpu" else False)
        rows, state, out = np.arange(len(X)), None, []
        keep = [rng.random(len(X)) < 0.6 for _ in range(source.n_stages)]
        for stage in range(source.n_stages):
            proba, state = source.run_stage(
                stage, X[rows] if stage == 0 else None, state
            )
            out.append((rows.copy(), proba))
            mask = keep[stage][: len(rows)]
            rows, state = rows[mask], source.keep_rows(state, mask)
        answers[device] = out
    for (rows_gpu, gpu), (rows_cpu, cpu) in zip(answers["gpu"], answers["cpu"]):
        assert_array_equal(rows_gpu, rows_cpu)
        assert_allclose(gpu, cpu, atol=GPU_ATOL)


def test_a_cascade_of_gpu_networks_routes_as_on_the_cpu(digits):
    X, y = digits
    fitted = {}
    for device, providers in (("gpu", CUDA), ("cpu", CPU)):
        stages = [(n, _clf(n, providers)) for n in ("tiny", "medium", "large")]
        fitted[device] = AdaptiveCascadeClassifier(
            stages, costs=[1.0, 2.0, 20.0], cost_weight=0.01, random_state=0
        ).fit(X[:900], y[:900])
    gpu, cpu = fitted["gpu"], fitted["cpu"]
    # Same policy (learned on probabilities equal to float32 precision).
    agree = np.mean(gpu.predict_exit(X[900:]) == cpu.predict_exit(X[900:]))
    assert agree >= 0.99
    # Rows answered in batches of 100 and all at once (their exits equal: a
    # policy's decision moves only with probabilities at its thresholds).
    batched = gpu.set_params(batch_size=100)
    exits, proba = batched.predict_exit(X[900:]), batched.predict_proba(X[900:])
    whole = gpu.set_params(batch_size=None)
    assert np.mean(exits == whole.predict_exit(X[900:])) >= 0.99
    assert_allclose(proba, whole.predict_proba(X[900:]), atol=GPU_ATOL)


def test_early_exits_with_io_binding_answer_as_the_unsplit_network(digits):
    X, y = digits
    estimator = EarlyExitClassifier(
        _multi(CUDA, True), costs=[1.0, 2.0, 20.0], cost_weight=0.01, random_state=0
    ).fit(X[:900], y[:900])
    exits = estimator.predict_exit(X[900:])
    unsplit = estimator.source_.run_unsplit(X[900:])
    proba = estimator.predict_proba(X[900:])
    for stage in range(3):
        rows = exits == stage
        assert_allclose(proba[rows], unsplit[stage][rows], atol=GPU_ATOL)
