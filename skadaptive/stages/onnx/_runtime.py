"""onnxruntime and onnx, imported lazily; models, providers and sessions."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..._warnings import warn

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
_INSTALL_HINT = (
    'pip install "skadaptive[onnx]" (onnxruntime, CPU) or pip install '
    '"skadaptive[gpu]" (onnxruntime-gpu, CUDA) -- one of the two, never both'
)


# ----------------------------------------------------------------- imports
def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"ONNX stages need onnxruntime, which is not installed: {_INSTALL_HINT}."
        ) from exc
    return onnxruntime


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "OnnxMultiExit splits the network with the onnx package, which is not "
            f"installed: {_INSTALL_HINT}."
        ) from exc
    return onnx


# ------------------------------------------------------------------ models
def _read_model(model) -> tuple[bytes, str]:
    """The model's bytes and a description of it for error messages."""
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model), "the given ONNX model bytes"
    if isinstance(model, str | os.PathLike):
        path = os.fspath(model)
        if os.path.isdir(path):
            raise IsADirectoryError(
                f"ONNX model {path!r} is a folder; give the path of the .onnx file "
                "in it."
            )
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX model file not found: {path!r}.")
        with open(path, "rb") as file:
            return file.read(), f"ONNX model file {path!r}"
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return serialize(), "the given ONNX ModelProto"
    raise TypeError(
        "model must be the path of an .onnx file, the model's bytes or an "
        f"onnx.ModelProto; got {type(model).__name__}."
    )


# --------------------------------------------------------------- providers
def _requested_providers(ort, providers) -> tuple[list, bool]:
    """The provider list for onnxruntime, and whether the user named it."""
    if isinstance(providers, str):
        if providers == "auto":
            available = ort.get_available_providers()
            return ([_CUDA, _CPU] if _CUDA in available else [_CPU]), False
        providers = [providers]
    valid = isinstance(providers, Sequence) and len(providers) > 0
    if valid:
        for item in providers:
            if not (
                isinstance(item, str)
                or (
                    isinstance(item, tuple)
                    and len(item) == 2
                    and isinstance(item[0], str)
                    and isinstance(item[1], dict)
                )
            ):
                valid = False
    if not valid:
        raise ValueError(
            "providers must be 'auto' or a list of onnxruntime execution provider "
            "names or (name, options) tuples, e.g. ['CUDAExecutionProvider', "
            f"'CPUExecutionProvider']; got {providers!r}."
        )
    known = ort.get_all_providers()
    unknown = [_provider_name(p) for p in providers if _provider_name(p) not in known]
    if unknown:
        raise ValueError(
            f"providers names {unknown}, which onnxruntime {ort.__version__} does "
            f"not know (a misspelling?); its execution providers are {known}, of "
            f"which {ort.get_available_providers()} are available here."
        )
    return list(providers), True


def _provider_name(provider) -> str:
    return provider if isinstance(provider, str) else provider[0]


#: Options of the CUDA execution provider unless the user's own say otherwise.
#: onnxruntime's default conv algorithm search is exhaustive, and a cascade's
#: later stages get an unfamiliar number of rows at almost every call.
#: Measured on an H200 with the digits CNNs (``benchmarks/run_gpu_shapes.py``):
#: a call on 1,001 to 1,020 rows took 12 / 29 / 37 ms with the exhaustive
#: search and 2.0 / 5.6 / 8.9 ms with the heuristic one (0.3-0.4 ms on a
#: repeated 1,000); the CNN cascade at 1,024 rows per call, 64 us per row
#: against 13.7.
CUDA_DEFAULTS = {"cudnn_conv_algo_search": "HEURISTIC"}


def _with_cuda_defaults(requested: list) -> list:
    """``requested`` with :data:`CUDA_DEFAULTS` for the CUDA provider (options
    the user gave for it are kept and take precedence)."""
    providers = []
    for provider in requested:
        if _provider_name(provider) == _CUDA:
            options = {} if isinstance(provider, str) else provider[1]
            provider = (_CUDA, {**CUDA_DEFAULTS, **options})
        providers.append(provider)
    return providers


def _create_session(ort, data: bytes, description: str, requested, intra, inter):
    options = ort.SessionOptions()
    if intra is not None:
        options.intra_op_num_threads = int(intra)
    if inter is not None:
        options.inter_op_num_threads = int(inter)
    requested = _with_cuda_defaults(requested)
    try:
        return ort.InferenceSession(data, sess_options=options, providers=requested)
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        raise ValueError(
            f"{description} is not an ONNX model that onnxruntime {ort.__version__} "
            f"can load: {exc}"
        ) from exc


def _check_providers(ort, requested, explicit: bool, session, owner: str) -> None:
    """Warn or fail where the session did not get the providers asked for.

    With ``providers="auto"`` the session is used as it comes: CUDA where it
    could be set up, else the CPU.
    """
    if not explicit:
        return
    got = session.get_providers()
    asked = [_provider_name(p) for p in requested]
    missing = [p for p in asked if p not in got]
    if not missing:
        return
    message = (
        f"{owner} asked for execution providers {asked} but the onnxruntime session "
        f"got {got}: {', '.join(missing)} could not be used (onnxruntime "
        f"{ort.__version__} lists {ort.get_available_providers()} as available)"
    )
    if _CPU in asked:
        warn(f"{message}; running on {got}.", UserWarning)
        return
    advice = (
        "For CUDA install onnxruntime-gpu (pip install "
        '"skadaptive[gpu]", without the CPU onnxruntime) with matching CUDA and '
        "cuDNN libraries, or add"
        if _CUDA in missing
        else "Install an onnxruntime build with them, or add"
    )
    raise RuntimeError(
        f"{message}. {advice} 'CPUExecutionProvider' to providers to fall back "
        "to the CPU with a warning."
    )


def _cuda_device_id(requested) -> int:
    for provider in requested:
        if _provider_name(provider) == _CUDA and not isinstance(provider, str):
            return int(provider[1].get("device_id", 0))
    return 0


# ---------------------------------------------------------------- sessions
class _LazyRuntime:
    """Creates the onnxruntime sessions on first use, once, under ``_lock``.

    Subclasses set ``_lock`` and ``_runtime = None`` and define
    ``_build_runtime``; sessions are never pickled, so they are built again
    after unpickling.
    """

    def _get_runtime(self):
        runtime = self._runtime
        if runtime is not None:
            return runtime
        with self._lock:
            if self._runtime is None:
                self._runtime = self._build_runtime()
            return self._runtime
