"""Decision histories → labelled pairs: staff decisions export, or text pairs with labels (LCQMC format)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from matcher.errors import InvalidRecordsError, LoadError, RecordError
from matcher.normalize import clean_text
from matcher.readers import decode, lines, load_list, raw_rows
from matcher.records import Grid, Need, Resource, parse_need, parse_resource

DECISIONS = {"accepted": 1.0, "rejected": 0.0, "shown": 0.0}
# A rejection judges the pair only for some reasons: 不相关 (not relevant) and 距离太远 (too far) say the
# pairing was wrong; 资源已满 (resource full), 需求已解决 (need already solved) and 重复 (a duplicate post) say
# the moment or the post was, and would teach the model that good pairs are bad. They give no label.
# Reasons not listed here (其他, free text in older exports) stay negatives, as staff chose to reject.
NOT_RELEVANCE_REASONS = ("资源已满", "需求已解决", "重复")
# The reasons staff choose from when they reject (the API's and the review page's list).
REJECT_REASONS = ("不相关", "距离太远", "资源已满", "需求已解决", "重复", "其他")
# Below this, a held-out split leaves too few decisions on either side to compare models honestly.
MIN_DECISIONS = 20
MIN_PER_CLASS = 5


class Decision(NamedTuple):
    need_id: str
    resource_id: str
    label: float
    kind: str  # accepted, rejected, shown (shown but never chosen: a weak negative), outcome:<resolution>
    time: dt.datetime | None
    reviewer: str
    reason: str


class History(NamedTuple):
    needs: dict[str, Need]
    resources: dict[str, Resource]
    grids: list[Grid]
    decisions: list[Decision]
    digest: str  # sha256 of the decision file(s), for the model card
    # Reasons of the rejections left out as no relevance label (see NOT_RELEVANCE_REASONS), for the report.
    unlabelled: tuple[str, ...] = ()


def reason_code(reason: str) -> str:
    """The reason's code without the note staff may have added after it ("资源已满：本月已排满")."""
    return reason.replace("：", ":").split(":", 1)[0].strip()


def relevance_decisions(decisions: Iterable[Decision]) -> tuple[list[Decision], tuple[str, ...]]:
    """The decisions that say whether a pair fits, and the reasons of the rejections that do not."""
    kept, left = [], []
    for decision in decisions:
        code = reason_code(decision.reason)
        if decision.kind == "rejected" and code in NOT_RELEVANCE_REASONS:
            left.append(code)
        else:
            kept.append(decision)
    return kept, tuple(left)


def _time(value: Any, record: int) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RecordError("time", "an ISO date-time such as 2026-11-02T10:30:00", value, record=record) from None


def _side(raw: Mapping, name: str, parse, known: dict, record: int) -> str:
    value = raw.get(name, raw.get(f"{name}_id"))
    if isinstance(value, Mapping):
        try:
            parsed = parse(value)
        except RecordError as exc:
            raise RecordError(f"{name}.{exc.field}", exc.expected, exc.got, record=record) from None
        known.setdefault(parsed.id, parsed)
        return parsed.id
    if value is None or str(value).strip() == "":
        raise RecordError(name, f"a {name} record or the id of one in the {name}s list", value, record=record)
    if str(value) not in known:
        raise RecordError(name, f"the id of a {name} in the {name}s list", value, record=record)
    return str(value)


def read_decisions(path: Path, needs: dict[str, Need], resources: dict[str, Resource]) -> list[Decision]:
    decisions, errors = [], []
    for number, raw in raw_rows(path, key="decision"):
        try:
            if isinstance(raw, RecordError):
                raise raw
            kind = str(raw.get("decision", "")).strip().lower()
            if kind not in DECISIONS:
                raise RecordError("decision", "accepted, rejected or shown", raw.get("decision"), record=number)
            decisions.append(Decision(_side(raw, "need", parse_need, needs, number),
                                      _side(raw, "resource", parse_resource, resources, number),
                                      DECISIONS[kind], kind, _time(raw.get("time"), number),
                                      clean_text(str(raw.get("reviewer") or "")),
                                      clean_text(str(raw.get("reason") or ""))))
        except RecordError as exc:
            errors.append(exc.located(str(path), number))
    if errors:
        raise InvalidRecordsError(errors)
    return decisions


