"""A sentence to show a person, kept apart from its language until it is shown.

Code that knows nothing of Discord or of the reader (storage, training, the vision layer)
says what happened as a :class:`Phrase`: the English text, which is the catalog's key
(``bot.i18n``), and the values to fill in. The cog that answers translates it for the
reader with ``texts(phrase)``; ``str(phrase)`` is the English sentence (for logs and the
command line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phrase:
    """``text`` (English, with ``{names}``) and the ``values`` to fill in; a value may be a
    Phrase itself, translated with the sentence around it."""

    text: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.values:
            return self.text
        return self.text.format(**{key: str(value) for key, value in self.values.items()})


def phrase(text: str, /, **values: Any) -> Phrase:
    """``Phrase(text, values)``, written as a call."""
    return Phrase(text, values)
