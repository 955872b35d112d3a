"""Recognition results → Discord embeds and files. No I/O, no state."""

from __future__ import annotations

import discord

from bot.vision.recognizer import Recognition

NO_ANIME_FACE = "I found no anime face in that picture."
NOT_RECORDED = "I can't record corrections right now, so this answer has no correction menu."
SURE_COLOUR = discord.Colour.green()
UNSURE_COLOUR = discord.Colour.orange()


def percent(score: float) -> str:
    """``0.98315`` → ``98.3%``."""
    return f"{score * 100:.1f}%"


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
) -> discord.Embed:
    """One field per face (the main face first), the top labels with their scores.

    ``correctable`` is False when the reply has no correction menu; ``note`` then says why
    (the answer could not be stored, or it is only a best guess).
    """
    faces = recognition.faces
    any_sure = any(not face.prediction.unsure for face in faces)
    if len(faces) == 1:
        title = "Who is this?"
    else:
        title = f"{len(faces)} faces found" + (" (numbered on the picture)" if annotated else "")
    embed = discord.Embed(title=title, colour=SURE_COLOUR if any_sure else UNSURE_COLOUR)
    for number, face in enumerate(faces, start=1):
        prediction = face.prediction
        best = prediction.best
        lines = []
        if prediction.unsure:
            lines.append(f"not sure — maybe **{best.label}** ({percent(best.score)})")
        else:
            lines.append(f"**{best.label}** ({percent(best.score)})")
        lines.extend(
            f"{score.label} ({percent(score.score)})" for score in prediction.scores[1:labels_shown]
        )
        name = "Main face" if number == 1 else f"Face {number}"
        if len(faces) > 1:
            name = f"{number}. {name}"
        embed.add_field(name=name, value="\n".join(lines), inline=len(faces) > 1)
    detectors = sorted({face.detector for face in faces})
    footer = (
        f"model {recognition.model_version} · {recognition.seconds * 1000:.0f} ms · "
        f"found by {', '.join(detectors)}"
    )
    if correctable:
        footer += " · wrong? use the menu below"
    embed.description = note
    embed.set_footer(text=footer)
    return embed


def error_embed(message: str) -> discord.Embed:
    """A short, specific answer to something that went wrong."""
    return discord.Embed(description=message, colour=discord.Colour.red())
