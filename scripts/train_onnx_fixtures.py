"""Train the small ONNX models that the ONNX stage tests run on.

Run from the repository root::

    python scripts/train_onnx_fixtures.py [--out tests/fixtures/onnx]

It needs PyTorch (CPU), onnx, onnxruntime, scikit-learn and numpy; the
``skadaptive`` package itself never imports PyTorch. Training takes well under
a minute on two CPU cores and is deterministic (fixed seed, deterministic
algorithms, one thread per operator).

Data: scikit-learn's bundled digits (8x8 images, 10 classes), split with
``train_test_split(test_size=0.3, stratify=y, random_state=0)``; pixels are
divided by 16 to lie in [0, 1] and fed as float32 of shape ``(N, 1, 8, 8)``.
Training: Adam with a cosine learning-rate schedule, 60 epochs, training
images shifted at random by up to one pixel.

Written to ``--out``:

- ``digits_tiny.onnx``, ``digits_medium.onnx``, ``digits_large.onnx``: three
  independent CNNs of very different cost. Input ``"input"`` of shape
  ``[N, 1, 8, 8]``, output ``"logits"`` of shape ``[N, 10]`` (raw scores, no
  softmax), dynamic batch axis.
- ``digits_multi_exit.onnx``: one CNN with a classifier head after each of its
  three blocks, exported as a single graph with input ``"input"`` and outputs
  ``"exit1"``, ``"exit2"`` and ``"logits"`` (raw scores), dynamic batch axis.
  Trained with the sum of the three heads' cross-entropies.
- ``fixtures.json``: what each file is, its size, parameter count,
  multiply-accumulates per row (convolutions and linear layers), and its
  accuracy on the test split measured with onnxruntime on the exported file.
  Entries it does not write (the ``"regression"`` models of
  ``tests/fixtures/onnx/make_regression_fixture.py``) are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 0
OPSET = 17
EPOCHS = 60
BATCH_SIZE = 64
LEARNING_RATE = 3e-3


def load_split():
    """The digits split every fixture is trained and measured on."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    return X_train, X_test, y_train.astype(np.int64), y_test.astype(np.int64)


class Tiny(nn.Module):
    """One 3x3 convolution with 4 channels, then a linear layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()
        )
        self.classifier = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


class Medium(nn.Module):
    """Two convolutions (16 and 32 channels), then a linear layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


class Large(nn.Module):
    """Three convolutions (32, 64, 64 channels), then two linear layers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class MultiExit(nn.Module):
    """Three blocks of growing cost, with a classifier head after each."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.head1 = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
        self.block2 = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.ReLU())
        self.head2 = nn.Sequential(
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 2 * 2, 10)
        )
        self.block3 = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head3 = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x):
        h1 = self.block1(x)
        h2 = self.block2(h1)
        h3 = self.block3(h2)
        return self.head1(h1), self.head2(h2), self.head3(h3)


