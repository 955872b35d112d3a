"""Message objects, the limits Discord enforces on what bots send, and slash command options."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .models import AttachmentSpec, FakeChannel, FakeMember, FakeRole, FakeUser, iso_now
from .records import walk_components

IS_COMPONENTS_V2 = 1 << 15

OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11

_MENTION = re.compile(r"<@!?(\d+)>")


def message_payload(
    *,
    message_id: int,
    channel: FakeChannel,
    author: FakeUser,
    member: FakeMember | None = None,
    content: str = "",
    embeds: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    flags: int = 0,
    message_type: int = 0,
    mentions: list[FakeUser] | None = None,
) -> dict[str, Any]:
    """A complete message object as Discord sends it in MESSAGE_CREATE and REST replies."""
    payload: dict[str, Any] = {
        "id": str(message_id),
        "type": message_type,
        "channel_id": str(channel.id),
        "author": author.to_payload(),
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [user.to_payload() for user in mentions or []],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": embeds or [],
        "reactions": [],
        "pinned": False,
        "flags": flags,
        "components": components or [],
    }
    if channel.guild is not None:
        payload["guild_id"] = str(channel.guild.id)
        if member is not None:
            payload["member"] = member.to_payload(with_user=False)
    return payload


def mentioned_ids(content: str) -> list[int]:
    """User ids mentioned as ``<@id>`` in message content."""
    return [int(match) for match in _MENTION.findall(content)]


def attachment_payload(attachment_id: int, spec: AttachmentSpec, url: str) -> dict[str, Any]:
    """An attachment object whose ``url`` and ``proxy_url`` point at ``url``."""
    payload: dict[str, Any] = {
        "id": str(attachment_id),
        "filename": spec.filename,
        "size": spec.size if spec.size is not None else len(spec.content),
        "url": url,
        "proxy_url": url,
        "ephemeral": False,
        "flags": 0,
    }
    if spec.content_type is not None:
        payload["content_type"] = spec.content_type
    if spec.width is not None and spec.height is not None:
        payload["width"], payload["height"] = spec.width, spec.height
    return payload


# -- limits --------------------------------------------------------------------------


def _too_long(problems: list[str], where: str, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        problems.append(f"{where} is {len(value)} characters, the limit is {limit}")


def _embed_problems(embeds: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if len(embeds) > 10:
        problems.append(f"{len(embeds)} embeds, the limit is 10")
    total = 0
    for n, embed in enumerate(embeds):
        where = f"embeds[{n}]"
        texts = {
            "title": (embed.get("title"), 256),
            "description": (embed.get("description"), 4096),
            "footer.text": ((embed.get("footer") or {}).get("text"), 2048),
            "author.name": ((embed.get("author") or {}).get("name"), 256),
        }
        for key, (text, limit) in texts.items():
            _too_long(problems, f"{where}.{key}", text, limit)
            total += len(text or "")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(f"{where} has {len(fields)} fields, the limit is 25")
        for i, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = fld.get(key)
                if not isinstance(text, str) or not text.strip():
                    problems.append(f"{where}.fields[{i}].{key} is required")
                _too_long(problems, f"{where}.fields[{i}].{key}", text, limit)
                total += len(text or "")
    if total > 6000:
        problems.append(f"embeds hold {total} characters in all, the limit is 6000")
    return problems


def _select_problems(where: str, select: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    _too_long(problems, f"{where}.placeholder", select.get("placeholder"), 150)
    max_values = select.get("max_values", 1)
    if not 0 <= select.get("min_values", 1) <= max_values <= 25:
        problems.append(f"{where} has min_values/max_values outside 0..25")
    if select.get("type") == 3:
        options = select.get("options") or []
        if not 1 <= len(options) <= 25:
            problems.append(f"{where} has {len(options)} options, it needs 1 to 25")
        if max_values > len(options):
            problems.append(f"{where}.max_values {max_values} exceeds its {len(options)} options")
        for i, option in enumerate(options):
            for key in ("label", "value", "description"):
                _too_long(problems, f"{where}.options[{i}].{key}", option.get(key), 100)
            if not option.get("label") or not option.get("value"):
                problems.append(f"{where}.options[{i}] needs a label and a value")
        values = [option.get("value") for option in options]
        if len(set(values)) != len(values):
            problems.append(f"{where} has options with the same value")
    return problems


def _component_problems(components: list[dict[str, Any]], flags: int) -> list[str]:
    problems: list[str] = []
    if not flags & IS_COMPONENTS_V2:
        if len(components) > 5:
            problems.append(f"{len(components)} action rows, the limit is 5")
        for n, row in enumerate(components):
            children = row.get("components") or []
            if row.get("type") != 1:
                problems.append(f"components[{n}] is type {row.get('type')}, not an action row")
            selects = [c for c in children if c.get("type") in (3, 5, 6, 7, 8)]
            if len(children) > 5 or (selects and len(children) > 1) or not children:
                problems.append(f"components[{n}] holds 1 to 5 buttons or one select menu")
    custom_ids: list[str] = []
    for n, component in enumerate(walk_components(components)):
        where = f"component {n} (type {component.get('type')})"
        custom_id = component.get("custom_id")
        if custom_id is not None:
            custom_ids.append(custom_id)
            _too_long(problems, f"{where}.custom_id", custom_id, 100)
        if component.get("type") == 2:
            _too_long(problems, f"{where}.label", component.get("label"), 80)
            if (component.get("style") == 5) != bool(component.get("url")):
                problems.append(f"{where}: link buttons need a url, other buttons a custom_id")
        elif component.get("type") in (3, 5, 6, 7, 8):
            problems += _select_problems(where, component)
    if len(set(custom_ids)) != len(custom_ids):
        problems.append("two components share a custom_id")
    return problems


def message_problems(body: dict[str, Any], file_count: int, *, creating: bool) -> list[str]:
    """Why Discord would answer 400 to this message body (empty when it is acceptable)."""
    problems: list[str] = []
    _too_long(problems, "content", body.get("content"), 2000)
    problems += _embed_problems(body.get("embeds") or [])
    problems += _component_problems(body.get("components") or [], int(body.get("flags") or 0))
    if file_count > 10:
        problems.append(f"{file_count} files, the limit is 10")
    has_anything = any(body.get(k) for k in ("content", "embeds", "components", "sticker_ids"))
    if creating and not has_anything and not file_count and not body.get("poll"):
        problems.append("Cannot send an empty message")
    return problems


def modal_problems(modal: dict[str, Any]) -> list[str]:
    """Why Discord would refuse to open this modal."""
    problems: list[str] = []
    _too_long(problems, "modal title", modal.get("title"), 45)
    _too_long(problems, "modal custom_id", modal.get("custom_id"), 100)
    rows = modal.get("components") or []
    if not 1 <= len(rows) <= 5:
        problems.append(f"a modal holds 1 to 5 components, not {len(rows)}")
    for component in walk_components(rows):
        if component.get("type") == 4:
            _too_long(problems, "text input label", component.get("label"), 45)
            _too_long(problems, "text input placeholder", component.get("placeholder"), 100)
            _too_long(problems, "text input value", component.get("value"), 4000)
    return problems


# -- slash command options -----------------------------------------------------------------

ValueResolver = Callable[[Any, int, dict[str, dict[str, Any]]], Any]


def option_type_of(value: Any) -> int:
    """The option type Discord would use for a Python value (when no schema is known)."""
    if isinstance(value, bool):
        return OPTION_BOOLEAN
    if isinstance(value, int):
        return OPTION_INTEGER
    if isinstance(value, float):
        return OPTION_NUMBER
    if isinstance(value, AttachmentSpec | tuple):
        return OPTION_ATTACHMENT
    if isinstance(value, FakeUser | FakeMember):
        return OPTION_USER
    if isinstance(value, FakeChannel):
        return OPTION_CHANNEL
    if isinstance(value, FakeRole):
        return OPTION_ROLE
    return OPTION_STRING


def command_options(
    path: list[str],
    values: Mapping[str, Any],
    schema: list[dict[str, Any]] | None,
    resolve: ValueResolver,
    resolved: dict[str, dict[str, Any]],
    *,
    focused: str | None = None,
) -> list[dict[str, Any]]:
    """The ``options`` of an application command interaction.

    ``path`` names the subcommand group/subcommand under the command; ``schema`` is
    the option list the bot registered (None when it never synced), used to type
    and check the values like Discord's client does. ``focused`` marks the option
    being typed in an autocomplete interaction (required options may be missing).
    """
    if path:
        sub = next((o for o in schema or [] if o.get("name") == path[0]), None)
        if schema is not None and sub is None:
            raise ValueError(f"the registered command has no subcommand {path[0]!r}")
        if sub:
            kind = sub["type"]
        else:
            kind = OPTION_SUB_COMMAND_GROUP if len(path) > 1 else OPTION_SUB_COMMAND
        nested_schema = sub.get("options", []) if sub else None
        nested = command_options(
            path[1:], values, nested_schema, resolve, resolved, focused=focused
        )
        return [{"name": path[0], "type": kind, "options": nested}]

    options: list[dict[str, Any]] = []
    known = {o["name"]: o for o in schema or []}
    if schema is not None:
        missing = [n for n, o in known.items() if o.get("required") and n not in values]
        unknown = [n for n in values if n not in known]
        if (missing and focused is None) or unknown:
            raise ValueError(f"options do not fit the registered command: {missing=} {unknown=}")
    for name, value in values.items():
        kind = known[name]["type"] if name in known else option_type_of(value)
        option = {"name": name, "type": kind, "value": resolve(value, kind, resolved)}
        if focused is not None:
            option["focused"] = name == focused
        options.append(option)
    return options
