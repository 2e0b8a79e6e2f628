"""The delivery side: a project with its work breakdown, as provisioned in the PSA."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class WbsElement(BaseModel):
    model_config = _FROZEN

    code: str = Field(min_length=1, max_length=64, description="e.g. '1', '1.2'")
    name: str = Field(min_length=1, max_length=256)
    parent_code: str | None = None
    obligation_id: str | None = Field(None, description="The performance obligation this work delivers")
    budget_hours: int | None = Field(None, ge=0)
    billable: bool = True


class ProjectPlan(BaseModel):
    model_config = _FROZEN

    project_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    template: str | None = Field(None, description="PSA project template to start from")
    wbs: list[WbsElement] = Field(min_length=1)

    @model_validator(mode="after")
    def _tree(self) -> ProjectPlan:
        codes = [w.code for w in self.wbs]
        if len(set(codes)) != len(codes):
            raise ValueError("WBS codes must be unique")
        known = set(codes)
        for element in self.wbs:
            if element.parent_code is not None and element.parent_code not in known:
                raise ValueError(f"WBS element {element.code} has unknown parent {element.parent_code}")
        return self
