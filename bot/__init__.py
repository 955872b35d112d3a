"""Anime character recognition bot: engine (``bot.vision``), storage and Discord front end."""

__version__ = "0.1.0"
