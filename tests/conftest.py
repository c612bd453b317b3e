"""Shared settings of the test suite."""

import os
import sys

# With one pytest-xdist worker per core, a model's own thread pool (OpenMP in
# HistGradientBoosting, BLAS) would put two threads per core: their
# spin-waiting then makes a fit several times slower (measured: the two
# HistGradientBoosting weight-equivalence tests of test_budgets.py took 31 s
# and 39 s on two workers, 7 s each in one process).
# Set before any library that reads it is loaded, and inherited by the
# subprocesses tests start (the README and gallery examples).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from threadpoolctl import threadpool_limits

# Property tests replay the same examples on every run: a failure is reproducible
# and the suite cannot pass or fail by the luck of the draw.
settings.register_profile(
    "skadaptive",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("skadaptive")


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """Run BLAS single-threaded.

    The models here are tiny (exit policies are logistic regressions on a few
    features): a second BLAS thread only adds synchronisation, which on a busy
    2-core machine makes each policy fit tens of times slower.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def pytest_configure(config):
    """With SKADAPTIVE_BUDGET_MUTANT set, break the budget search on purpose.

    ``tests/test_budgets.py`` runs the tests marked ``budget`` in a subprocess
    with ``ignore`` (the budget is ignored) or ``half`` (only half of it is
    spent) and requires every one of them to fail: a budget test that still
    passes against a broken search guards nothing.
    """
    mutant = os.environ.get("SKADAPTIVE_BUDGET_MUTANT")
    if not mutant:
        return
    # Every test is expected to fail here: a few examples each, no shrinking.
    settings.register_profile(
        "budget-mutant",
        parent=settings.get_profile("skadaptive"),
        max_examples=5,
        phases=[Phase.explicit, Phase.generate],
    )
    settings.load_profile("budget-mutant")
    from skadaptive.policies import _policy_search, _skips, _thresholds

    original = _thresholds.budget_thresholds

    def broken(problem, budget):
        if mutant == "ignore":
            return original(problem, np.inf)
        if mutant == "half":
            return original(problem, max(budget / 2, problem.first_stage_cost))
        raise ValueError(f"Unknown SKADAPTIVE_BUDGET_MUTANT {mutant!r}.")

    # Every module that imported the search gets the broken one, so that no
    # budget path escapes the mutant.
    import skadaptive.policies  # noqa: F401  (imports every policy module)

    for name, module in list(sys.modules.items()):
        if name.startswith("skadaptive") and (
            getattr(module, "budget_thresholds", None) is original
        ):
            module.budget_thresholds = broken
    assert _policy_search.budget_thresholds is broken
    assert _skips.budget_thresholds is broken


#: Tests that take a minute or more on 2 cores (each runs processes of its
#: own). They start first: the README's test command runs the suite on as
#: many pytest-xdist workers as there are cores, and a long test started last
#: would run alone at the end while the other workers wait.
LONG_TESTS = (
    "tests/test_budgets.py::test_every_budget_test_fails_against_a_broken_search[ignore]",
    "tests/test_budgets.py::test_every_budget_test_fails_against_a_broken_search[half]",
    "tests/test_docs.py::test_readme_python_examples_run_as_written",
    "tests/test_docs.py::test_docs_build_without_warnings",
)


def pytest_collection_modifyitems(config, items):
    """Move :data:`LONG_TESTS` to the front, in their order (a stable sort)."""
    rank = {nodeid: i for i, nodeid in enumerate(LONG_TESTS)}
    items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))
