import datetime as dt

import pytest

from matcher.errors import RecordError
from matcher.records import MAX_TITLE_CHARS, Need, Resource, parse_grid, parse_need, parse_resource


def test_parse_need_minimal_record():
    assert parse_need({"id": "n1", "title": "需要托育"}) == Need(id="n1", title="需要托育")


def test_parse_need_full_record():
    need = parse_need({"id": 7, "title": " 停车难 ", "side": "企业", "lat": "30.57", "lon": 104.06,
                       "deadline": "2027-01-31", "ring": "街道", "category": "停車"})
    assert (need.id, need.title, need.side, need.lat, need.deadline, need.ring, need.category) == (
        "7", "停车难", "enterprise", 30.57, dt.date(2027, 1, 31), "street", "停车")


def test_parse_resource_capacity_defaults_to_one():
    resource = parse_resource({"id": "r1", "title": "社区食堂"})
    assert (resource.capacity, resource.taken, resource.capacity_left) == (1, 0, 1)


def test_parse_resource_capacity_from_csv_text():
    assert parse_resource({"id": "r1", "title": "食堂", "capacity": "3"}).capacity == 3


@pytest.mark.parametrize(("record", "message"), [
    ({"title": "托育"}, "field 'id': expected a non-empty string id, got None"),
    ({"id": "", "title": "托育"}, "field 'id': expected a non-empty string id, got ''"),
    ({"id": ["x"], "title": "托育"}, r"field 'id': expected a string id, got \['x'\]"),
    ({"id": "n1"}, "field 'title': expected a non-empty text, got None"),
    ({"id": "n1", "title": "！？。、…"}, "field 'title': expected text with at least one letter, digit or Chinese"),
    ({"id": "n1", "title": 42}, "field 'title': expected a text \\(string\\), got 42"),
    ({"id": "n1", "title": "托育", "side": "government"}, "field 'side': expected one of enterprise, community"),
    ({"id": "n1", "title": "托育", "lat": 95, "lon": 104}, "field 'lat': expected a number from -90.0 to 90.0, got 95"),
    ({"id": "n1", "title": "托育", "lat": 30.5}, "field 'lon': expected both lat and lon, or neither"),
    ({"id": "n1", "title": "托育", "lat": "north", "lon": 1}, "field 'lat': expected a number"),
    ({"id": "n1", "title": "托育", "deadline": "next week"}, "field 'deadline': expected an ISO date"),
    ({"id": "n1", "title": "托育", "ring": "city"}, "field 'ring': expected one of grid, area, street, district"),
    ({"id": "n1", "title": "托育", "status": "maybe"}, "field 'status': expected one of open, closed"),
])
def test_parse_need_rejects_bad_field(record, message):
    with pytest.raises(RecordError, match=message):
        parse_need(record)


@pytest.mark.parametrize(("capacity", "message"), [
    (0, "field 'capacity': expected an integer >= 1, got 0"),
    (-2, "field 'capacity': expected an integer >= 1, got -2"),
    ("two", "field 'capacity': expected an integer >= 1, got 'two'"),
    (1.5, "field 'capacity': expected an integer >= 1, got 1.5"),
    (True, "field 'capacity': expected an integer >= 1, got True"),
])
def test_parse_resource_rejects_bad_capacity(capacity, message):
    with pytest.raises(RecordError, match=message):
        parse_resource({"id": "r1", "title": "食堂", "capacity": capacity})


def test_parse_resource_rejects_taken_above_capacity():
    with pytest.raises(RecordError, match=r"field 'taken': expected an integer from 0 to capacity \(2\), got 3"):
        parse_resource({"id": "r1", "title": "食堂", "capacity": 2, "taken": 3})


def test_parse_need_rejects_ten_megabyte_title_without_echoing_it():
    with pytest.raises(RecordError, match=f"field 'title': expected at most {MAX_TITLE_CHARS} characters, "
                                          "got 10485760 characters") as caught:
        parse_need({"id": "n1", "title": "托" * 10 * 1024 * 1024})
    assert len(str(caught.value)) < 200


def test_parse_need_rejects_non_mapping():
    with pytest.raises(RecordError, match="field 'record': expected a mapping of field names to values"):
        parse_need(["n1", "托育"])


def test_parse_need_passes_own_record_type_through():
    need = Need(id="n1", title="托育")
    assert parse_need(need) is need
    resource = Resource(id="r1", title="食堂")
    assert parse_resource(resource) is resource


def test_parse_grid_accepts_chinese_kind():
    assert parse_grid({"id": "g", "kind": "面"}).kind == "area"


def test_parse_grid_rejects_unknown_kind():
    with pytest.raises(RecordError, match="field 'kind': expected one of point, area, block, 点, 面, 片, got 'city'"):
        parse_grid({"id": "g", "kind": "city"})


def test_record_error_located_names_file_and_record():
    error = RecordError("capacity", "an integer >= 1", 0).located("resources.csv", 4)
    assert str(error) == "resources.csv, record 4: field 'capacity': expected an integer >= 1, got 0"


@pytest.mark.parametrize("bad_id", ["n\u200b1", "\u202en1", "n1\ufeff", "n\x001", "n\x851", "n\ud8001"])
def test_parse_need_refuses_ids_with_invisible_or_control_characters(bad_id):
    with pytest.raises(RecordError, match="field 'id': expected an id without control, zero-width or text-direction"):
        parse_need({"id": bad_id, "title": "托育"})


@pytest.mark.parametrize(("raw", "clean"), [
    ("托育\x00服务", "托育服务"),  # NUL: PostgreSQL refuses it
    ("托育\x08服务\x7f", "托育服务"),  # backspace and DEL from office software
    ("第一页\x0c第二页", "第一页\n第二页"),  # form feed: a page break, kept as a line break
    ("托\u200b育\u2060服\ufeff务", "托育服务"),  # zero-width
    ("\u202e务服育托\u202c", "务服育托"),  # a direction override would display the title reversed
    ("托育\x85\x9b服务", "托育\n服务"),  # C1 controls (NEL is a line break)
    ("托育\ud800服务", "托育服务"),  # a lone surrogate cannot be stored or sent
    ("第一行\n\t第二行", "第一行\n\t第二行"),  # tab and line breaks stay
])
def test_parse_cleans_invisible_characters_from_every_text_field(raw, clean):
    resource = parse_resource({"id": "r1", "title": raw, "description": raw, "category": "养老"})
    assert resource.title == clean.strip() and resource.description == clean.strip()
    grid = parse_grid({"id": "G1", "name": raw, "street": raw})
    assert grid.name == clean.strip() and grid.street == clean.strip()


def test_parse_refuses_a_title_that_is_only_invisible_characters():
    with pytest.raises(RecordError, match="field 'title': expected a non-empty text"):
        parse_need({"id": "n1", "title": "\x00\u200b\x0c "})
