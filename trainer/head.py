"""Fitting the head over face embeddings: a softmax classifier plus a gallery for
"familiarity", cross-validation, the unsure threshold, and the choice of training faces.

Everything here is numpy (and scikit-learn for the fit). Scoring is
:meth:`bot.vision.head.Head.score`, the code the bot runs, so what ships is what was
validated here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from bot.vision.head import Head, UnsureRule, l2_normalise
from trainer import progress

TOP_K = 3
"""Familiarity is the mean similarity to a label's ``TOP_K`` nearest training faces."""
MAX_PROTOTYPES_PER_LABEL = 256
"""Caps the size of the exported model when a label has very many training faces."""


def fit_head(
    features: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    c: float = 100.0,
    seed: int = 0,
    unsure: UnsureRule | None = None,
    gallery_dims: np.ndarray | None = None,
) -> Head:
    """Fit on ``features`` (``N×2×F``: each face as seen and mirrored) and label ids ``labels``.

    ``names`` are the labels' names by id (default: the ids as text); ``unsure`` the rule
    the head carries (default: never unsure, until cross-validation has chosen one);
    ``gallery_dims`` the embedding dimensions familiarity compares
    (:meth:`bot.vision.bundle.BackboneInfo.familiarity_dims`; None: all).
    """
    n, flips, dim = features.shape
    x = features.reshape(n * flips, dim)
    y = np.repeat(labels, flips)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("at least two labels are needed to train a classifier")
    # With far fewer faces than feature dimensions, the L2-penalised solution lies in the span
    # of the training rows: fit in an orthonormal basis of that span (same optimum, much
    # faster). The basis comes from the rows' Gram matrix: with x·xᵀ = U·S²·Uᵀ the rows'
    # coordinates are U·S and the basis is S⁻¹·Uᵀ·x, never formed (an SVD of x gives the same
    # and took five times as long: 5.7 s against 1.2 s for 1,500 × 7,680 on one core).
    x64 = x.astype(np.float64)
    eigenvalues, vectors = np.linalg.eigh(x64 @ x64.T)
    kept = eigenvalues > eigenvalues.max() * 1e-10  # mirrored or repeated faces add no rank
    spread = np.sqrt(eigenvalues[kept])
    vectors = vectors[:, kept]
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(vectors * spread, y)
    label_count = int(labels.max()) + 1
    weights = np.zeros((dim, label_count), np.float32)
    bias = np.full(label_count, -1e4, np.float32)  # a label with no faces is never predicted
    coef = ((model.coef_ / spread) @ vectors.T) @ x64
    intercept = model.intercept_
    if len(model.classes_) == 2:
        # scikit-learn fits two labels as one logistic unit (the second label's log-odds);
        # split it into two softmax logits that give the same probabilities.
        coef = np.concatenate([-coef, coef]) / 2
        intercept = np.concatenate([-intercept, intercept]) / 2
    weights[:, model.classes_] = coef.T
    bias[model.classes_] = intercept
    rng = np.random.default_rng(seed)
    keep = []
    for label in classes:
        rows = np.flatnonzero(y == label)
        if len(rows) > MAX_PROTOTYPES_PER_LABEL:
            rows = np.sort(rng.choice(rows, MAX_PROTOTYPES_PER_LABEL, replace=False))
        keep.append(rows)
    rows = np.concatenate(keep)
    top_k = int(min(TOP_K, min(np.bincount(y[rows])[classes])))
    if names is None:
        names = [str(i) for i in range(label_count)]
    if len(names) < label_count:
        raise ValueError(f"{len(names)} names for {label_count} labels")
    gallery = l2_normalise(x[rows] if gallery_dims is None else x[rows][:, gallery_dims]).astype(
        np.float32
    )
    gallery_labels = y[rows].astype(np.int64)
    typical = typical_familiarity(gallery, gallery_labels, rows // flips, top_k, len(names))
    return Head(
        labels=tuple(names),
        weights=np.pad(weights, ((0, 0), (0, len(names) - label_count))),
        bias=np.pad(bias, (0, len(names) - label_count), constant_values=-1e4),
        gallery=gallery,
        gallery_labels=gallery_labels,
        top_k=top_k,
        unsure=unsure or UnsureRule(threshold=float("-inf")),
        gallery_dims=gallery_dims,
        typical_familiarity=typical,
    )


def typical_familiarity(
    gallery: np.ndarray, labels: np.ndarray, pictures: np.ndarray, top_k: int, label_count: int
) -> np.ndarray:
    """Each label's familiarity among its own training faces: for every gallery row, the mean
    similarity to the label's ``top_k`` nearest rows of *other* pictures (a face's mirrored
    copy would flatter it), averaged over the label's rows.

    A character the backbone was not fine-tuned on (a server's own) has pictures less alike
    than the characters it was tuned on, and a raw familiarity flagged its right answers
    "unsure" far more often: with three or five ``mixed5`` characters taught beside
    ``quint15``'s fifteen on the ``quint15`` backbone, 67% of theirs against 21% of the
    others'; relative to this, 43–47% against 24%. A label with fewer than two pictures gets
    the median of the others (0 when there are none): it has nothing to be compared with.
    """
    typical = np.full(label_count, np.nan, np.float32)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        own = pictures[rows]
        if len(np.unique(own)) < 2:
            continue
        block = gallery[rows] @ gallery[rows].T
        block[own[:, np.newaxis] == own[np.newaxis, :]] = -np.inf
        k = min(top_k, int(np.min(np.sum(np.isfinite(block), axis=1))))
        nearest = np.partition(block, block.shape[1] - k, axis=1)[:, -k:]
        typical[label] = float(nearest.mean())
    known = typical[np.isfinite(typical)]
    typical[~np.isfinite(typical)] = float(np.median(known)) if len(known) else 0.0
    return typical


def score(head: Head, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and familiarity (``M×C``) for faces as seen: ``features`` is ``M×D``, or
    ``M×2×D`` as stored for training, of which the first (unmirrored) row is used."""
    if features.ndim == 3:
        features = features[:, 0]
    return head.score(features)


@dataclass
class Validation:
    """Out-of-fold results of repeated stratified k-fold cross-validation."""

    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    folds: int
    repeats: int
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        count = int(max(self.labels.max(), self.predicted.max())) + 1
        self.confusion = np.zeros((count, count), np.int64)
        np.add.at(self.confusion, (self.labels, self.predicted), 1)

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy over every out-of-fold prediction."""
        return float((self.labels == self.predicted).mean())

    def per_label(self) -> dict[int, dict[str, float]]:
        """Precision, recall and support for each label id."""
        out = {}
        for label in range(self.confusion.shape[0]):
            tp = self.confusion[label, label]
            support = self.confusion[label].sum()
            predicted = self.confusion[:, label].sum()
            out[label] = {
                "precision": float(tp / predicted) if predicted else 0.0,
                "recall": float(tp / support) if support else 0.0,
                "support": int(support) // max(1, self.repeats),
            }
        return out


def combined_confidence(
    probs: np.ndarray, familiarity: np.ndarray, prob_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """The predicted label ids and the number the unsure rule compares with its threshold."""
    best = probs.argmax(axis=1)
    rows = np.arange(len(best))
    return best, familiarity[rows, best] + prob_weight * probs[rows, best]


def cross_validate(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    folds: int = 10,
    repeats: int = 3,
    c: float = 100.0,
    prob_weight: float = 0.5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    gallery_dims: np.ndarray | None = None,
) -> Validation:
    """Repeated stratified k-fold over pictures; folds shrink to the smallest label's size.

    Pictures with the same ``groups`` value (the same file under two names) always fall in
    the same fold, so a copy in the training part cannot answer for the one being tested.
    """
    smallest = int(np.bincount(labels)[np.unique(labels)].min())
    folds = max(2, min(folds, smallest))
    if groups is None:
        groups = np.arange(len(labels))
    truth, predicted, confidence = [], [], []
    fits = folds * repeats
    progress.report("validation", 0, fits)
    for repeat in range(repeats):
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed + repeat)
        for done, (train, test) in enumerate(
            splitter.split(features[:, 0], labels, groups), start=repeat * folds + 1
        ):
            head = fit_head(features[train], labels[train], c=c, gallery_dims=gallery_dims)
            probs, familiarity = score(head, features[test])
            best, conf = combined_confidence(probs, familiarity, prob_weight)
            truth.append(labels[test])
            predicted.append(best)
            confidence.append(conf)
            progress.report("validation", done, fits)
    return Validation(
        labels=np.concatenate(truth),
        predicted=np.concatenate(predicted),
        confidence=np.concatenate(confidence),
        folds=folds,
        repeats=repeats,
    )


def choose_unsure_rule(
    validation: Validation, *, false_flag_rate: float = 0.16, prob_weight: float = 0.5
) -> UnsureRule:
    """The threshold under which ``false_flag_rate`` of right out-of-fold answers would fall."""
    right = validation.confidence[validation.labels == validation.predicted]
    if len(right) == 0:
        return UnsureRule(threshold=float("inf"), prob_weight=prob_weight)
    return UnsureRule(threshold=float(np.quantile(right, false_flag_rate)), prob_weight=prob_weight)


def choose_faces(candidates: list[np.ndarray], labels: np.ndarray) -> list[int]:
    """For each picture, the index of the face that belongs to its label.

    ``candidates[i]`` holds the features (``faces×2×F``) of every face in picture ``i``, most
    prominent first. A picture with one face keeps it; in a group picture the face most like
    the label's other pictures wins, so a group shot filed under one character does not teach
    another character's face.
    """
    chosen = [0] * len(candidates)
    mean_of = [l2_normalise(c.sum(axis=1)) for c in candidates]
    for _ in range(2):
        centroids = {}
        for label in np.unique(labels):
            members = [mean_of[i][chosen[i]] for i in np.flatnonzero(labels == label)]
            centroids[label] = np.sum(members, axis=0)
        for i, faces in enumerate(mean_of):
            if len(faces) < 2:
                continue
            own = centroids[labels[i]] - faces[chosen[i]]  # leave this picture out
            if not np.any(own):
                continue
            chosen[i] = int(np.argmax(faces @ l2_normalise(own)))
    return chosen


@dataclass(frozen=True)
class HeadOptions:
    """How a head is fitted and validated."""

    regularisation: float = 100.0
    folds: int = 10
    repeats: int = 3
    false_flag_rate: float = 0.16
    prob_weight: float = 0.5


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    *,
    groups: np.ndarray | None = None,
    options: HeadOptions = HeadOptions(),
    gallery_dims: np.ndarray | None = None,
) -> tuple[Head, Validation]:
    """Fit the head on every face and cross-validate it to choose its unsure rule.

    ``features`` is ``N×2×D`` (as seen, mirrored), ``labels`` ids into ``names``, ``groups``
    keeps identical pictures in one fold. This needs no TensorFlow: a server's model is a
    head refitted on embeddings from a backbone it shares.
    """
    # The matrices are small: BLAS threads would only fight other work for the cores.
    with threadpool_limits(limits=1):
        validation = cross_validate(
            features,
            labels,
            folds=options.folds,
            repeats=options.repeats,
            c=options.regularisation,
            prob_weight=options.prob_weight,
            groups=groups,
            gallery_dims=gallery_dims,
        )
        head = fit_head(
            features, labels, names, c=options.regularisation, gallery_dims=gallery_dims
        )
    rule = choose_unsure_rule(
        validation, false_flag_rate=options.false_flag_rate, prob_weight=options.prob_weight
    )
    return head.with_unsure(rule), validation
