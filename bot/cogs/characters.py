"""The characters a server's bot knows: ``/characters`` for everyone (paged, with aliases),
and ``/character rename|merge|alias|hide`` for moderators, so a mistyped name does not live
forever."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import in_server, is_moderator, server
from bot.cogs.choices import character_choices
from bot.i18n import Texts
from bot.names import character_name, normalise_name, typed_name
from bot.phrases import Phrase, phrase
from bot.storage.characters import CharacterEntry
from bot.storage.scope import Scope

if TYPE_CHECKING:
    from bot.app import AnimeBot

PER_PAGE = 15
TIMEOUT = 600.0


def character_page(entries: list[CharacterEntry], index: int, texts: Texts) -> discord.Embed:
    """Page ``index`` of the characters: one line each, aliases after the name."""
    pages = max(1, -(-len(entries) // PER_PAGE))
    lines = []
    for entry in entries[index * PER_PAGE : (index + 1) * PER_PAGE]:
        line = f"**{character_name(entry.name)}**"
        if entry.aliases:
            line += " — " + texts("also {aliases}", aliases=", ".join(entry.aliases))
        lines.append(line)
    embed = discord.Embed(
        title=texts("Characters I know here ({count})", count=len(entries)),
        description="\n".join(lines) or texts("None yet: a moderator can /teach some."),
        colour=discord.Colour.blurple(),
    )
    if pages > 1:
        embed.set_footer(text=texts("Page {page} of {pages}", page=index + 1, pages=pages))
    return embed


class CharacterPages(discord.ui.View):
    """Previous/next under ``/characters``."""

    def __init__(self, entries: list[CharacterEntry], texts: Texts) -> None:
        super().__init__(timeout=TIMEOUT)
        self.entries = entries
        self.texts = texts
        self.index = 0
        self.pages = max(1, -(-len(entries) // PER_PAGE))
        self._enable()

    def _enable(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= self.pages - 1

    async def _turn(self, interaction: discord.Interaction, step: int) -> None:
        self.index = min(max(self.index + step, 0), self.pages - 1)
        self._enable()
        embed = character_page(self.entries, self.index, self.texts)
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        """The page before."""
        await self._turn(interaction, -1)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        """The page after."""
        await self._turn(interaction, 1)


async def known_characters(bot: AnimeBot, guild_id: int) -> list[CharacterEntry]:
    """The server's own characters and the base model's (under the server's name when it
    has its own character of that name), alphabetically."""
    own = await bot.storage.characters.catalogue(Scope.of_guild(guild_id))
    base = await bot.storage.characters.catalogue(Scope.BASE)
    named = {normalise_name(entry.name) for entry in own}
    entries = own + [entry for entry in base if normalise_name(entry.name) not in named]
    return sorted(entries, key=lambda entry: normalise_name(entry.name))


class Characters(commands.Cog):
    """Lists the server's characters."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="characters", description="The characters I know in this server")
    @app_commands.guild_only()
    @app_commands.check(in_server)
    async def characters(self, interaction: discord.Interaction) -> None:
        """Paged, alphabetically, with aliases (only to the asker)."""
        texts = self.bot.catalog.texts(interaction.locale)
        entries = await known_characters(self.bot, server(interaction))
        embed = character_page(entries, 0, texts)
        if len(entries) > PER_PAGE:
            view = CharacterPages(entries, texts)
            await interaction.response.send_message(embed=embed, view=view, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, ephemeral=True)


@is_moderator()
class CharacterManagement(
    commands.GroupCog,
    group_name="character",
    group_description="Rename, merge, alias or hide a character",
):
    """Moderators tidy the server's character names."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    async def _done(self, interaction: discord.Interaction, said: Phrase) -> None:
        self.bot.dispatch("guild_characters_changed", server(interaction))
        texts = self.bot.catalog.texts(interaction.locale)
        await interaction.response.send_message(texts(said), ephemeral=True)

    @app_commands.command(name="rename", description="Give a character another name")
    @app_commands.describe(name="the character", new_name="its name as people write it")
    async def rename(self, interaction: discord.Interaction, name: str, new_name: str) -> None:
        """Rename; votes for the old name follow."""
        scope = Scope.of_guild(server(interaction))
        renamed = await self.bot.storage.characters.rename(scope, name, typed_name(new_name))
        await self._done(interaction, phrase("Renamed to **{name}**.", name=renamed.name))

    @app_commands.command(name="merge", description="Fold a duplicate into the right character")
    @app_commands.describe(name="the duplicate (it goes away)", into="the character it is")
    async def merge(self, interaction: discord.Interaction, name: str, into: str) -> None:
        """Move the duplicate's examples and aliases; its name becomes an alias."""
        scope = Scope.of_guild(server(interaction))
        target = await self.bot.storage.characters.merge(scope, name, into)
        await self._done(
            interaction,
            phrase(
                "Merged **{name}** into **{into}**.",
                name=typed_name(name),
                into=character_name(target.name),
            ),
        )

    @app_commands.command(name="alias", description="Let another name find a character")
    @app_commands.describe(name="the character", alias="a nickname or another spelling")
    async def alias(self, interaction: discord.Interaction, name: str, alias: str) -> None:
        """Add an alias."""
        scope = Scope.of_guild(server(interaction))
        character = await self.bot.storage.characters.add_alias(scope, name, typed_name(alias))
        await self._done(
            interaction,
            phrase(
                "**{alias}** now also names **{name}**.",
                alias=typed_name(alias),
                name=character_name(character.name),
            ),
        )

    @app_commands.command(name="hide", description="Stop offering a character (or offer it again)")
    @app_commands.describe(name="the character", hidden="True hides it, False shows it again")
    async def hide(self, interaction: discord.Interaction, name: str, hidden: bool = True) -> None:
        """Hide from menus, autocomplete and /characters; the examples stay."""
        scope = Scope.of_guild(server(interaction))
        character = await self.bot.storage.characters.set_hidden(scope, name, hidden)
        shown = character_name(character.name)
        await self._done(
            interaction,
            phrase(
                "**{name}** is hidden." if hidden else "**{name}** is offered again.", name=shown
            ),
        )

    @rename.autocomplete("name")
    @merge.autocomplete("name")
    @merge.autocomplete("into")
    @alias.autocomplete("name")
    async def character_name_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """This server's characters whose name or alias contains what was typed."""
        return await character_choices(self.bot, interaction, current)

    @hide.autocomplete("name")
    async def any_character_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Hidden ones too (to show them again)."""
        return await character_choices(self.bot, interaction, current, include_hidden=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cogs."""
    await bot.add_cog(Characters(bot))
    await bot.add_cog(CharacterManagement(bot))
