"""
=====================================================
ONNX networks: a cascade and a split multi-exit model
=====================================================

Already-trained convolutional networks, exported to ONNX, as stages. The
networks are the test fixtures of this repository
(``tests/fixtures/onnx``), trained on 70 % of scikit-learn's digits by
``scripts/train_onnx_fixtures.py``; the remaining 30 % -- rows the networks
never saw -- train the exit policy and evaluate it.

1. An :class:`~skadaptive.AdaptiveCascadeClassifier` over two independent
   networks, a tiny one and a large one, each an
   :class:`~skadaptive.stages.OnnxClassifier`.
2. An :class:`~skadaptive.EarlyExitClassifier` over one network with three
   classifier heads, split by :class:`~skadaptive.stages.OnnxMultiExit` into
   one onnxruntime session per exit, so that a row that stops early never runs
   the later layers.

``providers="auto"`` (the default) runs on CUDA where ``onnxruntime-gpu`` can
use it, else on the CPU; this example pins one CPU thread per session. Costs
are the networks' multiply-accumulates (MACs) per row, recorded in
``fixtures.json``. Needs the ``onnx`` extra (``onnxruntime`` and ``onnx``).
"""

# %%
# The fixture networks and the rows they did not see
# --------------------------------------------------
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.plot import CostAccuracyDisplay
from skadaptive.stages import OnnxClassifier, OnnxMultiExit

# sphinx-gallery runs examples without ``__file__``, in the examples folder.
try:
    HERE = Path(__file__).resolve().parent
except NameError:
    HERE = Path.cwd()
FIXTURES = HERE.parent / "tests" / "fixtures" / "onnx"
info = json.loads((FIXTURES / "fixtures.json").read_text())["models"]

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # the networks' preprocessing
# The split the networks were trained with: they saw X_seen only.
X_seen, X_new, y_seen, y_new = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
# Rows the networks never saw: half to learn the policy, half to evaluate.
X_policy, X_test, y_policy, y_test = train_test_split(
    X_new, y_new, test_size=0.5, stratify=y_new, random_state=0
)
print(f"{len(X_policy)} policy rows, {len(X_test)} test rows")

# %%
# A cascade of two networks
# -------------------------
# An :class:`~skadaptive.stages.OnnxClassifier` is trained already: the cascade
# never refits it, and ``fit`` only learns the policy on the rows it is given.
# Rows come as 64 columns and are reshaped to the networks' ``1 x 8 x 8``
# input.
onnx_options = {"classes": list(range(10)), "intra_op_num_threads": 1}
tiny = OnnxClassifier(FIXTURES / info["tiny"]["file"], **onnx_options)
large = OnnxClassifier(FIXTURES / info["large"]["file"], **onnx_options)
macs = [info["tiny"]["macs_per_row"], info["large"]["macs_per_row"]]

cascade = AdaptiveCascadeClassifier(
    [("tiny", tiny), ("large", large)], costs=macs, cost_weight=0.01
).fit(X_policy, y_policy)
print("execution providers:", tiny.providers_)
print(f"costs (MACs per row): {cascade.costs_}")
print(
    f"cascade: accuracy {cascade.score(X_test, y_test):.3f} at "
    f"{cascade.predict_cost(X_test).mean() / macs[1]:.1%} "
    f"of the large network's cost (large alone: {large.score(X_test, y_test):.3f})"
)

# %%
# One network, three exits
# ------------------------
# :class:`~skadaptive.stages.OnnxMultiExit` splits the graph at its exit
# outputs. Each segment computes only what its exit needs beyond the earlier
# segments; the tensors later segments read are handed on. Its
# ``default_costs`` are each segment's MACs, so the budget below is in MACs.
source = OnnxMultiExit(
    FIXTURES / info["multi_exit"]["file"],
    exit_outputs=info["multi_exit"]["exit_outputs"],
    classes=list(range(10)),
    intra_op_num_threads=1,
)
print("segment inputs:", source.segment_inputs)
print("MACs per row of each segment:", source.default_costs())

# The split graph gives what the whole graph gives.
proba_0, state = source.run_stage(0, X_test, None)
proba_1, _ = source.run_stage(1, X_test, state)
whole = source.run_unsplit(X_test)
print("split == unsplit:", bool(np.allclose(proba_1, whole[1], atol=1e-5)))

total_macs = source.default_costs().sum()
ee = EarlyExitClassifier(source, budget=0.2 * total_macs).fit(X_policy, y_policy)
print(
    f"early exits: accuracy {ee.score(X_test, y_test):.3f} at "
    f"{ee.predict_cost(X_test).mean() / total_macs:.1%} of the whole network "
    f"(estimated out of sample {ee.expected_cost_ / total_macs:.1%}, budget 20 %)"
)

# %%
# Accuracy against MACs on the test rows
# --------------------------------------
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
CostAccuracyDisplay.from_estimator(cascade, X_test, y_test, ax=left, name="cascade")
left.set_title("tiny -> large network")
CostAccuracyDisplay.from_estimator(ee, X_test, y_test, ax=right, name="early exits")
right.set_title("one network, three exits")
for ax in (left, right):
    ax.set_xscale("log")
    ax.set_xlabel("average multiply-accumulates per row")
fig.tight_layout()
plt.show()

# %%
# On a GPU
# --------
# With ``onnxruntime-gpu`` installed (the ``gpu`` extra, instead of
# ``onnxruntime``), the same code runs on CUDA: ``providers="auto"`` picks
# ``CUDAExecutionProvider`` when onnxruntime offers it, and
# :class:`~skadaptive.stages.OnnxMultiExit` then keeps the handed-on tensors on
# the device with IO binding. To fail instead of falling back to the CPU, pass
# ``providers=["CUDAExecutionProvider"]``. Time per row on a GPU is not
# proportional to MACs at small batches, so measure it there:
seconds = ee.measure_stage_seconds(X_test, random_state=0)
print("microseconds per row of each exit's increment:", (seconds * 1e6).round(2))
