"""The gate a retrained model passes before it serves: is it better than the serving one?

Both are judged on examples neither was trained on, by cross-validation on cached
embeddings. Every example has a fold fixed by the hash of its picture (``FOLDS`` folds).
For each fold, one head is fitted on the serving model's training set minus the fold, and
one on the candidate's training set minus the fold; both name the fold's examples (of
either training set; examples deleted since are never looked at). The comparison counts
only the characters both know; characters new to the candidate are reported apart.

The noise rule. Over the shared characters' examples, ``worse`` counts those the serving
model's head named right and the candidate's wrong, ``better`` the reverse. If both models
were equally good each of these disagreements would go either way with probability ½, so
the candidate is refused when a one-sided sign test finds ``worse`` too large to be chance
(p < ``SIGNIFICANCE``). A character drops sharply, and the candidate is refused, when at
least ``SHARP_DROP_EXAMPLES`` more of its examples are named wrongly than before and its
accuracy falls by ``SHARP_DROP_POINTS`` or more.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from bot.names import character_name
from bot.phrases import Phrase, phrase
from trainer.head import fit_head

FOLDS = 5
SIGNIFICANCE = 0.05
SHARP_DROP_EXAMPLES = 3
SHARP_DROP_POINTS = 0.2
REGULARISATION = 100.0


@dataclass(frozen=True)
class CharacterResult:
    """One character's examples named right before (by a head like the serving model's,
    None when it did not know the character) and after (by the candidate's)."""

    label: str
    examples: int
    right_before: int | None
    right_after: int

    @property
    def before(self) -> float | None:
        """Accuracy before, or None for a character new to the candidate."""
        return None if self.right_before is None else self.right_before / self.examples

    @property
    def after(self) -> float:
        """Accuracy after."""
        return self.right_after / self.examples

    @property
    def drops_sharply(self) -> bool:
        """Whether this character is named much worse than before (see the module)."""
        if self.right_before is None or self.before is None:
            return False
        lost = self.right_before - self.right_after
        return lost >= SHARP_DROP_EXAMPLES and self.before - self.after >= SHARP_DROP_POINTS


@dataclass(frozen=True)
class GateReport:
    """The comparison of a candidate with the serving model, and the decision."""

    promote: bool
    reason: Phrase
    """Why, in words (the reply to ``/retrain`` shows it)."""
    compared: int
    """Examples of characters both know that both heads named."""
    right_before: int
    right_after: int
    worse: int
    """Examples the serving model named right and the candidate wrong."""
    better: int
    """Examples the serving model named wrong and the candidate right."""
    p_value: float
    characters: tuple[CharacterResult, ...]
    """Characters both know, alphabetically."""
    new_characters: tuple[CharacterResult, ...]
    """Characters only the candidate knows."""

    @property
    def before(self) -> float | None:
        """The serving model's accuracy on the compared examples."""
        return self.right_before / self.compared if self.compared else None

    @property
    def after(self) -> float | None:
        """The candidate's accuracy on the compared examples."""
        return self.right_after / self.compared if self.compared else None

    @property
    def sharp_drops(self) -> tuple[CharacterResult, ...]:
        """The characters that drop sharply."""
        return tuple(c for c in self.characters if c.drops_sharply)


def fold_of(group: str, folds: int = FOLDS) -> int:
    """The fold an example belongs to, fixed by its picture's hash."""
    return int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big") % folds


def sign_test(worse: int, better: int) -> float:
    """One-sided p-value of seeing ``worse`` or more of ``worse + better`` disagreements go
    against the candidate if each went either way with probability ½."""
    n = worse + better
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n


def compare(
    features: Mapping[int, np.ndarray],
    labels: Mapping[int, str],
    groups: Mapping[int, str],
    serving_set: Sequence[int],
    candidate_set: Sequence[int],
    *,
    folds: int = FOLDS,
    on_fold: Callable[[int, int], None] | None = None,
) -> GateReport:
    """Cross-validate heads fitted on ``serving_set`` and on ``candidate_set`` (example ids;
    ``features[i]`` is ``2×D``, ``labels[i]`` its character) and decide (module docstring).
    ``on_fold(done, folds)`` is told as each fold is finished.

    Both are judged on every example of either set (of a character the candidate knows);
    serving-set examples without features (deleted since) are left out.
    """
    serving = [i for i in serving_set if i in features]
    candidate = list(candidate_set)
    known_before = {labels[i] for i in serving}
    known_after = {labels[i] for i in candidate}
    examples = sorted({*serving, *candidate})
    fold = {i: fold_of(groups[i], folds) for i in examples}
    before_right: dict[int, bool] = {}
    after_right: dict[int, bool] = {}
    with threadpool_limits(limits=1):
        for f in range(folds):
            tested = [i for i in examples if fold[i] == f and labels[i] in known_after]
            if tested:
                training = [i for i in candidate if fold[i] != f]
                after_right |= _named_right(features, labels, training, tested)
                shared = [i for i in tested if labels[i] in known_before]
                if shared:
                    training = [i for i in serving if fold[i] != f]
                    before_right |= _named_right(features, labels, training, shared)
            if on_fold is not None:
                on_fold(f + 1, folds)
    return _decide(labels, examples, before_right, after_right, known_before)


def _named_right(
    features: Mapping[int, np.ndarray],
    labels: Mapping[int, str],
    training: list[int],
    tested: list[int],
) -> dict[int, bool]:
    """Fit a head on ``training`` and say which of ``tested`` it names right (all wrong when
    ``training`` has fewer than two characters: no head can be fitted)."""
    names = sorted({labels[i] for i in training})
    if len(names) < 2:
        return dict.fromkeys(tested, False)
    index = {name: n for n, name in enumerate(names)}
    x = np.stack([features[i] for i in training])
    y = np.array([index[labels[i]] for i in training])
    head = fit_head(x, y, names, c=REGULARISATION)
    probs, _ = head.score(np.stack([features[i][0] for i in tested]))
    predicted = probs.argmax(axis=1)
    return {i: head.labels[p] == labels[i] for i, p in zip(tested, predicted, strict=True)}


def _decide(
    labels: Mapping[int, str],
    examples: list[int],
    before_right: dict[int, bool],
    after_right: dict[int, bool],
    known_before: set[str],
) -> GateReport:
    by_label: dict[str, list[int]] = {}
    for i in examples:
        if i in after_right:
            by_label.setdefault(labels[i], []).append(i)
    characters, new_characters = [], []
    for label in sorted(by_label):
        ids = by_label[label]
        after = sum(after_right[i] for i in ids)
        if label in known_before:
            characters.append(
                CharacterResult(label, len(ids), sum(before_right[i] for i in ids), after)
            )
        else:
            new_characters.append(CharacterResult(label, len(ids), None, after))
    compared = [i for i in before_right if i in after_right]
    worse = sum(before_right[i] and not after_right[i] for i in compared)
    better = sum(after_right[i] and not before_right[i] for i in compared)
    p_value = sign_test(worse, better)
    report = GateReport(
        promote=True,
        reason=Phrase(""),
        compared=len(compared),
        right_before=sum(before_right[i] for i in compared),
        right_after=sum(after_right[i] for i in compared),
        worse=worse,
        better=better,
        p_value=p_value,
        characters=tuple(characters),
        new_characters=tuple(new_characters),
    )
    promote, reason = _verdict(report)
    return dataclasses.replace(report, promote=promote, reason=reason)


def _verdict(report: GateReport) -> tuple[bool, Phrase]:
    if report.worse > report.better and report.p_value < SIGNIFICANCE:
        return False, phrase(
            "it names {worse} of the compared pictures wrongly that the current model "
            "named right, and only {better} the other way round: worse beyond chance",
            worse=report.worse,
            better=report.better,
        )
    if drops := report.sharp_drops:
        names = ", ".join(character_name(c.label) for c in drops)
        return False, phrase("it is much worse at {names} than the current model", names=names)
    if not report.compared:
        return True, phrase("no picture of a character both know to compare them on")
    return True, phrase(
        "not worse than the current model on {compared} pictures neither was "
        "trained on ({worse} named right before and wrong now, {better} the other way round)",
        compared=report.compared,
        worse=report.worse,
        better=report.better,
    )