def read_text_pairs(path: Path) -> tuple[dict[str, Need], dict[str, Resource], list[Decision]]:
    """`text_a<TAB>text_b<TAB>label` lines: text_a is the need, text_b the resource, label 0/1 or graded."""
    needs: dict[str, Need] = {}
    resources: dict[str, Resource] = {}
    decisions, errors = [], []
    text = decode(path.read_bytes(), str(path))
    for number, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            if len(parts) != 3:
                raise RecordError("line", "text_a, text_b and label separated by tabs", line[:60], record=number)
            try:
                label = float(parts[2])
            except ValueError:
                raise RecordError("label", "a number (0/1 or a grade)", parts[2], record=number) from None
            # The same sentence is the same need (or resource) wherever it appears: ids from its text.
            need = parse_need({"id": "a" + hashlib.sha1(parts[0].encode()).hexdigest()[:16], "title": parts[0]})
            resource = parse_resource({"id": "b" + hashlib.sha1(parts[1].encode()).hexdigest()[:16],
                                       "title": parts[1]})
        except RecordError as exc:
            errors.append(exc.located(str(path), number))
            continue
        needs.setdefault(need.id, need)
        resources.setdefault(resource.id, resource)
        decisions.append(Decision(need.id, resource.id, label, "accepted" if label > 0 else "rejected", None, "", ""))
    if errors:
        raise InvalidRecordsError(errors)
    return needs, resources, decisions


def _digest(paths: Iterable[Path]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()


def check(decisions: list[Decision], *, source: str) -> list[Decision]:
    """Refuse a history that cannot train or be evaluated; merge exact repeats, report contradictions."""
    if len(decisions) < MIN_DECISIONS:
        raise ValueError(f"{source}: expected at least {MIN_DECISIONS} decisions to train and hold some out, "
                         f"got {len(decisions)}")
    by_pair: dict[tuple[str, str], Decision] = {}
    clashes = []
    for decision in decisions:
        key = (decision.need_id, decision.resource_id)
        earlier = by_pair.get(key)
        outcome = decision.kind.startswith("outcome:")
        if earlier is not None and earlier.kind.startswith("outcome:") and not outcome:
            continue  # how the project ended outranks the decision that formed it
        if (earlier is not None and earlier.label != decision.label and not outcome
                and "shown" not in (earlier.kind, decision.kind)):
            clashes.append(f"{key[0]} ⇄ {key[1]}: {earlier.kind} and {decision.kind}")
        # A real decision outranks "shown"; of two real ones the later wins once clashes are reported.
        if earlier is None or earlier.kind == "shown" or decision.kind != "shown":
            by_pair[key] = decision
    if clashes:
        listed = "; ".join(clashes[:10]) + (f"; and {len(clashes) - 10} more" if len(clashes) > 10 else "")
        raise ValueError(f"{source}: expected one decision per need-resource pair, got opposite decisions for "
                         f"{len(clashes)} pair(s): {listed}")
    merged = list(by_pair.values())
    positives = sum(d.label > 0 for d in merged)
    if positives == 0 or positives == len(merged):
        only = "accepted" if positives else "rejected"
        raise ValueError(f"{source}: expected both accepted and rejected decisions, got only {only} ones")
    if min(positives, len(merged) - positives) < MIN_PER_CLASS:
        raise ValueError(f"{source}: expected at least {MIN_PER_CLASS} accepted and {MIN_PER_CLASS} other decisions, "
                         f"got {positives} and {len(merged) - positives}")
    return merged


def load_history(path: str | Path, *, needs: str | Path | None = None, resources: str | Path | None = None,
                 grids: str | Path | None = None) -> History:
    """Read a decision history (JSONL/CSV, with optional list files for ids) or a TSV of labelled text pairs."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path}: file not found")
    grid_list = load_list(grids, "grids").records if grids else []
    if path.suffix.lower() in (".tsv", ".txt"):
        need_map, resource_map, decisions = read_text_pairs(path)
    else:
        need_map = {n.id: n for n in load_list(needs, "needs").records} if needs else {}
        resource_map = {r.id: r for r in load_list(resources, "resources").records} if resources else {}
        decisions = read_decisions(path, need_map, resource_map)
    files = [p for p in (path, needs, resources, grids) if p]
    decisions, unlabelled = relevance_decisions(decisions)
    return History(need_map, resource_map, grid_list, check(decisions, source=str(path)),
                   _digest(Path(p) for p in files), unlabelled)
