"""Every sentence the bot shows people has a Japanese translation (bot/locales/ja.toml).

The English text is the catalog's key, so the sentences are found in the source: the first
argument of every ``texts(...)``, ``phrase(...)`` and ``Phrase(...)`` call, of every
``raise SomethingError(...)`` (a BotError's message reaches people through the error
handler), and the texts of the tables translated by key. A sentence added without a
translation fails here, naming it (commands' descriptions: tests/e2e/test_commands_e2e.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cogs.errors import PERMISSION_NAMES
from bot.i18n import Catalog
from bot.review_pages import HELD_BECAUSE
from bot.training_progress import STAGES
from bot.vision.decode import KINDS_OF_FILE

BOT = Path(__file__).resolve().parents[1] / "bot"
COMMAND_LINE = {"__main__.py", "cli_classify.py", "config.py", "demo.py", "install.py"}
"""Modules whose messages go to the operator's terminal (in English), not to Discord."""
TRANSLATED_CALLS = {"texts", "phrase", "Phrase"}


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(BOT.rglob("*.py")):
        if path.name not in COMMAND_LINE:
            yield path, ast.parse(path.read_text("utf-8"))


def constants() -> dict[str, str]:
    """Module-level ``NAME = "text"`` of every module (the names are unique enough)."""
    found = {}
    for _, tree in modules():
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def texts_of(node: ast.expr, named: dict[str, str]) -> list[str]:
    """The English text(s) an argument stands for: a literal, a constant, or either branch
    of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in named:
        return [named[node.id]]
    if isinstance(node, ast.IfExp):
        return texts_of(node.body, named) + texts_of(node.orelse, named)
    return []


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


OPERATORS_ERRORS = {"BundleError", "CascadeError", "DetectorConfigError", "DemoPicturesError"}
"""Errors of the installation (a model or cascade that cannot be read): the operator's to
fix, from the log; they stay in English."""


def errors_shown_to_people() -> set[str]:
    """Names of BotError and its subclasses anywhere in the bot, but the operator's."""
    names = {"BotError"}
    classes = [
        node for _, tree in modules() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
    ]
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
            if node.name not in names and bases & names:
                names.add(node.name)
                grew = True
    return names - OPERATORS_ERRORS


def handed_to_the_catalog() -> Iterator[tuple[str, ast.expr]]:
    """(where, first argument) of every call that hands a sentence to the catalog: the
    translating calls, and the constructors of errors people see."""
    calls = TRANSLATED_CALLS | errors_shown_to_people()
    for path, tree in modules():
        where = str(path.relative_to(BOT.parent))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called_name(node) in calls and node.args:
                yield f"{where}:{node.lineno}", node.args[0]


def source_sentences() -> set[tuple[str, str]]:
    """(where, English text) of every sentence the source hands to the catalog."""
    named = constants()
    return {
        (where.split(":")[0], text)
        for where, argument in handed_to_the_catalog()
        for text in texts_of(argument, named)
        if text
    }


def table_sentences() -> set[tuple[str, str]]:
    tables = {
        "STAGES": STAGES.values(),
        "HELD_BECAUSE": HELD_BECAUSE.values(),
        "PERMISSION_NAMES": PERMISSION_NAMES.values(),
        "KINDS_OF_FILE": KINDS_OF_FILE,
    }
    return {(name, text) for name, values in tables.items() for text in values}


JAPANESE = Catalog.load().texts("ja").table


@pytest.mark.parametrize("where_text", sorted(source_sentences() | table_sentences()))
def test_every_sentence_has_a_japanese_translation(where_text: tuple[str, str]) -> None:
    where, text = where_text
    assert text in JAPANESE, f"{where}: no Japanese for {text!r}"


def test_no_sentence_is_formatted_before_the_catalog_sees_it() -> None:
    formatted = [
        where for where, argument in handed_to_the_catalog() if isinstance(argument, ast.JoinedStr)
    ]
    assert formatted == [], "use a text with {names} and pass the values: " + ", ".join(formatted)
