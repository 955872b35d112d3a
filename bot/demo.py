"""``make demo``'s pictures where ``../shared`` is absent: 44 small public pictures of four
characters from four series, downloaded once and checked against pinned SHA-256 sums.

They are files of a public repository, OsvalDev/QuintupletRecognizer at commit
26c842b415bfaa2cd11a6806512b6f3ba7783367 (``dataset/<name>/<n>.jpeg``: pictures its author
found by web search; their copyright stays with their creators, and none of them is kept
in this repository). ``python -m bot.demo DIR`` lays them out as

    DIR/train/<character>/<n>.jpeg    ten per character, for ``python -m trainer train``
    DIR/try/<character>.jpeg          one more per character, for ``python -m bot classify``

All or nothing: the pictures are downloaded and checked in a temporary folder that
becomes ``DIR`` only when every one is right. A ``DIR`` that already has pictures in
``train/`` and ``try/`` (a finished download, or your own pictures in that layout) is
used as it is, with no network.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from bot.errors import DemoPicturesError, FetchError
from bot.fetch import FetchPolicy, ImageFetcher

BASE_URL = (
    "https://raw.githubusercontent.com/OsvalDev/QuintupletRecognizer/"
    "26c842b415bfaa2cd11a6806512b6f3ba7783367/dataset"
)
FOLDERS = {
    "asuna_yuuki": "asuna",
    "mai_sakurajima": "mai",
    "rei_ayanami": "rei",
    "zero_two": "zerotwo",
}
"""The repository's folder for each character."""
PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
MAX_PICTURE_BYTES = 1024 * 1024
PARALLEL_DOWNLOADS = 4

