"""The documentation's examples run, and its API reference lists every public name.

Every ``examples/plot_*.py`` is run as a script, as a reader would run it
(``python examples/plot_x.py``), in the examples folder with a non-interactive
matplotlib backend. The Sphinx site is built with warnings as errors (numpydoc
validation of every public docstring included), without running the examples a
second time.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))
API_PAGE = ROOT / "docs" / "api" / "index.rst"
# Each example must finish well within this on a busy 2-core machine; they
# take a few seconds each.
TIMEOUT_S = 120


def _missing_modules(source: str) -> list[str]:
    """Optional modules an example needs that are not installed."""
    needed = ["matplotlib"]
    if re.search(r"\bOnnx(Classifier|MultiExit)\b", source):
        needed += ["onnxruntime", "onnx"]
    return [name for name in needed if importlib.util.find_spec(name) is None]


def test_there_are_examples():
    assert len(EXAMPLES) >= 5, EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(example, tmp_path):
    source = example.read_text()
    missing = _missing_modules(source)
    if missing:
        pytest.skip(
            f"{example.name} needs {', '.join(missing)}, which is not installed "
            '(pip install -e ".[tests]" installs it)'
        )
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    # This checkout's skadaptive, also where it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["MPLCONFIGDIR"] = str(tmp_path / "mplconfig")
    try:
        result = subprocess.run(
            [sys.executable, str(example)],
            cwd=EXAMPLES_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{example.name} did not finish within {TIMEOUT_S} s:\n{exc}")
    assert result.returncode == 0, (
        f"{example.name} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def test_examples_write_nothing_into_the_checkout():
    """Examples may only show figures, not leave files next to themselves."""
    present = {p.name for p in EXAMPLES_DIR.iterdir() if not p.name.startswith(".")}
    allowed = {p.name for p in EXAMPLES} | {"GALLERY_HEADER.rst", "__pycache__"}
    assert present <= allowed, sorted(present - allowed)


@pytest.mark.parametrize(
    "module_name",
    [
        "skadaptive",
        "skadaptive.stages",
        "skadaptive.policies",
        "skadaptive.metrics",
        "skadaptive.plot",
        "skadaptive.persistence",
        "skadaptive.cli",
    ],
)
def test_api_reference_lists_every_public_name(module_name):
    """docs/api/index.rst has an autosummary entry for each name in __all__."""
    module = importlib.import_module(module_name)
    page = API_PAGE.read_text()
    section = page.split(f".. currentmodule:: {module_name}\n", 1)
    assert len(section) == 2, f"no '.. currentmodule:: {module_name}' in {API_PAGE}"
    # The entries up to the next module's section.
    entries = set(
        re.findall(r"^   (\w+)$", section[1].split(".. currentmodule::")[0], re.M)
    )
    public = {name for name in module.__all__ if not name.startswith("__")}
    missing = sorted(public - entries)
    assert not missing, f"{module_name}: not in {API_PAGE.name}: {missing}"


_DOCS_TOOLS = (
    "sphinx",
    "numpydoc",
    "sphinx_gallery",
    "myst_parser",
    "pydata_sphinx_theme",
)


def test_docs_build_without_warnings(tmp_path):
    missing = [m for m in _DOCS_TOOLS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"building the docs needs {', '.join(missing)}")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-D",
            "plot_gallery=0",  # the examples run in test_example_runs
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert (tmp_path / "html" / "api" / "index.html").exists()


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run is the README's test command, and docs/index.md shows the same."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"```bash\n(pip install -e \"\.\[tests\]\".*)\n```", readme)
    assert command, "README has no test command"
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == command.group(1)
    assert command.group(1) in (ROOT / "docs" / "index.md").read_text()


README_TIMEOUT_S = 600  # a hang, not a speed check: they take under a minute


def _readme_python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)


def _paragraph_after(source: str) -> str:
    """The README's paragraph that follows the code block ``source``."""
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index(source) + len(source) :].split("```", 1)[1]
    return " ".join(after.strip().split("\n\n", 1)[0].split())


def _numbers(line: str) -> list[float]:
    return [float(token) for token in line.split()]


#: The figures the README quotes after its blocks with declared costs (trees,
#: rounds, MACs, declared per-row costs), against what each block prints. A
#: block is found by a line of its code; each check is a pattern with one
#: number in the paragraph after the block, the printed value it quotes (a
#: function of the printed lines) and how far apart they may be: a row or
#: so, which another numpy or LightGBM release can move; a stale figure is
#: further off.
_ACCURACY = 0.25  # points
_COST = 0.01  # relative


def _right_and_cost(unit: str) -> list:
    """Accuracy, cost per row and the whole model's accuracy, as the two
    early-exit blocks print them (on their first two lines) and quote them."""
    return [
        (
            r"([\d.]+) % of the test rows right",
            lambda o: 100 * _numbers(o[0])[0],
            _ACCURACY,
        ),
        (rf"with ([\d.]+) {unit} per row", lambda o: float(o[1]), -_COST),
        (
            r"against ([\d.]+) % with all 200",
            lambda o: 100 * _numbers(o[0])[1],
            _ACCURACY,
        ),
    ]


