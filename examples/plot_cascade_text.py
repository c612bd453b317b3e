"""
==========================================
A text cascade: hashed words, then n-grams
==========================================

A cascade's stages receive ``X`` as it is, so a list of strings works when
every stage is a :class:`~sklearn.pipeline.Pipeline` that starts with its own
vectorizer. The first stage hashes words
(:class:`~sklearn.feature_extraction.text.HashingVectorizer`, no vocabulary to
build) into a linear model; the second reads character n-grams
(:class:`~sklearn.feature_extraction.text.TfidfVectorizer`) into a logistic
regression, which is slower but robust to misspellings.

The corpus is synthetic -- short support tickets about four topics, written
from small vocabularies with typos -- so nothing is downloaded.
"""

# %%
# A small corpus with typos
# -------------------------
# Each ticket mixes a few topic words with common filler words, and sometimes
# a word of another topic. In hastily typed tickets the topic words are
# misspelled: a word model has rarely seen the misspelling, but many of its
# character n-grams are intact.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.plot import CostAccuracyDisplay

TOPICS = {
    "billing": "invoice refund charge payment card receipt subscription price "
    "discount billing overcharged credit",
    "shipping": "parcel delivery courier tracking shipment package arrived "
    "delayed address warehouse dispatch postage",
    "login": "password login account locked reset username authentication "
    "verification code email security session",
    "hardware": "screen battery keyboard charger broken cracked speaker "
    "overheating button cable display power",
}
FILLER = (
    "hello please help my the a i have since yesterday again still not working "
    "thanks urgent today can you this is it with for about order customer "
    "problem issue question support week"
).split()
rng = np.random.RandomState(0)


def misspell(word):
    """Drop, double or swap a letter."""
    i = rng.randint(1, len(word) - 1)
    kind = rng.randint(3)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def ticket(topic):
    """One to three topic words, maybe a word of another topic, and filler;
    and whether it was typed hastily."""
    words = list(rng.choice(TOPICS[topic].split(), size=rng.randint(1, 4)))
    hasty = rng.rand() < 0.25
    if hasty:  # two typos per topic word
        words = [misspell(misspell(w)) for w in words]
    if rng.rand() < 0.3:
        other = rng.choice([t for t in TOPICS if t != topic])
        words.append(rng.choice(TOPICS[other].split()))
    words += list(rng.choice(FILLER, size=rng.randint(4, 10)))
    rng.shuffle(words)
    return " ".join(words), hasty


labels = rng.choice(list(TOPICS), size=3000)
texts, hasty = zip(*[ticket(topic) for topic in labels])
texts, hasty = list(texts), np.array(hasty)
print(texts[0], "->", labels[0])
print(texts[1], "->", labels[1])
X_train, X_test, y_train, y_test, _, hasty_test = train_test_split(
    texts, labels, hasty, test_size=0.4, stratify=labels, random_state=0
)

# %%
# Two pipelines as stages
# -----------------------
# Stage 1: hashed words into a linear model trained by SGD (logistic loss, so
# that it has ``predict_proba``).
words = make_pipeline(
    HashingVectorizer(n_features=2**14, alternate_sign=False),
    SGDClassifier(loss="log_loss", alpha=1e-5, random_state=0),
)
# Stage 2: TF-IDF of character 2- to 4-grams into a logistic regression.
char_ngrams = make_pipeline(
    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
    LogisticRegression(C=10, solver="saga", max_iter=300),
)
cascade = AdaptiveCascadeClassifier(
    [("words", words), ("char_ngrams", char_ngrams)],
    costs="auto",  # measured seconds per row, vectorizing included
    cost_weight=0.01,
    cv=3,
    random_state=0,
).fit(X_train, y_train)

full = cascade.cumulative_costs_[-1]
print(f"measured cost per row: {np.round(cascade.costs_ * 1e6, 1)} microseconds")
for name, stage in cascade.named_estimators_.items():
    print(f"{name:>12} alone: {stage.score(X_test, y_test):.3f}")
print(
    f"     cascade: {cascade.score(X_test, y_test):.3f} at "
    f"{cascade.predict_cost(X_test).mean() / full:.0%} of the cost of both"
)

# %%
# Which tickets go on to the n-gram model?
# ----------------------------------------
# Nearly every hastily typed ticket goes on: the word model has rarely seen
# its misspelled words. At this small ``cost_weight`` (0.01: the whole
# cost of both stages is worth one point of accuracy) many clean tickets go on
# too; the larger one below keeps more of them at the word model.
deferred = cascade.predict_exit(X_test) == 1
print(f"hastily typed tickets deferred: {deferred[hasty_test].mean():.0%}")
print(f"other tickets deferred: {deferred[~hasty_test].mean():.0%}")
print(f"{deferred.mean():.0%} of the test tickets were deferred, e.g.:")
for text in np.asarray(X_test, dtype=object)[deferred][:3]:
    print("   ", text)

# %%
# The trade-off
# -------------
display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test)
display.ax_.set_title("support tickets: hashed words -> character n-grams")
plt.show()

# %%
# A cheaper operating point
# -------------------------
# ``cost_weight=0.01`` defers a ticket unless the word model is almost surely
# right. Valuing the whole cost at ten accuracy points instead moves along the
# frontier, without refitting either pipeline:
cheaper = cascade.with_policy(cost_weight=0.1)
print(
    f"cost_weight=0.1: accuracy {cheaper.score(X_test, y_test):.3f} at "
    f"{cheaper.predict_cost(X_test).mean() / full:.0%} of the cost of both"
)