TRAIN = (
    ("asuna_yuuki", "177.jpeg", "cd70cf4da62f0e1f92ba84c6ceb828310ce57c00756a1f50fa9823bcdfb36e2a"),
    ("asuna_yuuki", "221.jpeg", "75ff81ccc438ec76af2e5dc5533a510f4947d2aea4b35daccc9be73dae414e8e"),
    ("asuna_yuuki", "225.jpeg", "8cdc361c35973c4db21d88f13361aba07ff7a710c830da1246a1ca1cc7feae90"),
    ("asuna_yuuki", "234.jpeg", "b7e2dfba02d41994a43e3c6543cdd1bd317137ee7d7d1de1f00c3602e4804229"),
    ("asuna_yuuki", "284.jpeg", "ee051a0c453df4b6c0163615e5477c95f360165d2264b223d3f74e009362664e"),
    ("asuna_yuuki", "309.jpeg", "984bba4b177bfdb8774814e5e8c4c0be83b82607211f5884745e29c6ac6c676c"),
    ("asuna_yuuki", "336.jpeg", "a5750397b668846f6fa3f3bc23b9170bb7c101a8fcb7b3695952ba2cde5ec7d3"),
    ("asuna_yuuki", "617.jpeg", "2c84ab8ab935e62bc5e94c133f16760c73a0db0ce494a2c3c8b4d3c79cbeb13d"),
    ("asuna_yuuki", "728.jpeg", "a9f99e334a0c1faf2023d184f50a0059851e7a5db78c4b1a1f4029f46215612f"),
    ("asuna_yuuki", "772.jpeg", "251959da90801379f17638c78761347e586f67ff865d95eb71ed1f25ed6cac95"),
    (
        "mai_sakurajima",
        "78.jpeg",
        "85c8e1e98f16c7391c1803d44e5bb74eef1d1c76041416e1651cdaa0f7c7b36f",
    ),
    (
        "mai_sakurajima",
        "120.jpeg",
        "bd9ce208f92681a7b3a6cd9be7a7eab81a5bc64670676a30c2a519d2fa912878",
    ),
    (
        "mai_sakurajima",
        "189.jpeg",
        "58af5db6ffa911fb26ef45b4e5546761a2d4d86a71872b06d7d3e65ddc6b5189",
    ),
    (
        "mai_sakurajima",
        "198.jpeg",
        "b95254712a902be15ee2e06a8ef450b6db370a5d391a9566b14209cd6dadbc60",
    ),
    (
        "mai_sakurajima",
        "257.jpeg",
        "9a60f9f99af9ddeea2875c4c352d7f77152ccbd0f860b4c1e7a3710689909b43",
    ),
    (
        "mai_sakurajima",
        "271.jpeg",
        "3b74745012ed9ee6749a0a55231a807f91113a50f3df13a582dd932ebbfb7ae7",
    ),
    (
        "mai_sakurajima",
        "623.jpeg",
        "3699591c1a328cfdfd14ab935c2076181b198947d3029e3d358a04b076139611",
    ),
    (
        "mai_sakurajima",
        "668.jpeg",
        "ee1abc659e465fc07b0eb1ba41bc07d6ae461690d588432ef4063be533d23d8c",
    ),
    (
        "mai_sakurajima",
        "723.jpeg",
        "9cd05c909e0ec478e9fdf08e9d6317e1135cdc34364d3112589edd6912b29d51",
    ),
    (
        "mai_sakurajima",
        "774.jpeg",
        "215120f26802e5c1f0ecf2a05bd7fe9c6077a8a9a56f51038b27fbc1b1791136",
    ),
    ("rei_ayanami", "26.jpeg", "babd21c635d44ace0d76c8f08b1067db6bc73354390900615c69e5b6e8c000a8"),
    ("rei_ayanami", "124.jpeg", "fa1569d0312b2b618eb9d08f934b04a29d90a8dcbb1b6c424a3feaba81d8ef4e"),
    ("rei_ayanami", "271.jpeg", "f6ff7b974bf8fe2ce5dc2ca99e3367504b633497c5c7df11d807c3ceca694dc4"),
    ("rei_ayanami", "405.jpeg", "fde78894dad3b9e1a470a89ab9125f61ef9465969da893bc5ff22d54d85c2d23"),
    ("rei_ayanami", "488.jpeg", "6c72b8de2480c8db56a27d98f14086e65a16fac20436ac5d73f7ed6baae9bff9"),
    ("rei_ayanami", "551.jpeg", "dc52d58a48d54c2434d139cd5f42325d89bc87f71430e0122b7d937b308ef27d"),
    ("rei_ayanami", "565.jpeg", "89d1823be1ae37d5eb425cb43f81dbce1af7f9fbc3b6ae704a6342961d500202"),
    ("rei_ayanami", "568.jpeg", "4a567cbd7a359b5976d46bd4c681f5666405567a1503353c7541c1f8e12cd5f8"),
    ("rei_ayanami", "581.jpeg", "df4a999c628b61b6836ae48d6feef38a66d5707fe6dae224a1d50576e3ddcc0c"),
    ("rei_ayanami", "734.jpeg", "0925af0fac9adf17dd8f1e58fc26830a95a5d88c2b96b37f146c66f2947314f3"),
    ("zero_two", "138.jpeg", "5e0f2c76202a070b5f6079291fd68685129139248007f581539c932cc4008762"),
    ("zero_two", "156.jpeg", "f88a95b0b2b2ca53256007dd49ff6f5c46c0cbab9a92aafbf6ae0018e9b1d30a"),
    ("zero_two", "379.jpeg", "b9ee2a874734a17cda43217c0792b2fc314ee2b0a09459c3d4ca972fc38fc359"),
    ("zero_two", "385.jpeg", "2a4bc6bd5e26a29c4ff8473d5b3768259110c8a141f0168b90f0bdc87af2a9a2"),
    ("zero_two", "390.jpeg", "cd5807e0ea1deaebdee05133654497bf299d99cfc81d097ee376248025f60ab7"),
    ("zero_two", "405.jpeg", "0a61a002cb6267ca8696b1238fbd64c5484ad6e2005f0a632dc360e39690ce75"),
    ("zero_two", "433.jpeg", "e5ab3ea97c38e04274ef561afb9f89484f4ec24d7c9eea95e78c17f489724bb2"),
    ("zero_two", "446.jpeg", "3234e7ea7b0de27ca177c5c916a8b0b577ce8d7a68bcb43c388add3e76192b29"),
    ("zero_two", "606.jpeg", "c1fe05127de9ac8556cc0070c57cdee22259f07d6cddd31153c586114e6ec8d1"),
    ("zero_two", "792.jpeg", "3a0e4f5c14b8af59b51f2b12e4f5ec342c4f703237ad1600bdd5fdec0e3694c2"),
)
"""(character, file name, SHA-256) of the training pictures."""
TRY = (
    ("asuna_yuuki", "185.jpeg", "1bf336b150d91b336ed21295552e7c7c477466494c3d6d8b47abc04f272649a4"),
    (
        "mai_sakurajima",
        "110.jpeg",
        "3f3b0f3b60658e144989ebc50b97a424ef3c5027715e8418a1bcde8f25472e95",
    ),
    ("rei_ayanami", "516.jpeg", "a401e5e8f484a2c7daf1429d286fc02eff025e18cc50fb5946be3514b969ae6f"),
    ("zero_two", "661.jpeg", "8c2661d6720f1e77e50f2e383b8cb30e59dc01408c0f9349421af08f0f6d75f0"),
)
"""(character, file name, SHA-256) of one picture per character left out of training."""


@dataclass(frozen=True)
class DemoPicture:
    """One pinned picture: its place under the demo folder, its file in the repository
    (under :data:`BASE_URL`), and its SHA-256."""

    destination: str
    source: str
    sha256: str