README_FIGURES = {
    "exits=[10, 25, 50, 100, 200],": [
        *_right_and_cost("trees"),
        (r"they cost ([\d.]+) \(`policy_rows", lambda o: float(o[2]), -_COST),
        (r"was ([\d.]+) \(`expected_cost_`", lambda o: float(o[3]), -_COST),
    ],
    "LGBMClassifier(n_estimators=200": _right_and_cost("rounds"),
    "AdaptiveCascadeRegressor(": [
        (r"R\^2 ([\d.]+) on the test rows", lambda o: _numbers(o[0])[0], 0.003),
        (r"average cost of ([\d.]+),", lambda o: _numbers(o[1])[0], -_COST),
        (r"against ([\d.]+) for the boosting", lambda o: _numbers(o[0])[1], 0.003),
    ],
    "OnnxMultiExit(": [
        (
            r"\(([\d.]+) % of the 270 test rows",
            lambda o: 100 * _numbers(o[0])[0],
            _ACCURACY,
        ),
        (r"answered ([\d.]+) % right", lambda o: 100 * _numbers(o[1])[0], _ACCURACY),
        (r"at ([\d,]+) MACs per row", lambda o: _numbers(o[1])[1], -_COST),
    ],
}


def _check_figures(paragraph: str, printed: list[str], checks) -> None:
    """Each quoted figure within its tolerance of the printed one (a negative
    tolerance is relative)."""
    for pattern, value_of, tolerance in checks:
        found = re.search(pattern, paragraph)
        assert found, (pattern, paragraph)
        quoted = float(found.group(1).replace(",", ""))
        value = value_of(printed)
        allowed = -tolerance * abs(value) if tolerance < 0 else tolerance
        assert abs(quoted - value) <= allowed, (pattern, quoted, value, paragraph)


def test_readme_has_runnable_python_examples():
    assert len(_readme_python_blocks()) >= 2


def test_readme_python_examples_run_as_written(tmp_path):
    """Each README code block runs on its own, as a reader would paste it
    (all at once, each in its own folder and interpreter)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    runs = {}
    for index, source in enumerate(_readme_python_blocks()):
        if _missing_modules(source):
            continue  # the optional runtime is not installed
        folder = tmp_path / f"block_{index}"
        folder.mkdir()
        (folder / "example.py").write_text(source)
        # Run as from the repository root (the ONNX block reads the test
        # fixtures), while what it writes lands in its own folder.
        (folder / "tests").symlink_to(ROOT / "tests")
        runs[index] = subprocess.Popen(
            [sys.executable, "example.py"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert runs, "no README block could run"
    blocks = _readme_python_blocks()
    for index, run in runs.items():
        stdout, stderr = run.communicate(timeout=README_TIMEOUT_S)
        assert run.returncode == 0, (
            f"README block {index} exited with {run.returncode}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )
        # The figures quoted after the block are what it prints.
        for marker, checks in README_FIGURES.items():
            if marker in blocks[index]:
                paragraph = _paragraph_after(blocks[index])
                _check_figures(paragraph, stdout.strip().splitlines(), checks)


def test_every_readme_figure_check_finds_its_block_and_figure():
    blocks = _readme_python_blocks()
    for marker, checks in README_FIGURES.items():
        (block,) = [block for block in blocks if marker in block]
        paragraph = _paragraph_after(block)
        for pattern, _, _ in checks:
            assert re.search(pattern, paragraph), (pattern, paragraph)


def _fitted_for_attributes():
    from sklearn.datasets import make_classification, make_regression
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from skadaptive import (
        AdaptiveCascadeClassifier,
        AdaptiveCascadeRegressor,
        EarlyExitClassifier,
        EarlyExitRegressor,
    )

    Xc, yc = make_classification(300, n_features=6, random_state=0)
    Xr, yr = make_regression(300, n_features=6, noise=5.0, random_state=0)
    cascade_c = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=4))],
        costs=[1, 5],
        cv=3,
        random_state=0,
    )
    cascade_r = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=4))],
        costs=[1, 5],
        cv=3,
        random_state=0,
    )
    exits_c = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=8, random_state=0),
        exits=[2, 8],
        cv=3,
        random_state=0,
    )
    exits_r = EarlyExitRegressor(
        GradientBoostingRegressor(n_estimators=8, random_state=0),
        exits=[2, 8],
        cv=3,
        random_state=0,
    )
    for estimator, X, y in (
        (cascade_c, Xc, yc),
        (cascade_r, Xr, yr),
        (exits_c, Xc, yc),
        (exits_r, Xr, yr),
    ):
        for params in (
            {},
            {"budget": 2.0 if "Cascade" in type(estimator).__name__ else 4},
        ):
            yield estimator.set_params(**params).fit(X, y)


def test_every_fitted_attribute_is_documented():
    """``expected_speed_up_`` was left out of the regressors' Attributes."""
    for estimator in _fitted_for_attributes():
        documented = estimator.__doc__.split("Attributes\n    ----------")[1]
        # Set in fit, or properties that a fitted estimator answers.
        public = [
            name
            for name in {*vars(estimator), *dir(type(estimator))}
            if name.endswith("_")
            and not name.startswith("_")
            and hasattr(estimator, name)
        ]
        missing = [
            name
            for name in public
            if not re.search(rf"\b{name}(?![A-Za-z0-9_])", documented)
        ]
        assert not missing, (type(estimator).__name__, missing)
