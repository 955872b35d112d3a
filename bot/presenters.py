"""Recognition results → Discord embeds. No I/O, no state.

What members read says who it is in its first words, in the reader's language (``texts``),
with names as people write them. Internals (model version, timings, detectors) go to the
log and ``/model``, never into an answer.
"""

from __future__ import annotations

from collections.abc import Mapping

import discord

from bot.i18n import ENGLISH, Texts
from bot.names import character_name
from bot.vision.classifier import Prediction
from bot.vision.recognizer import Recognition

NO_ANIME_FACE = "I found no anime face in that picture."
NOT_RECORDED = "I can't record corrections right now, so this answer has no correction menu."
CORRECT_ME = "Wrong? Choose the right name below."
SURE_COLOUR = discord.Colour.green()
UNSURE_COLOUR = discord.Colour.orange()
ERROR_COLOUR = discord.Colour.red()
CLOSE_RATIO = 0.5
"""A runner-up is shown when its score is at least this share of the answer's."""
LOW_SCORE = 0.6
"""Under this score "not sure" is explained by the score; above it, by the face being
unlike the pictures the model learnt from (the unsure rule weighs both)."""
MAX_TITLE = 256
UNFAMILIAR = "Not sure — it looks like {name}, but unlike the pictures I learnt from"


def percent(score: float) -> str:
    """``0.98315`` → ``98%`` (people read whole percents)."""
    return f"{score * 100:.0f}%"


def runners_up(prediction: Prediction, shown: int) -> list[tuple[str, float]]:
    """The next labels worth mentioning: close to the answer, at most ``shown - 1``."""
    best = prediction.best.score
    return [
        (score.label, score.score)
        for score in prediction.scores[1:shown]
        if score.score >= best * CLOSE_RATIO
    ]


def headline(
    prediction: Prediction, texts: Texts = ENGLISH, names: Mapping[str, str] | None = None
) -> str:
    """One face's answer in a sentence that starts with who it is (or that it is not sure)."""
    best = prediction.best
    name = character_name(best.label, names)
    if not prediction.unsure:
        return texts("{name} ({score})", name=name, score=percent(best.score))
    if best.score < LOW_SCORE:
        return texts(
            "Not sure — it looks most like {name} ({score})", name=name, score=percent(best.score)
        )
    return texts(
        "Not sure — it looks like {name}, but unlike the pictures I learnt from", name=name
    )


def alternatives(
    prediction: Prediction,
    labels_shown: int,
    texts: Texts = ENGLISH,
    names: Mapping[str, str] | None = None,
) -> str | None:
    """The close runners-up in words (``or Sakurauchi Riko (31%)``), or None."""
    others = runners_up(prediction, labels_shown)
    if not others:
        return None
    listed = ", ".join(
        texts("{name} ({score})", name=character_name(label, names), score=percent(score))
        for label, score in others
    )
    return texts("or {names}", names=listed)


def face_line(
    prediction: Prediction,
    labels_shown: int,
    texts: Texts = ENGLISH,
    names: Mapping[str, str] | None = None,
) -> str:
    """One face in one line: the headline, then its close runners-up."""
    line = headline(prediction, texts, names)
    others = alternatives(prediction, labels_shown, texts, names)
    return f"{line} · {others}" if others else line


BEST_GUESS = (
    "I found no anime face in that picture, so this is only my best guess for the picture "
    "as a whole (it cannot be corrected)."
)
NO_FACE_TRY_GUESS = (
    f"{NO_ANIME_FACE} Use `/identify` with `guess: True` to see my best guess anyway."
)


def answer_embed(
    recognition: Recognition,
    *,
    labels_shown: int,
    annotated: bool,
    correctable: bool = True,
    note: str | None = None,
    thumbnail: str | None = None,
    texts: Texts = ENGLISH,
    names: Mapping[str, str] | None = None,
) -> discord.Embed:
    """The answer to a picture: who each face is, the main face first.

    One face: its answer is the title, close runners-up below, ``thumbnail`` (an
    ``attachment://`` URL of its crop) beside it. Several: their names in the title, one
    numbered line each (numbered like the picture when ``annotated``). The colour is the
    main face's. ``correctable`` says the correction menu is below; ``note`` (already in
    the reader's language) says why something is missing.
    """
    faces = recognition.faces
    main = faces[0].prediction
    colour = UNSURE_COLOUR if main.unsure else SURE_COLOUR
    lines: list[str] = []
    if len(faces) == 1:
        title = headline(main, texts, names)
        others = alternatives(main, labels_shown, texts, names)
        if others:
            lines.append(others)
    else:
        title = ", ".join(
            texts("not sure")
            if face.prediction.unsure
            else character_name(face.prediction.best.label, names)
            for face in faces
        )
        for number, face in enumerate(faces, start=1):
            lines.append(f"**{number}.** " + face_line(face.prediction, labels_shown, texts, names))
        if annotated:
            lines.append(texts("The faces are numbered on the picture."))
    if note:
        lines.append(f"*{note}*")
    embed = discord.Embed(
        title=_fit(title, MAX_TITLE), description="\n".join(lines) or None, colour=colour
    )
    if thumbnail is not None:
        embed.set_thumbnail(url=thumbnail)
    if correctable:
        embed.set_footer(text=texts(CORRECT_ME))
    return embed


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_embed(message: str) -> discord.Embed:
    """A short, specific answer to something that went wrong, starting with a capital: why
    a picture could not be read is worded to follow "not used: " in ``/teach`` (``the PNG
    picture is truncated …``) and is the whole answer to a post or ``/identify``."""
    return discord.Embed(description=message[:1].upper() + message[1:], colour=ERROR_COLOUR)
