"""Run the tests that depend most on scikit-learn against the lowest supported one.

The package imports some private scikit-learn names (listed, with the reason
for each, in ``skadaptive/_sklearn_private.py``) and follows scikit-learn's
estimator checks, so CI tests the lowest release that ``pyproject.toml``
admits as well as the newest. This script makes a throw-away virtual
environment with that release (the lower bound of the ``scikit-learn``
requirement, pinned exactly), installs the package there with what its tests
need, and runs scikit-learn's estimator checks on every configuration, the
tests of the sources that read scikit-learn's tree internals, and the tests
of bad input (the rest of the suite runs once, with the newest release).

Usage (from the repository root; the README's test command runs it)::

    python scripts/test_lowest_sklearn.py [extra pytest arguments]

Exits with pytest's status.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_common.py",
    "tests/test_tree_exits.py",
    "tests/test_chain_exits.py",
    "tests/test_errors.py",
]
# What those tests import besides the package (its [onnx,plot] extras).
TEST_REQUIREMENTS = [
    "pytest>=7",
    "pytest-xdist>=3.2",
    "hypothesis>=6.80",
    "pandas>=1.5",
]


def lowest_scikit_learn() -> str:
    """The lower bound of the scikit-learn requirement, as ``==`` pin."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"scikit-learn\s*>=\s*([\w.]+)', text)
    if match:
        return f"scikit-learn=={match.group(1)}"
    raise SystemExit("pyproject.toml has no 'scikit-learn>=...' requirement.")


def main(argv: list[str]) -> int:
    pin = lowest_scikit_learn()
    with tempfile.TemporaryDirectory(prefix="skadaptive-lowest-") as folder:
        venv.create(folder, with_pip=True)
        python = str(Path(folder) / "bin" / "python")
        print(f"installing {pin} and the package into a fresh environment", flush=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            + [pin, "-e", f"{ROOT}[onnx,plot]", *TEST_REQUIREMENTS],
            check=True,
        )
        version = subprocess.run(
            [python, "-c", "import sklearn; print(sklearn.__version__)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"testing with scikit-learn {version}", flush=True)
        # From the repository root, with its pytest settings; the package is
        # this working tree (installed editable above).
        return subprocess.run(
            [
                *(python, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
                *("-n", "auto", "--dist", "worksteal", *TESTS, *argv),
            ],
            cwd=ROOT,
        ).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
