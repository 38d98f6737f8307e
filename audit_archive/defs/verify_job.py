"""``audit_verify_job`` and its weekly schedule: ``audit-archive verify`` from Dagster.

One thin op over verify.py. Per-day findings become the step's metadata (a table of
the days with findings, and the JSON report); any finding fails the run, so an operator
is alerted by whatever Dagster alerting is set up (run failure sensors, Slack, e-mail).

Each verified day that holds parts (or findings) is also reported on the cold_archive
asset, as an observation of that day's partition (``verify_status``...): the asset page's
partition view then shows each day's latest verify result next to its materialization.
Observations, not asset checks: Dagster 1.13 can partition an asset check, but a
partitioned check's result is produced by the check's own step for the partitions its run
targets. The weekly verification checks every day in one pass (the chain runs across
parts and days), so reporting into a partitioned check would take one check step per
day, hundreds per run; an observation per day costs one event and keeps the one pass.
"""

# No `from __future__ import annotations` here: Dagster reads the op's Config annotation
# when the op is defined.
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetObservation,
    Config,
    DefaultScheduleStatus,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    in_process_executor,
    job,
    op,
    schedule,
)
from pydantic import Field

from audit_archive.defs.names import COLD_ARCHIVE_ASSET
from audit_archive.defs.partitions import partition_key
from audit_archive.defs.resources import ArchiveResource
from audit_archive.format import layout
from audit_archive.redact import redact
from audit_archive.settings import DefinitionSettings

if TYPE_CHECKING:
    # The readers are imported when the op runs, not when the code location loads: every
    # run worker of audit_archive_job loads this module (docs/performance.md, catch-up).
    from audit_archive.audit import verify

MAX_TABLE_ROWS = 200  # the UI stays readable; the JSON report lists every day with findings


class VerifyConfig(Config):
    from_day: str | None = Field(
        default=None,
        description="First day (YYYY-MM-DD); default ARCHIVE_START_DATE, or the first day "
        "holding a batch record or an object if earlier.",
    )
    to_day: str | None = Field(
        default=None,
        description="Last day (YYYY-MM-DD); default the newest due day, or the last day "
        "holding a batch record or an object if later.",
    )
    deep: bool = Field(
        default=False,
        description="Also stream every JSONL.gz: sha256, every event's hash and link, "
        "chainEdges, counts and Merkle root against the content.",
    )


def _day(value: str | None, name: str) -> dt.date | None:
    if value is None or not value.strip():
        return None
    try:
        return layout.parse_day(value.strip())
    except ValueError as e:
        raise Failure(description=f"config {name}: {e}") from None


def report_metadata(report: "verify.Report") -> dict[str, Any]:
    """What the UI shows for a verification: counts, the tier boundary, the findings."""
    s = report.summary
    meta: dict[str, Any] = {
        "range": f"{s['from']} to {s['to']}" if s["from"] else s.get("note", ""),
        "mode": s["mode"],
        "days": MetadataValue.int(s["days"]),
        "findings": MetadataValue.int(s["findings"]),
        "parts": MetadataValue.int(s["parts"]),
        "events": MetadataValue.int(s["events"]),
        "oldestHotSeq": _seq(s["oldestHotSeq"]),
        "highestArchivedSeq": _seq(s["highestArchivedSeq"]),
        "seconds": s["seconds"],
    }
    if "log" in s:  # the signed log's checkpoint: copy it out to keep as a witness
        log = s["log"]
        meta["log_origin"] = log["origin"]
        meta["log_size"] = _seq(log["checkpointSize"])
        meta["log_root"] = log["checkpointRoot"] or "none"
        meta["log_findings"] = MetadataValue.int(len(log["findings"]))
        if "witnessedSize" in log:  # SPEC 8: what a quorum of witnesses cosigned
            meta["log_witnessed_size"] = _seq(log["witnessedSize"])
            meta["log_cosignatures"] = MetadataValue.int(len(log["witnesses"]))
            meta["log_witnesses"] = ", ".join(log["witnesses"]) or "none"
    for status, count in sorted(s["counts"].items()):
        meta[f"days_{status.replace('-', '_')}"] = MetadataValue.int(count)
    bad = report.with_findings()
    if bad:
        rows = ["| day | status | findings |", "| --- | --- | --- |"]
        for d in bad[:MAX_TABLE_ROWS]:
            text = "<br>".join(_cell(str(f)) for f in d.findings)
            rows.append(f"| {d.day} | **{d.status}** | {text} |")
        if len(bad) > MAX_TABLE_ROWS:
            rows.append(f"| ... | | {len(bad) - MAX_TABLE_ROWS} more days in the JSON report |")
        meta["findings_by_day"] = MetadataValue.md("\n".join(rows))
    if report.archive:
        meta["archive_findings"] = MetadataValue.md(
            "\n".join(f"- {_cell(str(f))}" for f in report.archive)
        )
    meta["report"] = MetadataValue.json(
        {
            "days": [d.as_dict() for d in bad],
            "archive": [f.as_dict() for f in report.archive],
            "summary": dict(s),
        }
    )
    return meta


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _seq(value: int | None) -> Any:
    return "none" if value is None else MetadataValue.int(value)


