"""Every private scikit-learn name the package uses, and why.

scikit-learn has no public equivalent for these; third-party estimators that
follow its conventions (the developer guide's ``_fit_context`` and parameter
constraints, metadata routing) use the same names. They are imported here
and nowhere else, so that a scikit-learn release that moves one breaks one
module, and CI tests the lowest supported scikit-learn (see
``pyproject.toml``) as well as the newest. Where a public API exists the
package uses it instead (``check_is_fitted`` for fitted state,
``get_config()["enable_metadata_routing"]`` for routing, ``validate_data``).
"""

# The decorator the developer guide prescribes for fit: validates the
# parameters against _parameter_constraints once per fit.
from sklearn.base import _fit_context

# The fast path of a linear exit rule: its decision function without input
# validation, which costs more than the product itself on every batch.
from sklearn.linear_model._base import LinearClassifierMixin

# Row selection of arrays, sparse matrices, DataFrames and lists alike.
from sklearn.utils import _safe_indexing

# Parameter constraints (_parameter_constraints) are written with these, and
# checked with the last one where a parameter set after fit is first used.
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
    validate_parameter_constraints,
)

# Errors for metadata passed to fit without routing enabled, worded as
# scikit-learn's own meta-estimators word them.
# The base of scikit-learn's own scorers: set_score_request(sample_weight=...)
# on the package's cost scorers, so that a search routes the weights to them.
from sklearn.utils.metadata_routing import _MetadataRequester, _raise_for_params

# get_params/set_params over a list of (name, estimator) stages, as in
# VotingClassifier and StackingClassifier.
from sklearn.utils.metaestimators import _BaseComposition

# The number of rows of anything _safe_indexing can index; the checks of
# feature names of an estimator that validates its own rows (ONNX stages);
# fit parameters sliced to a fold's rows, as cross_validate does; sample
# weights checked and made non-negative as scikit-learn's estimators do.
from sklearn.utils.validation import (
    _check_feature_names,
    _check_method_params,
    _check_sample_weight,
    _num_samples,
)

# The boxes of the HTML representation: a cascade's stages drawn one each, as
# scikit-learn's ensembles draw theirs.
try:
    from sklearn.utils._repr_html.estimator import _VisualBlock
except ImportError:  # scikit-learn < 1.7
    from sklearn.utils._estimator_html_repr import _VisualBlock

try:  # the compiled loop of GradientBoostingClassifier.predict_proba
    from sklearn.ensemble._gradient_boosting import predict_stages
except ImportError:  # not in this scikit-learn: the public per-tree path is used
    predict_stages = None

__all__ = [
    "HasMethods",
    "Interval",
    "LinearClassifierMixin",
    "RealNotInt",
    "StrOptions",
    "_BaseComposition",
    "_MetadataRequester",
    "_VisualBlock",
    "_check_feature_names",
    "_check_method_params",
    "_check_sample_weight",
    "_fit_context",
    "_num_samples",
    "_raise_for_params",
    "_safe_indexing",
    "predict_stages",
    "validate_parameter_constraints",
]
