"""Reading the bot's answers as a member does: the main face's name comes first."""

from __future__ import annotations

import re

from tests.fake_discord import BotMessage

# "Char A (93%)", "Not sure — it looks most like Char A (41%)",
# "Not sure — it looks like Char A, but unlike the pictures I learnt from".
MAIN_FACE = re.compile(
    r"^(?:Not sure — it looks (?:most )?like )?(?P<name>[^(),—]+?)"
    r"(?: \((?P<percent>\d+)%\)|, but unlike)"
)


def answered_name(reply: BotMessage) -> str | None:
    """The main face's name in an answer (lowercase, as labels are), or None."""
    for embed in reply.embeds:
        match = MAIN_FACE.match(embed.get("title") or "")
        if match:
            return match["name"].lower()
    return None


def assert_names_one_of(reply: BotMessage, labels: tuple[str, ...]) -> str:
    """The answer's main face is one of ``labels``; returns which."""
    name = answered_name(reply)
    assert name in labels, reply.text
    return name