def count_macs(module: nn.Module, parts: dict[str, list[nn.Module]] | None = None):
    """Multiply-accumulates per row of the convolutions and linear layers.

    With ``parts`` (name -> submodules), the count is split by part.
    """
    counts: dict[nn.Module, int] = {}

    def hook(layer, inputs, output):
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            per_output = (layer.in_channels // layer.groups) * kh * kw
            counts[layer] = counts.get(layer, 0) + output[0].numel() * per_output
        elif isinstance(layer, nn.Linear):
            counts[layer] = (
                counts.get(layer, 0) + layer.in_features * layer.out_features
            )

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        module(torch.zeros(1, 1, 8, 8))
    for handle in handles:
        handle.remove()
    if parts is None:
        return int(sum(counts.values()))
    return {
        name: int(sum(counts.get(m, 0) for sub in subs for m in sub.modules()))
        for name, subs in parts.items()
    }


def random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by -1, 0 or 1 pixel along each axis (zeros fill in)."""
    n_rows = images.shape[0]
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n_rows,), generator=generator)
    dx = torch.randint(0, 3, (n_rows,), generator=generator)
    shifted = torch.empty_like(images)
    for i in range(3):
        for j in range(3):
            rows = (dy == i) & (dx == j)
            shifted[rows] = padded[rows, :, i : i + 8, j : j + 8]
    return shifted


def train(model: nn.Module, X_train, y_train, *, seed: int) -> nn.Module:
    """Adam on the (summed) cross-entropy of the model's output(s).

    The training images are shifted at random by up to one pixel, which helps
    the larger networks most and so separates the models' accuracies.
    """
    torch.manual_seed(seed)
    X = torch.from_numpy(X_train)
    y = torch.from_numpy(y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            outputs = model(random_shift(X[rows], generator))
            if isinstance(outputs, torch.Tensor):
                outputs = (outputs,)
            loss = sum(loss_fn(out, y[rows]) for out in outputs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model.eval()


def export(model: nn.Module, output_names: list[str]) -> bytes:
    """The model as ONNX bytes (opset 17, dynamic batch axis)."""
    buffer = io.BytesIO()
    dynamic_axes = {name: {0: "batch"} for name in ["input", *output_names]}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the torch.export
        # one, which needs onnxscript; this one needs nothing more.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(2, 1, 8, 8),),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def onnx_accuracies(data: bytes, X_test, y_test, output_names, model) -> dict:
    """Test accuracy of each output, run by onnxruntime on the exported bytes.

    Also checks that onnxruntime agrees with PyTorch on the outputs.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    outputs = session.run(output_names, {"input": X_test})
    with torch.no_grad():
        expected = model(torch.from_numpy(X_test))
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    for name, got, want in zip(output_names, outputs, expected):
        np.testing.assert_allclose(
            got, want.numpy(), rtol=1e-4, atol=1e-4, err_msg=name
        )
    return {
        name: float(np.mean(np.argmax(out, axis=1) == y_test))
        for name, out in zip(output_names, outputs)
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=os.path.join("tests", "fixtures", "onnx"),
        help="folder to write the .onnx files and fixtures.json to",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    X_train, X_test, y_train, y_test = load_split()
    summary: dict = {
        "description": (
            "CNNs trained on scikit-learn's digits by scripts/train_onnx_fixtures.py "
            "for the ONNX stage tests. Outputs are raw logits (no softmax)."
        ),
        "data": {
            "dataset": "sklearn.datasets.load_digits",
            "split": (
                "train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)"
            ),
            "preprocessing": "X / 16, float32, reshaped to (N, 1, 8, 8)",
            "n_train": int(len(y_train)),
            "n_test": int(len(y_test)),
        },
        "classes": list(range(10)),
        "seed": SEED,
        "epochs": EPOCHS,
        "augmentation": "random shift of up to one pixel per axis",
        "opset": OPSET,
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "models": {},
    }

    for name, cls in [("tiny", Tiny), ("medium", Medium), ("large", Large)]:
        torch.manual_seed(SEED)
        model = train(cls(), X_train, y_train, seed=SEED)
        data = export(model, ["logits"])
        filename = f"digits_{name}.onnx"
        (out / filename).write_bytes(data)
        accuracy = onnx_accuracies(data, X_test, y_test, ["logits"], model)["logits"]
        summary["models"][name] = {
            "file": filename,
            "kind": "single exit",
            "inputs": {"input": ["N", 1, 8, 8]},
            "outputs": {"logits": ["N", 10]},
            "file_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "macs_per_row": count_macs(model),
            "test_accuracy": accuracy,
        }
        print(f"{filename}: {len(data)} bytes, accuracy {accuracy:.4f}")

    torch.manual_seed(SEED)
    model = train(MultiExit(), X_train, y_train, seed=SEED)
    exits = ["exit1", "exit2", "logits"]
    data = export(model, exits)
    filename = "digits_multi_exit.onnx"
    (out / filename).write_bytes(data)
    accuracies = onnx_accuracies(data, X_test, y_test, exits, model)
    # Incremental cost of reaching each exit: its block and its head.
    macs = count_macs(
        model,
        {
            "exit1": [model.block1, model.head1],
            "exit2": [model.block2, model.head2],
            "logits": [model.block3, model.head3],
        },
    )
    summary["models"]["multi_exit"] = {
        "file": filename,
        "kind": "multi exit (one graph, three outputs)",
        "inputs": {"input": ["N", 1, 8, 8]},
        "outputs": {name: ["N", 10] for name in exits},
        "exit_outputs": exits,
        "file_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "macs_per_row": count_macs(model),
        "incremental_macs_per_row": [macs[name] for name in exits],
        "test_accuracy": [accuracies[name] for name in exits],
    }
    print(
        f"{filename}: {len(data)} bytes, accuracies "
        + ", ".join(f"{n} {accuracies[n]:.4f}" for n in exits)
    )
    path = out / "fixtures.json"
    if path.exists():
        # Keep what other scripts recorded there: the "regression" entry of
        # tests/fixtures/onnx/make_regression_fixture.py.
        kept = json.loads(path.read_text())
        summary.update({k: v for k, v in kept.items() if k not in summary})
    path.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
