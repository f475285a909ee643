"""Typed need, resource and grid records, and the checks that turn a mapping into one."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from matcher.errors import RecordError
from matcher.normalize import clean_text, normalize

SIDES = ("enterprise", "community")
GRID_KINDS = ("point", "area", "block")
STATUSES = ("open", "closed")
RINGS = ("grid", "area", "street", "district")

# Staff type these in Chinese as often as in English; both mean the same value. The labels the project's
# own pages and exports show (本网格, 开放, 未注明, ...) are here too, so every export reads back in.
SIDE_ALIASES = {"企业": "enterprise", "社区": "community", "未注明": ""}
KIND_ALIASES = {"点": "point", "面": "area", "片": "block"}
RING_ALIASES = {"网格": "grid", "片区": "area", "街道": "street", "全区": "district",
                "本网格": "grid", "本片区": "area", "本街道": "street"}
STATUS_ALIASES = {"开放": "open", "已关闭": "closed", "关闭": "closed"}

# Column headers of the spreadsheets people already have and of the project's exports, per field. Ids come
# first: a CSV headed 编号/标题/描述/网格 is what a grid office keeps. 网格编号 is a need's grid but a grid's id.
_COMMON_HEADERS = {"编号": "id", "标题": "title", "说明": "description", "描述": "description", "内容": "description",
                   "类别": "category", "分类": "category", "网格": "grid", "网格编号": "grid", "所属网格": "grid",
                   "纬度": "lat", "经度": "lon", "状态": "status"}
HEADER_ALIASES: dict[str, dict[str, str]] = {
    "needs": {**_COMMON_HEADERS, "需求编号": "id", "需求标题": "title", "需求说明": "description",
              "需求描述": "description", "发布方": "side", "截止日期": "deadline", "截止时间": "deadline",
              "匹配范围": "ring"},
    "resources": {**_COMMON_HEADERS, "资源编号": "id", "资源标题": "title", "资源说明": "description",
                  "资源描述": "description", "提供方": "side", "发布方": "side", "容量": "capacity",
                  "已占用": "taken"},
    "grids": {"编号": "id", "网格编号": "id", "名称": "name", "网格名称": "name", "类型": "kind",
              "上级网格": "parent", "上级": "parent", "街道": "street"},
}


def headers_for(field: str) -> tuple[str, ...]:
    """Every header that names `field` in some list: what a file's header row may use for it."""
    return (field, *dict.fromkeys(h for aliases in HEADER_ALIASES.values() for h, f in aliases.items() if f == field))


