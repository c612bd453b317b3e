"""Warnings that point at the user's line, however deep in the package they start."""

from __future__ import annotations

import os
import sys
import warnings

import joblib
import sklearn

#: Frames in these folders are skipped: the package's own, and scikit-learn's
#: and joblib's (``_fit_context``, meta-estimators, cross-validation), which
#: call the estimator for the user.
_LIBRARY_FOLDERS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules[__name__.rpartition(".")[0]], sklearn, joblib)
)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn at the first caller outside skadaptive, scikit-learn and joblib.

    The same warning is reached at different depths (``fit`` and
    ``with_policy`` both learn a policy; scikit-learn wraps ``fit``), so a
    fixed ``stacklevel`` points inside a library on some paths. This one
    names the line of the user's code that called into them.

    Parameters
    ----------
    message : str
    category : type of Warning, default=UserWarning

    Examples
    --------
    >>> import warnings
    >>> from skadaptive._warnings import warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("check this")
    >>> caught[0].filename.endswith("_warnings.py")
    False
    """
    level = 2  # the function that called warn()
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _LIBRARY_FOLDERS
    ):
        frame = frame.f_back
        level += 1
    if frame is None:
        level = 2  # called from the libraries alone: the function that warned
    warnings.warn(message, category, stacklevel=level)
