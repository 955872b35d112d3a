"""``make demo``'s pictures (bot.demo), downloaded from a real local aiohttp server that
stands in for the public repository."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.demo import (
    FOLDERS,
    PICTURES,
    TRAIN,
    TRY,
    DemoPicture,
    download_pictures,
    main,
    prepare,
)
from bot.errors import DemoPicturesError
from tests.shared_data import DEV_SETS

QUINT15 = DEV_SETS / "quint15"


def made_up(name: str, size: int = 300) -> tuple[str, bytes]:
    """Bytes that stand for a picture in the repository at ``name``."""
    return name, hashlib.sha256(name.encode()).digest() * (size // 32)


FILES = dict(made_up(name) for name in ("a/1.jpeg", "a/2.jpeg", "b/7.jpeg", "b/8.jpeg"))
MANIFEST = (
    DemoPicture("train/char_a/1.jpeg", "a/1.jpeg", hashlib.sha256(FILES["a/1.jpeg"]).hexdigest()),
    DemoPicture("train/char_b/7.jpeg", "b/7.jpeg", hashlib.sha256(FILES["b/7.jpeg"]).hexdigest()),
    DemoPicture("try/char_a.jpeg", "a/2.jpeg", hashlib.sha256(FILES["a/2.jpeg"]).hexdigest()),
    DemoPicture("try/char_b.jpeg", "b/8.jpeg", hashlib.sha256(FILES["b/8.jpeg"]).hexdigest()),
)


async def serve(files: dict[str, bytes | str]) -> TestServer:
    """A started server with ``files`` under ``/dataset/``: bytes are served, a string is
    a redirect there; anything else is a 404."""

    async def file(request: web.Request) -> web.Response:
        content = files.get(request.match_info["path"])
        if content is None:
            raise web.HTTPNotFound()
        if isinstance(content, str):
            raise web.HTTPFound(content)
        return web.Response(body=content, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/dataset/{path:.+}", file)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def repository() -> AsyncIterator[dict[str, bytes | str]]:
    """The files the local "repository" serves; a test may change them before downloading."""
    yield dict(FILES)


@pytest.fixture
async def base_url(repository: dict[str, bytes | str]) -> AsyncIterator[str]:
    server = await serve(repository)
    yield str(server.make_url("/dataset"))
    await server.close()


async def download(folder: Path, base_url: str) -> None:
    """``download_pictures`` of the made-up manifest, in a thread (it runs its own loop)."""
    await asyncio.to_thread(
        download_pictures, folder, base_url=base_url, pictures=MANIFEST, seconds_each=5.0
    )


def entries(folder: Path) -> list[str]:
    """The names in ``folder``."""
    return sorted(path.name for path in folder.iterdir())


def files_under(folder: Path) -> set[str]:
    """Every file under ``folder``, as a relative path."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


async def test_the_pictures_are_laid_out_for_the_trainer_and_classify(
    tmp_path: Path, base_url: str
) -> None:
    folder = tmp_path / "pictures"

    await download(folder, base_url)

    assert files_under(folder) == {picture.destination for picture in MANIFEST}
    assert (folder / "try" / "char_b.jpeg").read_bytes() == FILES["b/8.jpeg"]
    assert entries(tmp_path) == ["pictures"]  # no staging folder left


async def test_a_picture_that_is_not_the_pinned_one_is_refused_and_nothing_is_kept(
    tmp_path: Path, repository: dict[str, bytes | str], base_url: str
) -> None:
    repository["b/7.jpeg"] = b"something else entirely" * 20
    folder = tmp_path / "pictures"

    with pytest.raises(DemoPicturesError) as refused:
        await download(folder, base_url)

    message = refused.value.user_message
    assert f"{base_url}/b/7.jpeg is not the picture this demo pins" in message
    assert f"expected {MANIFEST[1].sha256}" in message
    assert entries(tmp_path) == []


async def test_offline_says_precisely_where_to_put_which_pictures(tmp_path: Path) -> None:
    server = await serve({})
    closed = str(server.make_url("/dataset"))
    await server.close()  # nothing listens there any more
    folder = tmp_path / "pictures"

    with pytest.raises(DemoPicturesError) as refused:
        await download(folder, closed)

    message = refused.value.user_message
    assert "could not connect to 127.0.0.1" in message
    assert f"{folder / 'train'}/<character>/" in message
    assert "at least 2 characters" in message and "at least 2 pictures each" in message
    assert f"{folder / 'try'}/" in message and "pictures to name" in message
    assert entries(tmp_path) == []


async def test_a_picture_missing_from_the_repository_is_named(
    tmp_path: Path, repository: dict[str, bytes | str], base_url: str
) -> None:
    del repository["a/2.jpeg"]

    with pytest.raises(DemoPicturesError, match=r"a/2\.jpeg: the picture is gone \(HTTP 404\)"):
        await download(tmp_path / "pictures", base_url)


async def test_a_redirect_to_another_host_is_refused(
    tmp_path: Path, repository: dict[str, bytes | str], base_url: str
) -> None:
    repository["a/1.jpeg"] = base_url.replace("127.0.0.1", "localhost") + "/a/1.jpeg"

    with pytest.raises(DemoPicturesError, match=r"can only be downloaded from 127\.0\.0\.1"):
        await download(tmp_path / "pictures", base_url)


def test_pictures_already_in_place_are_used_without_the_network(tmp_path: Path) -> None:
    for name in ("train/mine/1.png", "try/who.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"\x89PNG")

    assert prepare(tmp_path, base_url="http://127.0.0.1:9/nowhere").startswith("using the pictures")


def test_files_in_another_layout_are_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "1.png").write_bytes(b"\x89PNG")

    with pytest.raises(DemoPicturesError, match="holds files, but no pictures in both"):
        prepare(tmp_path, base_url="http://127.0.0.1:9/nowhere")
    assert files_under(tmp_path) == {"mine/1.png"}


async def test_the_command_line_exits_2_with_the_message_when_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await serve({})
    closed = str(server.make_url("/dataset"))
    await server.close()

    code = await asyncio.to_thread(main, [str(tmp_path / "p"), "--base-url", closed])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: could not download ")
    assert "To run the demo on pictures of your own" in err


def test_the_manifest_has_ten_training_pictures_and_one_to_try_per_character() -> None:
    per_character = {c: sum(1 for t in TRAIN if t[0] == c) for c in FOLDERS}

    assert per_character == dict.fromkeys(FOLDERS, 10)
    assert sorted(c for c, _, _ in TRY) == sorted(FOLDERS)
    assert len({p.source for p in PICTURES}) == len(PICTURES)  # nothing twice


@pytest.mark.skipif(not QUINT15.is_dir(), reason=f"the shared dev pictures are absent ({QUINT15})")
async def test_the_pinned_hashes_are_those_of_the_repository_files(tmp_path: Path) -> None:
    # The shared dev set quint15 holds copies of the repository's files at the pinned commit.
    character_of = {folder: character for character, folder in FOLDERS.items()}
    files: dict[str, bytes | str] = {
        picture.source: (
            QUINT15 / character_of[picture.source.split("/")[0]] / picture.source.split("/")[1]
        ).read_bytes()
        for picture in PICTURES
    }
    server = await serve(files)
    try:
        done = await asyncio.to_thread(
            prepare, tmp_path / "pictures", str(server.make_url("/dataset"))
        )
    finally:
        await server.close()

    assert done == f"downloaded 44 demo pictures into {tmp_path / 'pictures'}"
    assert files_under(tmp_path / "pictures") == {p.destination for p in PICTURES}
