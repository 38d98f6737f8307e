"""`audit-archive search` finds archived events in place, in bounded memory; the DuckDB
recipe of docs/verification.md reads the same archive in place (over S3 with httpfs, and from files)."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import re
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import duckdb
import duckdb_extension_httpfs
import pytest
from pymongo import MongoClient

from audit_archive.audit.search import Filters, SearchStats, search
from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS
from audit_archive.format.jsonl import parse_line
from audit_archive.settings import Settings
from audit_archive.stores.batches import BatchStore
from audit_archive.stores.clients import open_stores
from audit_archive_dev.embedded import Stack
from audit_archive_tests.support.harness import Harness, due_day, point_archive_at, same_value
from audit_archive_tests.support.reliability import append_events

DAYS = [due_day(k) for k in range(10, 4, -1)]  # six archived days, oldest first
PER_DAY = 150
RECIPE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "verification.md"


@pytest.fixture(scope="module")
def archived(stack: Stack, mongo_client: MongoClient, tmp_path_factory) -> Iterator[Harness]:
    """Six archived days (plus hot events after them), shared by the read-only tests."""
    with pytest.MonkeyPatch.context() as mp:
        h = point_archive_at(
            stack, mongo_client, mp, "searchmodule", str(tmp_path_factory.mktemp("search-work"))
        )
        h.seed({**{day: PER_DAY for day in DAYS}, due_day(4): 20})
        for day in DAYS:
            assert h.run(day).success
        yield h
    mongo_client.drop_database(h.settings.database)


def scan(h: Harness, first: dt.date, last: dt.date, **want: Any) -> list[int]:
    """The seqs a direct scan of the seeded events finds: the answer search must give."""
    out = []
    for e in h.seeded:
        fields = {"actor": e["actor"]["id"], "action": e["action"], "source": e["source"]}
        fields["seq"] = e["seq"]
        if first <= e["at"].date() <= last and all(fields[k] == v for k, v in want.items()):
            out.append(e["seq"])
    return sorted(out)


def found(first: dt.date, last: dt.date, stats: SearchStats | None = None, **want: Any):
    stores = open_stores(Settings.from_env())
    try:
        return [parse_line(line) for line in search(stores, first, last, Filters(**want), stats)]
    finally:
        stores.close()


def test_filters_combine_and_match_a_direct_scan(archived: Harness) -> None:
    h = archived
    first, last = DAYS[1], DAYS[4]
    in_range = [e for e in h.seeded if first <= e["at"].date() <= last]
    actor = Counter(e["actor"]["id"] for e in in_range).most_common(1)[0][0]
    action = next(e["action"] for e in in_range if e["actor"]["id"] == actor)
    source, some_seq = in_range[7]["source"], in_range[7]["seq"]
    cases = [
        {},
        {"actor": actor},
        {"action": action},
        {"source": source},
        {"actor": actor, "action": action},
        {"source": source, "action": action},
        {"seq": some_seq},
        {"seq": some_seq, "source": source},
        {"actor": "nobody"},
    ]
    for want in cases:
        expected = scan(h, first, last, **want)
        events = found(first, last, **want)
        assert [e["seq"] for e in events] == expected, want
    assert len(scan(h, first, last)) == 4 * PER_DAY
    assert len(scan(h, first, last, actor=actor, action=action)) >= 1


def test_found_events_are_the_archived_documents(archived: Harness) -> None:
    h = archived
    by_id = {e["_id"]: e for e in h.seeded}
    events = found(DAYS[0], DAYS[-1], source="billing")
    assert events and all(same_value(e, by_id[e["_id"]]) for e in events)


def test_the_cli_prints_jsonl_in_seq_order_and_reports_days_without_record(
    archived: Harness, capsysbinary
) -> None:
    h = archived
    first, last = DAYS[0] - dt.timedelta(days=1), DAYS[2]
    action = h.seeded[0]["action"]

    code = main(["search", "--from", str(first), "--to", str(last), "--action", action])

    out, err = capsysbinary.readouterr()
    assert code == 0
    lines = out.decode().splitlines()
    assert [parse_line(line)["seq"] for line in lines] == scan(h, first, last, action=action)
    archived_lines = {
        line
        for day in DAYS[:3]
        for line in gzip.decompress(h.get(layout.jsonl_key("audit", day, 1))).decode().splitlines()
    }
    assert set(lines) <= archived_lines, "the archive's own lines, unchanged"
    assert f"{len(lines)} matching of {3 * PER_DAY} events in 3 parts, 4 days" in err.decode()
    assert f"1 days have no record (not archived): {first}" in err.decode()


def test_seq_search_reads_only_the_parts_whose_range_holds_it(archived: Harness) -> None:
    target = next(e for e in archived.seeded if e["at"].date() == DAYS[3])
    stats = SearchStats()
    events = found(DAYS[0], DAYS[-1], stats, seq=target["seq"])
    assert [e["_id"] for e in events] == [target["_id"]]
    assert stats.parts == 1 and stats.parts_skipped_by_seq == len(DAYS) - 1


def test_memory_stays_flat_as_the_day_range_grows(archived: Harness) -> None:
    def peak(days: int) -> tuple[int, int]:
        stats = SearchStats()
        stores = open_stores(archived.settings)
        try:
            tracemalloc.start()
            for _ in search(stores, DAYS[0], DAYS[days - 1], Filters(), stats):
                pass
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            stores.close()
        assert stats.matches == days * PER_DAY
        return top, days

    peak(1)  # warm-up: first-use caches (boto3 models, codecs) are not the search's memory
    one, _ = peak(1)
    many, days = peak(len(DAYS))
    one_day = min(r["bytesUncompressed"] for r in archived.records())
    print(f"peak {one} B for 1 day, {many} B for {days}; a day is {one_day} B uncompressed")
    assert many - one < one_day, f"peak grew by {many - one} B from 1 to {days} days"


def test_an_altered_part_is_reported_and_exits_1(harness: Harness, capsys) -> None:
    day = due_day(2)
    harness.seed({day: 10})
    assert harness.run(day).success
    key = layout.jsonl_key("audit", day, 1)
    text = gzip.decompress(harness.get(key)).decode().replace('"action":"', '"action":"x', 1)
    harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=gzip.compress(text.encode()))

    assert main(["search", "--from", str(day), "--to", str(day)]) == 1
    assert f"{day} part 1: {key}: sha256 differs" in capsys.readouterr().err


def test_a_reader_that_stops_early_is_not_an_error(archived: Harness) -> None:
    # `audit-archive search ... | head -1`: the pipe closes while search still writes.
    cli = "import sys; from audit_archive.cli import main; sys.exit(main())"
    args = ["search", "--from", str(DAYS[0]), "--to", str(DAYS[-1])]
    with subprocess.Popen(
        [sys.executable, "-c", cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
    assert parse_line(first)["seq"] == min(scan(archived, DAYS[0], DAYS[-1]))
    assert proc.returncode == 0, err
    assert "error" not in err.lower() and "Traceback" not in err


def test_bad_day_ranges_are_usage_errors(harness: Harness) -> None:
    assert main(["search", "--from", "2026-08-31", "--to", "2026-08-01"]) == 2
    assert main(["search", "--from", "2026-8-1", "--to", "2026-08-31"]) == 2


# -- DuckDB, reading the archive in place (the docs' recipe, run as written) ----------------


def recipe_sql() -> str:
    """The first ```sql block of the DuckDB section of docs/verification.md."""
    text = RECIPE_PAGE.read_text()
    section = text[text.index("## Query the archive in place with DuckDB") :]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1)


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """httpfs from the duckdb-extension-httpfs wheel (no download at test time)."""
    ext = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "httpfs.duckdb_extension"
    )
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    return con


def recipe(h: Harness, first: dt.date, last: dt.date, actor: str) -> str:
    endpoint = h.env["AUDIT_COLD_ENDPOINT"].removeprefix("http://")
    sql = recipe_sql()
    for example, value in {
        "AKIAEXAMPLE": h.env["AUDIT_COLD_ACCESS_KEY"],
        "example-secret-key": h.env["AUDIT_COLD_SECRET_KEY"],
        "minio.internal:9000": endpoint,
        "s3://dezky-audit/": f"s3://{h.bucket}/",
        "2026-08-01": str(first),
        "2026-08-31": str(last),
        "'u42'": f"'{actor}'",
    }.items():
        assert example in sql, f"the docs' recipe no longer contains {example!r}"
        sql = sql.replace(example, value)
    return sql


def test_the_docs_duckdb_recipe_reads_the_archive_in_place_over_s3(archived: Harness) -> None:
    h = archived
    first, last = DAYS[1], DAYS[3]
    actor = Counter(e["actor"]["id"] for e in h.seeded).most_common(1)[0][0]

    rows = duckdb_connection().execute(recipe(h, first, last, actor)).fetchall()

    assert [r[1] for r in rows] == scan(h, first, last, actor=actor)
    by_seq = {e["seq"]: e for e in h.seeded}
    for day, seq, at, _source, action, row_actor, *_ in rows:
        assert layout.format_day(day) == layout.format_day(by_seq[seq]["at"].date())
        assert at.replace(tzinfo=dt.UTC) == by_seq[seq]["at"]
        assert (action, row_actor) == (by_seq[seq]["action"], actor)


def test_the_docs_duckdb_recipe_works_on_downloaded_files(
    archived: Harness, tmp_path, monkeypatch
) -> None:
    h = archived
    for key in h.object_keys("audit/"):
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(h.get(key))
    monkeypatch.chdir(tmp_path)
    actor = Counter(e["actor"]["id"] for e in h.seeded).most_common(1)[0][0]
    sql = recipe(h, DAYS[0], DAYS[-1], actor)
    # The docs' local variant: the same SELECT on the synced folder, no httpfs.
    query = sql[sql.index("SELECT") :].replace(f"s3://{h.bucket}/audit/", "audit/")

    rows = duckdb.connect().execute(query).fetchall()

    assert [r[1] for r in rows] == scan(h, DAYS[0], DAYS[-1], actor=actor)


def test_a_range_of_millennia_costs_what_its_records_cost(
    harness: Harness, capsysbinary, monkeypatch
) -> None:
    day = due_day(2)
    harness.seed({day: 12})
    assert harness.run(day).success
    asked: list[tuple[dt.date, dt.date]] = []
    between = BatchStore.records_between

    def spy(self: BatchStore, first: dt.date, last: dt.date):
        asked.append((first, last))
        return between(self, first, last)

    def per_day(*_: Any, **__: Any) -> None:
        raise AssertionError("search asked for one day's records")

    monkeypatch.setattr(BatchStore, "records_between", spy)
    monkeypatch.setattr(BatchStore, "records", per_day)

    assert main(["search", "--from", "1970-01-01", "--to", "9999-12-31"]) == 0

    out, err = capsysbinary.readouterr()
    assert len(out.splitlines()) == 12
    assert asked == [(dt.date(1970, 1, 1), dt.date(9999, 12, 31))], "one query for the range"
    days = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days + 1
    assert (
        f"12 matching of 12 events in 1 parts, {days} days; {days - 1} days have no record "
        "(not archived): 1970-01-01, 1970-01-02, 1970-01-03, 1970-01-04, 1970-01-05, ..."
    ) in err.decode()


def test_the_docs_find_bson_lines_with_duckdb(harness: Harness, tmp_path, monkeypatch) -> None:
    # A recorded query filter is archived as a {"bson": ...} line: the recipe's rows leave
    # it out (NULL columns), `seq IS NULL` counts it, and the docs' second block (on
    # downloaded files) gives its base64, which decodes to the stored document.
    day = due_day(2)
    docs = append_events(
        harness,
        [layout.day_bounds(day)[0] + dt.timedelta(minutes=m) for m in range(6)],
        lambda i: {"filter": {"$regex": "^adm", "$options": "i"}} if i == 2 else {},
    )
    assert harness.run(day).success
    for key in harness.object_keys("audit/"):
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(harness.get(key))
    monkeypatch.chdir(tmp_path)
    text = RECIPE_PAGE.read_text()
    section = text[text.index("## Query the archive in place with DuckDB") :]
    block = re.findall(r"```sql\n(.*?)```", section, re.S)[1]
    local = block.replace("s3://dezky-audit/audit/", "audit/")
    files = "read_json('audit/day=*/part-*.jsonl.gz', format = 'newline_delimited', "
    files += "hive_partitioning = true, union_by_name = true)"
    con = duckdb.connect()

    [(day_found, text_b64)] = con.execute(local).fetchall()
    [(nulls,)] = con.execute(f"SELECT count(*) FROM {files} WHERE seq IS NULL").fetchall()

    assert day_found == day and nulls == 1
    decoded = bson.decode(base64.b64decode(text_b64), EVENT_CODEC_OPTIONS)
    assert decoded["_id"] == docs[2]["_id"] and decoded["filter"] == docs[2]["filter"]


def test_a_record_without_a_usable_seq_range_is_read_not_trusted(harness: Harness) -> None:
    day = due_day(2)
    docs = harness.seed({day: 8})
    assert harness.run(day).success
    harness.batches.update_one({"day": str(day)}, {"$set": {"startSeq": None}})
    stats = SearchStats()
    assert [e["_id"] for e in found(day, day, stats, seq=docs[3]["seq"])] == [docs[3]["_id"]]
    assert stats.parts == 1 and not stats.problems
