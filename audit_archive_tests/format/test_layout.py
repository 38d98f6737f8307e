"""Object keys and the due rule: D is due once D+1 00:00Z <= now - retention."""

from __future__ import annotations

import datetime as dt

import pytest

from audit_archive.format import layout


def test_part_keys_are_hive_style_with_four_digit_parts() -> None:
    day = dt.date(2026, 8, 30)
    assert layout.jsonl_key("audit", day, 1) == "audit/day=2026-08-30/part-0001.jsonl.gz"
    assert layout.manifest_key("audit/", day, 12) == "audit/day=2026-08-30/part-0012.manifest.json"
    assert layout.jsonl_key("", day, 1) == "day=2026-08-30/part-0001.jsonl.gz"
    assert layout.parse_part_key("x/day=2026-08-30/part-0003.manifest.json") == (
        "2026-08-30",
        3,
        "manifest.json",
    )
    assert layout.parse_part_key("x/day=2026-08-30/notes.txt") is None


def test_a_day_is_due_exactly_when_its_end_leaves_the_window() -> None:
    day = dt.date(2026, 8, 30)
    due = layout.due_at(day, 90)
    assert due == dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    assert not layout.is_due(day, due - dt.timedelta(milliseconds=1), 90)
    assert layout.is_due(day, due, 90)
    assert layout.newest_due_day(due, 90) == day
    assert layout.newest_due_day(dt.datetime(2026, 11, 30, 2, 59, tzinfo=dt.UTC), 0) == dt.date(
        2026, 11, 29
    )


def test_day_bounds_are_half_open_utc() -> None:
    start, end = layout.day_bounds(dt.date(2024, 2, 28))
    assert (start.isoformat(), end.isoformat()) == (
        "2024-02-28T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
    )


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-8-30", "yesterday", "2026-02-30", ""])
def test_bad_days_are_refused_with_the_text(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        layout.parse_day(bad)


@pytest.mark.parametrize("day", [dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(9999, 12, 31)])
def test_a_day_is_written_with_a_four_digit_year_and_reads_back(day: dt.date) -> None:
    # A day before the year 1000 written as "999-12-31" would neither parse back nor sort
    # before "2024-..." in a bucket listing (verify --from 0999-12-31 would list nothing).
    text = layout.format_day(day)
    assert len(text) == 10
    assert layout.parse_day(text) == day
    assert text < layout.format_day(dt.date(2024, 1, 1)) or day.year == 9999


@pytest.mark.parametrize("stored", ["2026-02-30", "2026-8-30", "signed-log", None, 20260830])
def test_a_stored_field_that_names_no_day_is_none(stored: object) -> None:
    assert layout.parse_day_or_none(stored) is None
    assert layout.parse_day_or_none("2026-08-30") == dt.date(2026, 8, 30)
