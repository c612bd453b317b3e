"""Type aliases of the public signatures, read with the numpydoc docstrings.

The docstrings say what each parameter may be; these aliases say it to a type
checker as far as it can be said truthfully. The modules that use them have
``from __future__ import annotations``, so no annotation is evaluated at
runtime. This module imports only numpy and :mod:`typing` (many modules of the
package import it, so it must import none of them: no import cycles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ArrayLike",
    "Estimator",
    "LazyAnswers",
    "Predictions",
    "RandomState",
    "Rows",
    "State",
]

#: The rows ``X`` of a fit or a prediction. The estimators pass them to their
#: stages as given (rows selected with scikit-learn's safe indexing): numpy
#: arrays, scipy sparse matrices, pandas DataFrames, lists of texts or of
#: other objects a stage takes, and for prediction Dask collections. What a
#: stage accepts is up to the stage, so no union of types is true: ``Any``.
Rows = Any

#: A ``random_state`` parameter, as :func:`sklearn.utils.check_random_state`
#: takes it.
RandomState = int | np.random.RandomState | None

#: A scikit-learn estimator (a stage, a policy's classifier, a router).
#: scikit-learn recognises estimators by their methods and tags, not by a base
#: class, so this is ``Any``.
Estimator = Any

#: The running computation a stage source hands from one stage to the next
#: (see :class:`~skadaptive.engine.StageSource`): None for independent
#: stages, the source's own object for the exits of a shared computation.
State = Any

if TYPE_CHECKING:
    import dask.array
    import dask.dataframe

    #: What a prediction method returns for a Dask input
    #: (:func:`skadaptive._dask.lazy_predict`): a dask array for a dask array,
    #: a dask Series or DataFrame for a dask DataFrame or Series.
    LazyAnswers = dask.array.Array | dask.dataframe.Series | dask.dataframe.DataFrame
else:
    # Dask is imported only for a Dask input (see skadaptive._dask), never to
    # name a type at runtime.
    LazyAnswers = Any

#: What a prediction method (``predict``, ``predict_proba``, ``predict_exit``...)
#: returns: an ndarray for rows in memory, the matching lazy collection for a
#: Dask input.
# (Union: ``type | Any`` fails at runtime before Python 3.11.)
Predictions = Union[np.ndarray, LazyAnswers]  # noqa: UP007
