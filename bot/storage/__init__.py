"""SQLAlchemy models and repositories; knows nothing of Discord (ids come in as ints)."""

from bot.storage.characters import CharacterInfo, CharacterRepo
from bot.storage.db import Storage, create_engine, session_factory, upgrade_to_head
from bot.storage.examples import TrainingExampleRepo
from bot.storage.guilds import GuildConfig, GuildSettingsRepo
from bot.storage.images import FaceRecord, ImageRepo, LabelScore, RecordedImage, StoredFace
from bot.storage.locks import LockRepo
from bot.storage.model_versions import ModelVersionInfo, ModelVersionRepo
from bot.storage.runs import TrainingRunInfo, TrainingRunRepo
from bot.storage.schema import ExampleSource, RunStatus, VoteStatus
from bot.storage.stats import Stats, StatsRepo
from bot.storage.users import UserData, UserDataRepo
from bot.storage.votes import HeldVote, VoteOutcome, VoteRepo

__all__ = [
    "CharacterInfo",
    "CharacterRepo",
    "ExampleSource",
    "FaceRecord",
    "GuildConfig",
    "GuildSettingsRepo",
    "HeldVote",
    "ImageRepo",
    "LabelScore",
    "LockRepo",
    "ModelVersionInfo",
    "ModelVersionRepo",
    "RecordedImage",
    "RunStatus",
    "Stats",
    "StatsRepo",
    "Storage",
    "StoredFace",
    "TrainingExampleRepo",
    "TrainingRunInfo",
    "TrainingRunRepo",
    "UserData",
    "UserDataRepo",
    "VoteOutcome",
    "VoteRepo",
    "VoteStatus",
    "create_engine",
    "session_factory",
    "upgrade_to_head",
]