def with_fields(raw: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The record with its Chinese headers read as field names; a field given under its own name wins."""
    aliases = HEADER_ALIASES[kind]
    if not any(isinstance(key, str) and key.strip() in aliases for key in raw):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = aliases.get(key.strip(), key) if isinstance(key, str) else key
        if name in out and not _missing(out[name]) and name != key:
            continue  # 编号 beside id: the field's own column counts
        out[name] = value
    return out

MAX_ID_CHARS = 200
_WORD_CHAR = re.compile(r"[^\W_]")
MAX_TITLE_CHARS = 500
MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class Need:
    """What someone asks for (需求)."""

    id: str
    title: str
    description: str = ""
    category: str = ""
    grid: str = ""
    side: str = ""
    lat: float | None = None
    lon: float | None = None
    deadline: dt.date | None = None
    status: str = "open"
    ring: str = "district"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["deadline"] = self.deadline.isoformat() if self.deadline else None
        return out


@dataclass(frozen=True, slots=True)
class Resource:
    """What someone offers (资源); serves at most `capacity` needs, `taken` of them already."""

    id: str
    title: str
    description: str = ""
    category: str = ""
    grid: str = ""
    side: str = ""
    lat: float | None = None
    lon: float | None = None
    capacity: int = 1
    taken: int = 0
    status: str = "open"

    @property
    def capacity_left(self) -> int:
        return max(self.capacity - self.taken, 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Grid:
    """A grid (网格): a point, area or block, inside a street."""

    id: str
    name: str = ""
    kind: str = "point"
    parent: str = ""
    street: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value)
    )


def _id(raw: Mapping[str, Any], field: str = "id", required: bool = True) -> str:
    value = raw.get(field)
    if _missing(value):
        if required:
            raise RecordError(field, "a non-empty string id", value)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(field, "a string id", value)
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        raise RecordError(field, f"an id of at most {MAX_ID_CHARS} characters", value)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in text):
        # A zero-width or direction mark makes two ids that look the same differ (or the reverse).
        raise RecordError(field, "an id without control, zero-width or text-direction characters", text)
    return text


def accepted_values(choices: tuple[str, ...], aliases: Mapping[str, str]) -> tuple[str, ...]:
    """Every spelling a choice field accepts: the values and their aliases (for the API's schema)."""
    return (*choices, *(alias for alias, value in aliases.items() if value))


def check_id(value: str, field: str = "id") -> str:
    """The id rules of the record parsers, for a single value (the API's fields use them too)."""
    return _id({field: value}, field, required=False)


def check_text(value: str, field: str = "text") -> str:
    """The character rule of the record parsers' text fields, for a single value: the text cleaned.

    Pasted text carries control, zero-width and direction characters nobody meant to send (and
    PostgreSQL refuses NUL): they are removed, never refused, so the text is kept.
    """
    return clean_text(value)


def _text(raw: Mapping[str, Any], field: str, limit: int, required: bool = False) -> str:
    value = raw.get(field)
    if _missing(value):
        if required:
            raise RecordError(field, "a non-empty text", value)
        return ""
    if not isinstance(value, str):
        raise RecordError(field, "a text (string)", value)
    if len(value) > limit:
        # Refuse before normalizing: a runaway field must not cost a full pass of the pipeline.
        raise RecordError(field, f"at most {limit} characters", value, shown=f"{len(value)} characters")
    # The API's text fields run this same cleaning (check_text).
    text = check_text(value, field).strip()
    if required and not text:
        raise RecordError(field, "a non-empty text", value)
    # NFKC is enough to tell: punctuation stays punctuation in every later step of normalize.
    if required and not _WORD_CHAR.search(unicodedata.normalize("NFKC", text)):
        raise RecordError(field, "text with at least one letter, digit or Chinese character", value)
    return text


def _choice(raw: Mapping[str, Any], field: str, choices: tuple[str, ...], aliases: Mapping[str, str],
            default: str) -> str:
    value = raw.get(field)
    if _missing(value):
        return default
    if not isinstance(value, str):
        raise RecordError(field, f"one of {', '.join(accepted_values(choices, aliases))}", value)
    text = value.strip()
    text = aliases.get(text, text.lower())
    if text == "":
        return default  # 未注明: the export's word for "not given"
    if text not in choices:
        raise RecordError(field, f"one of {', '.join(accepted_values(choices, aliases))}", value)
    return text


def _number(raw: Mapping[str, Any], field: str, low: float, high: float) -> float | None:
    value = raw.get(field)
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise RecordError(field, f"a number from {low} to {high}", value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecordError(field, f"a number from {low} to {high}", value) from None
    if not (low <= number <= high):
        raise RecordError(field, f"a number from {low} to {high}", value)
    return number


def _integer(raw: Mapping[str, Any], field: str, low: int, default: int) -> int:
    value = raw.get(field)
    if _missing(value):
        return default
    if isinstance(value, bool):
        raise RecordError(field, f"an integer >= {low}", value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            raise RecordError(field, f"an integer >= {low}", value)
        value = int(value)
    if not isinstance(value, int):
        raise RecordError(field, f"an integer >= {low}", value)
    if value < low:
        raise RecordError(field, f"an integer >= {low}", value)
    return value


def _date(raw: Mapping[str, Any], field: str) -> dt.date | None:
    value = raw.get(field)
    if _missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise RecordError(field, "an ISO date such as 2026-12-31", value)


def _place(raw: Mapping[str, Any]) -> tuple[float | None, float | None]:
    lat = _number(raw, "lat", -90.0, 90.0)
    lon = _number(raw, "lon", -180.0, 180.0)
    if (lat is None) != (lon is None):
        field = "lon" if lon is None else "lat"
        raise RecordError(field, "both lat and lon, or neither", raw.get(field))
    return lat, lon


def _common(raw: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise RecordError("record", "a mapping of field names to values", raw)
    lat, lon = _place(raw)
    return {
        "id": _id(raw),
        "title": _text(raw, "title", MAX_TITLE_CHARS, required=True),
        "description": _text(raw, "description", MAX_TEXT_CHARS),
        "category": normalize(_text(raw, "category", MAX_TITLE_CHARS)),
        "grid": _id(raw, "grid", required=False),
        "side": _choice(raw, "side", SIDES, SIDE_ALIASES, ""),
        "lat": lat,
        "lon": lon,
        "status": _choice(raw, "status", STATUSES, STATUS_ALIASES, "open"),
    }


def parse_need(raw: Mapping[str, Any] | Need) -> Need:
    """Check one need mapping; raise RecordError naming the first bad field."""
    if isinstance(raw, Need):
        return raw
    raw = with_fields(raw, "needs") if isinstance(raw, Mapping) else raw
    fields = _common(raw)
    return Need(**fields, deadline=_date(raw, "deadline"),
                ring=_choice(raw, "ring", RINGS, RING_ALIASES, "district"))


def parse_resource(raw: Mapping[str, Any] | Resource) -> Resource:
    """Check one resource mapping; raise RecordError naming the first bad field."""
    if isinstance(raw, Resource):
        return raw
    raw = with_fields(raw, "resources") if isinstance(raw, Mapping) else raw
    fields = _common(raw)
    capacity = _integer(raw, "capacity", 1, 1)
    taken = _integer(raw, "taken", 0, 0)
    if taken > capacity:
        raise RecordError("taken", f"an integer from 0 to capacity ({capacity})", raw.get("taken"))
    return Resource(**fields, capacity=capacity, taken=taken)


def parse_grid(raw: Mapping[str, Any] | Grid) -> Grid:
    """Check one grid mapping; parents are checked across the list by `proximity.GridMap`."""
    if isinstance(raw, Grid):
        return raw
    if not isinstance(raw, Mapping):
        raise RecordError("record", "a mapping of field names to values", raw)
    raw = with_fields(raw, "grids")
    return Grid(
        id=_id(raw),
        name=_text(raw, "name", MAX_TITLE_CHARS),
        kind=_choice(raw, "kind", GRID_KINDS, KIND_ALIASES, "point"),
        parent=_id(raw, "parent", required=False),
        street=_text(raw, "street", MAX_TITLE_CHARS),
    )


def parse_all(records: Iterable, parse: Callable[[Any], Any], what: str, *, unique: bool = True) -> list:
    """Parse every record of a list, the error naming the list and the record's number; ids unique unless
    told (pairs chosen by a caller may repeat a need or a resource)."""
    if isinstance(records, str | bytes | Mapping):
        raise TypeError(f"{what}: expected a sequence of records, got {type(records).__name__}")
    parsed, seen = [], set()
    for number, raw in enumerate(records, start=1):
        try:
            record = parse(raw)
        except RecordError as exc:
            raise exc.located(what, number) from None
        if unique and record.id in seen:
            raise RecordError("id", f"an id unique in {what}", record.id, source=what, record=number)
        seen.add(record.id)
        parsed.append(record)
    return parsed
