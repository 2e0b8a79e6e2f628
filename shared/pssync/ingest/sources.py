"""The source registry: which inbound sources exist, how each proves authenticity, where its secret is."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pssync.errors import UnknownSource
from pssync.model.events import SourceSystem


class SignatureScheme(StrEnum):
    STANDARD_WEBHOOKS = "standard-webhooks"


class SourceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    scheme: SignatureScheme
    system: SourceSystem
    secret_id: str = Field(min_length=1, description="Secrets Manager id of {current, previous}")
    tolerance_seconds: int = Field(300, ge=1, le=3600)
    max_body_bytes: int = Field(256 * 1024, ge=1, le=10 * 1024 * 1024)


class SourceRegistry:
    def __init__(self, sources: list[SourceConfig]) -> None:
        self._by_name = {s.name: s for s in sources}
        if len(self._by_name) != len(sources):
            raise ValueError("source names must be unique")

    @classmethod
    def from_json(cls, raw: str) -> SourceRegistry:
        return cls(TypeAdapter(list[SourceConfig]).validate_json(raw))

    def get(self, name: str) -> SourceConfig:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSource(f"no inbound source named {name!r} is configured") from None

    def __iter__(self) -> Iterator[SourceConfig]:
        return iter(self._by_name.values())
