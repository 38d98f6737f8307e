"""Cold storage that survives a disk (docs/deployment.md "A second copy of the archive"):
a mirror of the bucket made by an ordinary copy tool verifies `valid` on its own, a
damaged copy does not, and the archive comes back from the copy after the first bucket
is lost: verify, restore and a re-seeded primary all work from it.

The copy tool is played by a boto3 client that sends and keeps no checksums (what rclone,
`mc mirror` or `aws s3 sync` do against many servers): objects arrive without the
SHA-256 the archive wrote them with, and verify must still prove them by their bytes."""

from __future__ import annotations

import datetime as dt

import pytest

from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive_dev.embedded import create_bucket, s3_client
from audit_archive_tests.support.harness import Harness, due_day


def mirror(source_client, source: str, target: str, prefix: str) -> list[str]:
    """Copy every object under ``prefix`` from ``source`` to ``target`` the way a mirror
    tool does: GET each object, PUT it again, no checksum sent or kept."""
    endpoint = source_client.meta.endpoint_url
    create_bucket(endpoint, target)
    copier = s3_client(endpoint, checksums_when_required=True)
    copied = []
    for page in copier.get_paginator("list_objects_v2").paginate(Bucket=source, Prefix=prefix):
        for obj in page.get("Contents") or ():
            body = copier.get_object(Bucket=source, Key=obj["Key"])["Body"].read()
            copier.put_object(Bucket=target, Key=obj["Key"], Body=body)
            copied.append(obj["Key"])
    return copied


def lose_bucket(client, bucket: str) -> None:
    """The disk under the first bucket is gone."""
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in [*(page.get("Versions") or ()), *(page.get("DeleteMarkers") or ())]:
            client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def archived(harness: Harness) -> tuple[Harness, list[dt.date]]:
    days = [due_day(3), due_day(2)]
    harness.seed({days[0]: 40, days[1]: 25})
    for day in days:
        assert harness.run(day).success
    return harness, days


def verify(first: dt.date, last: dt.date, *extra: str) -> int:
    return main(["verify", "--deep", "--from", str(first), "--to", str(last), *extra])


def use_bucket(harness: Harness, monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    harness.env["AUDIT_COLD_BUCKET"] = bucket
    monkeypatch.setenv("AUDIT_COLD_BUCKET", bucket)


def test_a_mirror_made_by_a_copy_tool_verifies_valid(archived, monkeypatch, capsys) -> None:
    harness, days = archived
    copy = f"{harness.bucket}-copy"
    copied = mirror(harness.s3, harness.bucket, copy, harness.settings.cold_prefix)
    assert sorted(copied) == harness.object_keys(with_probe=True), "the probe object too"
    head = harness.s3.head_object(Bucket=copy, Key=copied[0], ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head, "the copy kept no checksum: verify reads the bytes"

    use_bucket(harness, monkeypatch, copy)
    capsys.readouterr()
    assert verify(days[0], days[-1]) == 0
    out = capsys.readouterr().out
    assert f"{len(days)} valid" in out and "0 finding(s): ok" in out


def test_a_damaged_mirror_is_not_valid(archived, monkeypatch, capsys) -> None:
    # The check above means something only if a bad copy fails it.
    harness, days = archived
    copy = f"{harness.bucket}-copy"
    mirror(harness.s3, harness.bucket, copy, harness.settings.cold_prefix)
    key = layout.jsonl_key(harness.settings.cold_prefix, layout.format_day(days[0]), 1)
    data = bytearray(harness.s3.get_object(Bucket=copy, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    harness.s3.put_object(Bucket=copy, Key=key, Body=bytes(data))

    use_bucket(harness, monkeypatch, copy)
    capsys.readouterr()
    assert verify(days[0], days[-1]) == 1
    assert "modified" in capsys.readouterr().out


def test_after_losing_the_first_bucket_the_archive_comes_back_from_the_copy(
    archived, monkeypatch, capsys
) -> None:
    harness, days = archived
    primary, copy = harness.bucket, f"{harness.bucket}-copy"
    originals = {d["_id"]: d for d in harness.seeded if d["at"].date() == days[0]}
    mirror(harness.s3, primary, copy, harness.settings.cold_prefix)
    lose_bucket(harness.s3, primary)

    # Read straight from the copy: restore a day into the restore collection.
    use_bucket(harness, monkeypatch, copy)
    assert main(["restore", "--day", str(days[0])]) == 0
    restored = {d["_id"]: d for d in harness.db["auditevents_restored"].find({})}
    assert set(restored) == set(originals)
    assert all(restored[i]["hash"] == originals[i]["hash"] for i in originals)

    # Or rebuild the first bucket from the copy (mirror back), and the archive verifies
    # there again and keeps archiving into it.
    mirror(harness.s3, copy, primary, harness.settings.cold_prefix)
    use_bucket(harness, monkeypatch, primary)
    capsys.readouterr()
    assert verify(days[0], days[-1]) == 0
    assert f"{len(days)} valid" in capsys.readouterr().out
    later = due_day(1)
    harness.seed({later: 5})
    assert harness.run(later).success
    assert verify(days[0], later) == 0
