"""The Dockerfile and compose.yaml, read as text: no Docker engine runs here (hadolint, in
``make lint``, checks the Dockerfile's syntax and habits)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bot.vision import cascade

REPOSITORY = Path(__file__).resolve().parents[1]
FINAL_STAGES = ("bot", "trainer")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case) and the rest of its line."""

    keyword: str
    arguments: str


def logical_lines(text: str) -> list[str]:
    """The instructions' lines: continuations joined, comments and blank lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def stages(text: str) -> dict[str, list[Instruction]]:
    """Each named stage's instructions in build order, those of the stage it is built FROM
    first."""
    built: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for line in logical_lines(text):
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", instruction.arguments, re.IGNORECASE)
            assert match, line
            current = list(built.get(match[1], []))
            built[match[2] or match[1]] = current
        current.append(instruction)
    return built


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[Instruction]]:
    return stages((REPOSITORY / "Dockerfile").read_text())


def position(instructions: list[Instruction], keyword: str, pattern: str) -> int:
    """The index of the first ``keyword`` instruction whose arguments match ``pattern``."""
    for index, instruction in enumerate(instructions):
        if instruction.keyword == keyword and re.search(pattern, instruction.arguments):
            return index
    raise AssertionError(f"no {keyword} matching {pattern!r}")


def the_user(instructions: list[Instruction]) -> str:
    users = [i.arguments for i in instructions if i.keyword == "USER"]
    assert users, "the stage never leaves root"
    return users[-1]


@pytest.mark.parametrize("stage", FINAL_STAGES)
def test_the_data_volume_is_created_and_owned_by_the_bot_user_before_volume_and_user(
    dockerfile: dict[str, list[Instruction]], stage: str
) -> None:
    instructions = dockerfile[stage]
    user = the_user(instructions)
    uid = user.split(":")[0]

    created = position(instructions, "RUN", r"mkdir -p (\S+ )*/data\b")
    owned = position(instructions, "RUN", rf"chown (-R )?{re.escape(user)} /data\b")
    volume = position(instructions, "VOLUME", r'^\["/data"\]$')
    switched = max(i for i, instr in enumerate(instructions) if instr.keyword == "USER")

    assert created <= owned < volume
    assert owned < switched
    assert uid not in {"0", "root"}
    position(instructions[: owned + 1], "RUN", rf"useradd .*--uid {uid}\b")


@pytest.mark.parametrize("stage", FINAL_STAGES)
def test_every_image_installs_the_pinned_cascade_wheel_without_its_dependencies(
    dockerfile: dict[str, list[Instruction]], stage: str
) -> None:
    pinned = re.escape(f"{cascade.DISTRIBUTION}=={cascade.VERSION}")

    position(dockerfile[stage], "RUN", rf"pip install --no-deps {pinned}")


def test_the_bot_image_checks_its_health_endpoint(
    dockerfile: dict[str, list[Instruction]],
) -> None:
    position(dockerfile["bot"], "HEALTHCHECK", r"http://127\.0\.0\.1:9108/healthz")


def test_the_compose_bot_service_has_a_health_check_and_the_data_volume() -> None:
    compose = yaml.safe_load((REPOSITORY / "compose.yaml").read_text())
    bot = compose["services"]["bot"]

    assert any("/healthz" in part for part in bot["healthcheck"]["test"])
    assert "botdata:/data" in bot["volumes"]
    assert "botdata" in compose["volumes"]


def test_the_parser_follows_continuations_and_stage_inheritance() -> None:
    parsed = stages(
        "FROM python AS base\n# note\nRUN a \\\n    # inside\n    && b\n"
        "FROM base AS final\nUSER 1000\n"
    )

    assert parsed["final"] == [
        Instruction("FROM", "python AS base"),
        Instruction("RUN", "a && b"),
        Instruction("FROM", "base AS final"),
        Instruction("USER", "1000"),
    ]
