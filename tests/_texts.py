"""A small fitted cascade of texts, for tests of inputs that are not numbers."""

from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skadaptive import AdaptiveCascadeClassifier

TEXTS = ["good great", "bad awful", "good fine", "poor bad", "nice", "awful"] * 20
LABELS = [1, 0, 1, 0, 1, 0] * 20


def text_cascade(cv=3) -> AdaptiveCascadeClassifier:
    """Two hashing-vectorizer logistic regressions fitted on ``TEXTS``."""
    return AdaptiveCascadeClassifier(
        [
            (
                "a",
                make_pipeline(HashingVectorizer(n_features=64), LogisticRegression()),
            ),
            (
                "b",
                make_pipeline(HashingVectorizer(n_features=256), LogisticRegression()),
            ),
        ],
        costs=[1, 5],
        cv=cv,
    ).fit(TEXTS, LABELS)
