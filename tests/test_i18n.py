"""Texts in the reader's language (bot.i18n)."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest
from discord import app_commands

from bot.i18n import Catalog, CatalogTranslator, placeholders


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "fr.toml").write_text('[a]\n"Hello {name}" = "Bonjour {name}"\n', "utf-8")
    (tmp_path / "pt-BR.toml").write_text('"Hello {name}" = "Olá {name}"\n', "utf-8")
    return Catalog.load(tmp_path)


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("fr", "Bonjour Rem"),
        ("pt-BR", "Olá Rem"),
        ("en-US", "Hello Rem"),
        ("ko", "Hello Rem"),
        (None, "Hello Rem"),
        (discord.Locale.french, "Bonjour Rem"),
    ],
)
def test_a_text_is_in_the_readers_language_or_english(
    catalog: Catalog, locale: discord.Locale | str | None, text: str
) -> None:
    assert catalog.texts(locale)("Hello {name}", name="Rem") == text


def test_a_translation_that_drops_a_placeholder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "de.toml").write_text('"Hello {name}" = "Hallo"\n', "utf-8")
    with pytest.raises(ValueError, match=r"de.toml: 'Hallo' must fill in exactly \['name'\]"):
        Catalog.load(tmp_path)


def test_every_shipped_translation_keeps_its_placeholders() -> None:
    catalog = Catalog.load()
    assert "ja" in catalog.locales
    for english, translated in catalog.texts("ja").table.items():
        assert placeholders(english) == placeholders(translated), english


async def test_the_translator_gives_discord_a_commands_translation(catalog: Catalog) -> None:
    translator = CatalogTranslator(catalog)
    context = app_commands.TranslationContext(app_commands.TranslationContextLocation.other, None)
    string = app_commands.locale_str("Hello {name}")
    assert await translator.translate(string, discord.Locale.french, context) == "Bonjour {name}"
    assert await translator.translate(string, discord.Locale.german, context) is None
