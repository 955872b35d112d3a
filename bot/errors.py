"""Domain errors. Each carries a short message that is safe to show to a user."""

from __future__ import annotations

from typing import Any

from bot.phrases import Phrase


def _rebuilt(kind: type[BotError], said: Phrase) -> BotError:
    error = kind.__new__(kind)
    BotError.__init__(error, said)
    return error


class BotError(Exception):
    """Base of every error whose message may be shown to users as it is.

    Raised with the English text and its values (``TrainingError("have {count}",
    count=3)``), so that the message can be shown in the reader's language:
    ``texts(error.phrase)``.
    """

    def __init__(self, message: str | Phrase = "", /, **values: Any) -> None:
        self.phrase = message if isinstance(message, Phrase) else Phrase(message, values)
        super().__init__(str(self.phrase))

    def __reduce__(self) -> tuple[Any, ...]:
        # The phrase survives a trip between processes (a refit's errors).
        return _rebuilt, (type(self), self.phrase)

    @property
    def user_message(self) -> str:
        """The sentence to show a user in English (no paths, no internals)."""
        return str(self)


class ImageError(BotError):
    """The bytes are not a picture the engine can read."""


class EmptyImageError(ImageError):
    """Zero bytes were given instead of a picture."""


class UnsupportedImageError(ImageError):
    """The bytes are not in a picture format the engine reads (or are not a picture at all)."""


class CorruptImageError(ImageError):
    """The file claims to be a picture but cannot be decoded (truncated or damaged)."""


class ImageTooLargeError(ImageError):
    """The picture exceeds the byte or pixel limits (for instance a decompression bomb)."""


class BundleError(BotError):
    """A model bundle is missing, incomplete, or its parts disagree."""


class FetchError(BotError):
    """A picture could not be downloaded (refused host, too large, too slow, HTTP error)."""


class BusyError(BotError):
    """The recognition queue is full; the user should try again shortly."""


class StorageError(BotError):
    """The database could not complete an operation."""


class DatabaseUnavailableError(StorageError):
    """The database did not answer or failed (raised by the storage layer for any driver or
    connection failure; callers never look at the driver's exceptions themselves)."""


class InvalidNameError(BotError):
    """A character name is empty, too long or has characters a name cannot have."""


class NoModelError(BotError):
    """No model has been trained yet."""

    def __init__(self) -> None:
        super().__init__(
            "I have no model yet: whoever runs the bot has to install a base model first."
        )


class TrainingError(BotError):
    """Training could not produce a model bundle."""


class TrainingBusyError(TrainingError):
    """A training of the same server is already running (or waiting for its turn)."""


class CascadeError(BotError):
    """The LBP anime-face cascade that the ``danbooru-utility`` wheel installs is missing, or
    is not the file this project was built and tested with."""


class DemoPicturesError(BotError):
    """The demo pictures could not be had (offline, say); the message says how to put
    pictures in place by hand."""
