"""Character names: the one normalisation every part of the bot matches names by.

A character has a *display name*, as people write it ("Nishikino Maki"), and a *key*,
``normalise_name`` of it ("nishikino maki"), which is what names are compared by: the
model's labels, folder names, votes, typed names and aliases all meet through the key.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from bot.errors import InvalidNameError

NAME_LENGTH = 100
"""The longest name stored (display names and keys)."""
TYPED_NAME_MAX = 64
"""The longest name a person may type."""
TYPED_NAME_PUNCTUATION = frozenset(" '-.")


def _tidy(name: str) -> str:
    """NFKC, underscores as spaces, single spaces, no spaces at either end."""
    return " ".join(unicodedata.normalize("NFKC", name).replace("_", " ").split())


def normalise_name(name: str) -> str:
    """The key a name is matched by: ``"  Nishikino_MAKI "`` becomes ``"nishikino maki"``.

    Raises ``InvalidNameError`` for a name that is empty or longer than ``NAME_LENGTH``.
    """
    return display_name(name).lower()


def display_name(name: str) -> str:
    """A name as it is shown and stored (case kept): ``"Nishikino_Maki "`` → ``"Nishikino Maki"``.

    Raises ``InvalidNameError`` for a name that is empty or longer than ``NAME_LENGTH``.
    """
    tidy = _tidy(name)
    if not tidy:
        raise InvalidNameError("A character name cannot be empty.")
    if len(tidy) > NAME_LENGTH:
        raise InvalidNameError(
            "A character name has at most {count} characters.", count=NAME_LENGTH
        )
    return tidy


def typed_name(raw: str) -> str:
    """A name a person typed, checked (1–64 characters: letters, digits, spaces, ' - .) and
    returned as its display name; ``InvalidNameError`` says what is wrong with it."""
    name = raw.strip()
    if not 1 <= len(name) <= TYPED_NAME_MAX:
        raise InvalidNameError("A name has 1 to {count} characters.", count=TYPED_NAME_MAX)
    if not all(ch.isalnum() or ch in TYPED_NAME_PUNCTUATION for ch in name):
        raise InvalidNameError("A name may only have letters, digits, spaces and ' - .")
    return display_name(name)


def folder_name(name: str) -> str:
    """The trainer's folder for a character (``normalise_name`` of it gives the key back):
    spaces as underscores, no path separators, no leading dot."""
    folder = display_name(name).replace(" ", "_").replace("/", "_").replace("\\", "_")
    return folder.lstrip(".") or "_"


def character_name(label: str, names: Mapping[str, str] | None = None) -> str:
    """A label as people write the name: the server's display name for it when there is one
    (``names`` maps lowercase keys to display names), else the label; either with each word
    capitalised if it is all lowercase (``nishikino maki`` → ``Nishikino Maki``: names
    stored before display names existed are lowercase)."""
    shown = (names or {}).get(" ".join(label.replace("_", " ").lower().split())) or label
    return shown.title() if shown == shown.lower() else shown