def observe_days(report: "verify.Report") -> Iterator[AssetObservation]:
    from audit_archive.audit import verify

    """One observation of cold_archive per verified day that has something in cold storage
    or a finding beyond "not archived yet" (which the asset's partitions already show).
    Yielded by the op before it fails on a finding (events logged with log_event are lost
    when the op raises)."""
    mode = report.summary["mode"]
    for d in report.days:
        if not d.due or (d.parts == 0 and d.status in (verify.Status.MISSING,)):
            continue
        if d.status is verify.Status.NOT_DUE:
            continue
        findings = "; ".join(_cell(str(f)) for f in d.findings[:20]) or "none"
        yield AssetObservation(
            COLD_ARCHIVE_ASSET,
            partition=partition_key(d.day),
            metadata={
                "verify_status": str(d.status),
                "verify_mode": mode,
                "verify_findings": MetadataValue.text(findings),
                "parts": MetadataValue.int(d.parts),
                "events": MetadataValue.int(d.events),
            },
        )


@op(tags={"audit_archive/kind": "verify"})
def verify_archive(
    context: OpExecutionContext, config: VerifyConfig, archive: ArchiveResource
) -> Iterator[AssetObservation | Output[dict]]:
    """Verify every day in the range like `audit-archive verify`; a finding fails the run."""
    from audit_archive.audit import verify

    stores = archive.stores
    first, last = _day(config.from_day, "from_day"), _day(config.to_day, "to_day")
    try:
        report = verify.verify(stores, first, last, deep=config.deep)
    except verify.RangeError as e:
        raise Failure(description=str(e)) from None
    meta = report_metadata(report)
    yield from observe_days(report)
    bad = report.with_findings()
    secrets = stores.settings.secrets
    for d in bad:
        context.log.error(
            redact(f"{d.day} {d.status}: " + "; ".join(map(str, d.findings)), secrets)
        )
    for finding in report.archive:
        context.log.error(redact(f"archive: {finding}", secrets))
    if not report.ok:
        raise Failure(description=redact(_failure_text(report), secrets), metadata=meta)
    context.log.info(
        f"{report.summary['days']} days verified ({report.summary['mode']}): no findings"
    )
    yield Output(report.summary, metadata=meta)


def _failure_text(report: "verify.Report") -> str:
    bad = report.with_findings()
    parts = []
    if bad:
        shown = ", ".join(f"{d.day} {d.status}" for d in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        parts.append(f"{len(bad)} day(s) with findings: {shown}{more}. See findings_by_day")
    if report.archive:
        parts.append(f"{len(report.archive)} finding(s) of the whole archive: {report.archive[0]}")
    if report.summary.get("strayObjects"):
        parts.append(
            "objects outside any day folder: " + ", ".join(report.summary["strayObjects"][:10])
        )
    return "; ".join(parts) + ". Investigate before anything is restored or deleted."


def build_verify_job() -> JobDefinition:
    @job(
        name="audit_verify_job",
        executor_def=in_process_executor,
        description=(
            "Verify the archive like an auditor (audit-archive verify): signatures, sha256, "
            "objects against records, the chain across parts, days and hot, due events left "
            "in hot. Any finding fails the run. Config: from_day, to_day, deep."
        ),
        tags={"audit_archive/kind": "verify"},
    )
    def audit_verify_job() -> None:
        verify_archive()

    return audit_verify_job


def verify_cron(settings: DefinitionSettings) -> str:
    """Sundays, two hours after the daily archive run (so the newest day is in)."""
    return f"0 {(settings.run_hour_utc + 2) % 24} * * 0"


def build_verify_schedule(
    verify_job: JobDefinition, settings: DefinitionSettings
) -> ScheduleDefinition:
    @schedule(
        name="audit_verify_schedule",
        job=verify_job,
        cron_schedule=verify_cron(settings),
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING
        if settings.enabled
        else DefaultScheduleStatus.STOPPED,
        description="Weekly manifest-only verification of every day from ARCHIVE_START_DATE "
        "to the newest due day; on when ARCHIVE_ENABLED=true.",
    )
    def audit_verify_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        week = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return RunRequest(run_key=f"verify:{week}")

    return audit_verify_schedule
