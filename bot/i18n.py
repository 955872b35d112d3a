"""Texts in the reader's language: one TOML file per language in ``bot/locales/``.

The English text in the code is the key, as with gettext: ``ja.toml`` maps each English
text to its Japanese one (the TOML sections only group them for the translator). A text
without a translation is shown in English. Adding a language is adding one file named
after its Discord locale (``de.toml``, ``pt-BR.toml``, …).

Command names and descriptions reach Discord through :class:`CatalogTranslator`
(discord.py's ``app_commands.Translator``) when the command tree is synced; answers are
translated with :meth:`Catalog.texts` for the interaction's locale, or for the server's
preferred locale in channel posts.

TOML is read by the standard library's ``tomllib``; .po files would need compiling (or a
dependency) for no gain at this size.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.phrases import Phrase

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a text fills in."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _flatten(table: Mapping[str, Any], into: dict[str, str], where: str) -> None:
    for key, value in table.items():
        if isinstance(value, Mapping):
            _flatten(value, into, f"{where}.{key}")
        elif isinstance(value, str):
            into[key] = value
        else:
            raise ValueError(f"{where}: the translation of {key!r} is not a string")


@dataclass(frozen=True)
class Texts:
    """The texts of one language: call it with an English text (and its values)."""

    table: Mapping[str, str]
    locale: str

    def __call__(self, message: str | Phrase, /, **values: object) -> str:
        """``message`` in this language, with ``values`` filled in (a Phrase brings its
        own; values that are Phrases are translated too)."""
        if isinstance(message, Phrase):
            values = {**message.values, **values}
            message = message.text
        text = self.table.get(message, message)
        if not values:
            return text
        return text.format(
            **{key: self(v) if isinstance(v, Phrase) else v for key, v in values.items()}
        )


ENGLISH = Texts({}, "en-US")


class Catalog:
    """Every language's texts, by Discord locale (``ja``, ``pt-BR``)."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]]) -> None:
        self._tables = {locale: dict(table) for locale, table in tables.items()}

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Catalog:
        """Read ``<locale>.toml`` files; a translation that drops or invents a ``{name}`` is
        refused here rather than failing in front of a reader."""
        tables: dict[str, dict[str, str]] = {}
        for path in sorted(directory.glob("*.toml")):
            table: dict[str, str] = {}
            _flatten(tomllib.loads(path.read_text("utf-8")), table, path.name)
            for english, translated in table.items():
                if placeholders(english) != placeholders(translated):
                    raise ValueError(
                        f"{path.name}: {translated!r} must fill in exactly "
                        f"{sorted(placeholders(english))}"
                    )
            tables[path.stem] = table
        return cls(tables)

    @property
    def locales(self) -> list[str]:
        """The languages there are translations for."""
        return sorted(self._tables)

    def texts(self, locale: discord.Locale | str | None) -> Texts:
        """The texts for ``locale``: its own file, else its language's (``pt`` for
        ``pt-BR``), else English."""
        if locale is None:
            return ENGLISH
        value = locale.value if isinstance(locale, discord.Locale) else str(locale)
        for candidate in (value, value.split("-")[0]):
            if candidate in self._tables:
                return Texts(self._tables[candidate], candidate)
        return ENGLISH

    def translation(self, locale: discord.Locale | str, message: str) -> str | None:
        """The translation of ``message`` into ``locale``, or None when it has none."""
        texts = self.texts(locale)
        return texts.table.get(message)


class CatalogTranslator(app_commands.Translator):
    """Gives Discord the commands' names and descriptions in every language of the catalog
    (synced as ``name_localizations`` and ``description_localizations``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The translation of a command's text, or None to leave it in English."""
        return self.catalog.translation(locale, string.message)
