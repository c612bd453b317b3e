"""Shared settings of the test suite."""

import pytest
from hypothesis import HealthCheck, settings
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
