"""Request and response shapes, one per use (create, update, public), as the API documents them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from matcher.history import REJECT_REASONS
from matcher.records import (
    GRID_KINDS,
    KIND_ALIASES,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    RING_ALIASES,
    RINGS,
    SIDE_ALIASES,
    SIDES,
    accepted_values,
    check_id,
    check_text,
)

# Values, aliases and character rules come from the record parsers (matcher.records), the one source
# for the API, uploads and files alike: the API documents and enforces the same rules, never its own.
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS),
               AfterValidator(check_id)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE_CHARS), AfterValidator(check_text)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS), AfterValidator(check_text)]
Short = Annotated[str, StringConstraints(max_length=MAX_TITLE_CHARS), AfterValidator(check_text)]
GridId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_ID_CHARS), AfterValidator(check_id)]
# Choices as the files accept them: 企业/社区, 点/面/片, 网格/片区/街道/全区 beside the English values.
Side = Literal[("", *accepted_values(SIDES, SIDE_ALIASES))]  # type: ignore[valid-type]
GridKind = Literal[accepted_values(GRID_KINDS, KIND_ALIASES)]  # type: ignore[valid-type]
Ring = Literal[accepted_values(RINGS, RING_ALIASES)]  # type: ignore[valid-type]
RejectReason = Literal[REJECT_REASONS]
# Numbers in a body must be JSON numbers: strict refuses true/false (else stored as 1.0/0.0) and numeric
# strings ("2"), which a client sending them has mixed up a field. Query parameters are text by nature and
# stay lax; spreadsheet cells are read by matcher.records, which takes "2" from a CSV as 2.
Lat = Annotated[float, Field(ge=-90, le=90, strict=True)]
Lon = Annotated[float, Field(ge=-180, le=180, strict=True)]

T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridCreate(Strict):
    id: Id
    name: Short = ""
    kind: GridKind = "point"
    parent: GridId = ""
    street: Short = ""


class GridUpdate(Strict):
    name: Short | None = None
    kind: GridKind | None = None
    parent: GridId | None = None
    street: Short | None = None


class GridPublic(GridCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    created_at: dt.datetime
    updated_at: dt.datetime


class _ListedCreate(Strict):
    id: Id
    title: Title
    description: Text = ""
    category: Short = ""
    grid: GridId = ""
    side: Side = ""
    lat: Lat | None = None
    lon: Lon | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> _ListedCreate:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon: expected both or neither")
        return self


class NeedCreate(_ListedCreate):
    deadline: dt.date | None = None
    ring: Ring | None = None


class ResourceCreate(_ListedCreate):
    capacity: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] = 1


class _ListedUpdate(Strict):
    title: Title | None = None
    description: Text | None = None
    category: Short | None = None
    grid: GridId | None = None
    side: Side | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class NeedUpdate(_ListedUpdate):
    deadline: dt.date | None = None
    ring: Ring | None = None


class ResourceUpdate(_ListedUpdate):
    capacity: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] | None = None


class NeedPublic(NeedCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    ring: Ring
    status: str
    escalated: bool
    escalated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ResourcePublic(ResourceCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    taken: int
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class UploadResult(BaseModel):
    created: int
    unchanged: int
    skipped: list[str]


class MatchRequest(Strict):
    need: NeedCreate | None = None
    need_id: Id | None = None
    k: Annotated[int, Field(ge=1, le=100, strict=True)] = 10

    @model_validator(mode="after")
    def _one_need(self) -> MatchRequest:
        if (self.need is None) == (self.need_id is None):
            raise ValueError("need, need_id: expected exactly one of them")
        return self


class SuggestionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    need_id: str
    resource_id: str
    score: float
    features: dict[str, float]
    reasons: list[str]
    terms: list[dict[str, str]] = Field(default_factory=list,
                                        description="shared terms as each post wrote them: term, need, resource")
    model_version: str
    status: str
    origin: str
    created_at: dt.datetime


class MatchResponse(BaseModel):
    suggestions: list[SuggestionPublic]
    min_score: float = Field(description="only suggestions scoring at least this are stored and returned")
    below_min_score: int = Field(description="how many of the top k scored below min_score and were left out")


class BatchRequest(Strict):
    grid: GridId | None = None
    street: Short | None = None
    category: Short | None = None
    side: Side | None = None
    k: Annotated[int, Field(ge=1, le=100, strict=True)] = 10
    min_score: Annotated[float, Field(ge=0, le=1, strict=True)] | None = None


class BatchJobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    status: str
    progress: float
    filters: dict[str, Any]
    result: dict[str, Any]
    error: str
    created_at: dt.datetime
    finished_at: dt.datetime | None


class RejectRequest(Strict):
    reason: RejectReason
    note: Text = ""

    @model_validator(mode="after")
    def _other_needs_note(self) -> RejectRequest:
        if self.reason == "其他" and not self.note.strip():
            raise ValueError("note: expected a short text saying why when the reason is 其他")
        return self


class ProjectPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    suggestion_id: int
    need_id: str
    resource_id: str
    status: str = Field(description="active (进行中), completed (已完成) or cancelled (已终止)")
    outcome: str = Field(description="the closing note")
    resolution: str = Field(default="", description="how it ended: resolved, partial or unresolved (or empty)")
    satisfaction: int | None = Field(default=None, description="the need's poster's satisfaction, 1-5")
    finished_at: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class ProjectNotePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    actor: str
    note: str
    created_at: dt.datetime


class ProjectDetail(ProjectPublic):
    notes: list[ProjectNotePublic] = Field(default_factory=list, description="follow-up notes, oldest first")


Resolution = Literal["resolved", "partial", "unresolved", "解决", "部分解决", "未解决"]


class ProjectUpdate(Strict):
    """A follow-up: any of a status move, how it ended, a satisfaction score, the closing note, a dated note.
    Completing a project needs a resolution (given now or before)."""

    status: Literal["active", "completed", "cancelled"] | None = None
    resolution: Resolution | None = None
    satisfaction: Annotated[int, Field(ge=1, le=5, strict=True)] | None = None
    outcome: Text | None = None
    note: Text = ""


class ProjectNoteCreate(Strict):
    note: Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(check_text)]


class KeyCreate(Strict):
    role: Literal["platform", "staff", "analyst", "leader", "admin"]
    grids: Annotated[list[Id], Field(max_length=1000)] = []
    streets: Annotated[list[Short], Field(max_length=1000)] = []
    note: Annotated[str, StringConstraints(max_length=200), AfterValidator(check_text)] = ""

    @field_validator("grids")
    @classmethod
    def _unique(cls, grids: list[str]) -> list[str]:
        return list(dict.fromkeys(grids))


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    prefix: str
    role: str
    grids: list[str]
    streets: list[str] = []
    note: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class KeyCreated(KeyPublic):
    key: str


class EscalationResult(BaseModel):
    escalated: list[str]


class Message(BaseModel):
    detail: str
