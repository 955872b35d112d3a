"""Character names: one key to match them by, display names as people write them."""

from __future__ import annotations

import pytest

from bot.errors import InvalidNameError
from bot.names import display_name, folder_name, normalise_name, typed_name
from trainer.dataset import label_from_folder


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Nishikino Maki", "nishikino maki"),
        ("  nishikino   MAKI ", "nishikino maki"),
        ("nishikino_maki", "nishikino maki"),
        ("Ｍａｋｉ", "maki"),  # full-width letters
        ("Hatsune\tMiku", "hatsune miku"),
    ],
)
def test_names_are_normalised_to_one_key(raw: str, key: str) -> None:
    assert normalise_name(raw) == key


@pytest.mark.parametrize("raw", ["", "   ", "x" * 101])
def test_empty_or_overlong_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidNameError, match="character name"):
        normalise_name(raw)


def test_display_names_keep_their_case_and_lose_stray_spaces() -> None:
    assert display_name("  Nishikino_Maki ") == "Nishikino Maki"


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("  Nishikino Maki ", "Nishikino Maki"),
        ("Kaname  Madoka", "Kaname Madoka"),
        ("C.C.", "C.C."),
        ("Shiro-chan", "Shiro-chan"),
        ("O'Brien", "O'Brien"),
        ("初音ミク", "初音ミク"),
    ],
)
def test_typed_names_are_trimmed_and_keep_their_case(typed: str, shown: str) -> None:
    assert typed_name(typed) == shown


@pytest.mark.parametrize("typed", ["", "   ", "x" * 65, "<@everyone>", "maki/../../etc", "a_b"])
def test_bad_typed_names_are_refused(typed: str) -> None:
    with pytest.raises(InvalidNameError):
        typed_name(typed)


@pytest.mark.parametrize("name", ["Nishikino Maki", "C.C.", "O'Brien", "初音ミク", "Shiro-chan"])
def test_a_folder_name_reads_back_as_the_same_key(name: str) -> None:
    assert label_from_folder(folder_name(name)) == normalise_name(name)


@pytest.mark.parametrize(
    ("name", "folder"), [("Nishikino Maki", "Nishikino_Maki"), (".hack", "hack")]
)
def test_folder_names_have_no_spaces_and_no_leading_dot(name: str, folder: str) -> None:
    assert folder_name(name) == folder