PICTURES = tuple(
    DemoPicture(f"train/{character}/{name}", f"{FOLDERS[character]}/{name}", digest)
    for character, name, digest in TRAIN
) + tuple(
    DemoPicture(f"try/{character}.jpeg", f"{FOLDERS[character]}/{name}", digest)
    for character, name, digest in TRY
)


def own_pictures_help(folder: Path) -> str:
    """Where to put pictures by hand, and in which layout."""
    return (
        f"To run the demo on pictures of your own, put them in {folder}:\n"
        f"  {folder / 'train'}/<character>/   pictures of each character (at least 2 characters,\n"
        "      at least 2 pictures each, 10 or more work better; JPEG, PNG, WebP, GIF or BMP,\n"
        "      any size; the folder name is the character's name, e.g. asuna_yuuki)\n"
        f"  {folder / 'try'}/                 pictures to name, not used for training\n"
        "then run `make demo` again. (On a machine with ../shared/datasets/seed/train,\n"
        "`make demo` uses the seed pictures instead.)"
    )


def has_pictures(folder: Path) -> bool:
    """Whether ``folder`` (or a folder in it) holds at least one picture file."""
    return folder.is_dir() and any(
        path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES for path in folder.rglob("*")
    )


async def _download(fetcher: ImageFetcher, base_url: str, picture: DemoPicture) -> bytes:
    """The bytes of one picture, when their SHA-256 is the pinned one."""
    url = f"{base_url.rstrip('/')}/{picture.source}"
    try:
        download = await fetcher.fetch(url)
    except FetchError as exc:
        raise DemoPicturesError(f"could not download {url}: {exc.user_message}") from None
    digest = hashlib.sha256(download.data).hexdigest()
    if digest != picture.sha256:
        raise DemoPicturesError(
            f"{url} is not the picture this demo pins (SHA-256 {digest}, expected "
            f"{picture.sha256}); nothing was kept"
        )
    return download.data


async def download_all(
    pictures: Sequence[DemoPicture], base_url: str, seconds_each: float
) -> dict[DemoPicture, bytes]:
    """Every picture's checked bytes; the first failure cancels the rest and is raised."""
    # Only the one pinned host, and the hashes pin what is kept. The session honours
    # HTTPS_PROXY (the bot's own downloads never do), so the addresses a name resolves to
    # cannot be checked here, and need not be.
    policy = FetchPolicy(
        max_bytes=MAX_PICTURE_BYTES,
        total_timeout=seconds_each,
        allowed_hosts=frozenset({URL(base_url).host or ""}),
        allow_private_addresses=True,
    )
    limit = asyncio.Semaphore(PARALLEL_DOWNLOADS)
    async with aiohttp.ClientSession(trust_env=True) as session:
        fetcher = ImageFetcher(session, policy)

        async def one(picture: DemoPicture) -> bytes:
            async with limit:
                return await _download(fetcher, base_url, picture)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = {picture: group.create_task(one(picture)) for picture in pictures}
        except* DemoPicturesError as failed:
            raise failed.exceptions[0] from None
    return {picture: task.result() for picture, task in tasks.items()}


def download_pictures(
    folder: Path,
    *,
    base_url: str = BASE_URL,
    pictures: Sequence[DemoPicture] = PICTURES,
    seconds_each: float = 30.0,
) -> None:
    """Download ``pictures`` from ``base_url`` and check them; ``folder`` appears (renamed
    from a temporary folder beside it) only when all are right.

    Raises :class:`DemoPicturesError` naming what failed, followed by how to put pictures
    in place by hand.
    """
    try:
        data = asyncio.run(download_all(pictures, base_url, seconds_each))
    except DemoPicturesError as exc:
        raise DemoPicturesError(f"{exc.user_message}\n\n{own_pictures_help(folder)}") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for picture, content in data.items():
            target = staging / picture.destination
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if folder.exists():
            shutil.rmtree(folder)  # folders without a single file: prepare() checked
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare(folder: Path, base_url: str = BASE_URL) -> str:
    """Make sure ``folder`` holds demo pictures; returns what was done, for the user."""
    train, tried = folder / "train", folder / "try"
    if has_pictures(train) and has_pictures(tried):
        return f"using the pictures in {train} and {tried}"
    if folder.exists() and any(path.is_file() for path in folder.rglob("*")):
        raise DemoPicturesError(
            f"{folder} holds files, but no pictures in both train/ and try/.\n\n"
            + own_pictures_help(folder)
        )
    download_pictures(folder, base_url=base_url)
    return f"downloaded {len(PICTURES)} demo pictures into {folder}"


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.demo DIR``: exit 0 when ``DIR`` holds demo pictures, 2 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m bot.demo", description=__doc__)
    parser.add_argument("folder", type=Path, help="where the pictures go (train/ and try/)")
    parser.add_argument(
        "--base-url",
        default=BASE_URL,
        help="a mirror holding the same files (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        print(prepare(args.folder, args.base_url))
    except DemoPicturesError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
