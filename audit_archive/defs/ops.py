"""The six ops of ``audit_archive_job``: each unpacks the context, calls one step of
audit_archive.archive.steps, and reports what it did as metadata for the Dagster UI."""

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from dagster import (
    AssetMaterialization,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    op,
)

from audit_archive.archive import signed_log, steps
from audit_archive.archive.day_state import DayState, day_state
from audit_archive.defs.names import COLD_ARCHIVE_ASSET
from audit_archive.defs.partitions import partition_day, partition_key
from audit_archive.defs.resources import REEXECUTE_WHOLE, ArchiveResource
from audit_archive.errors import AuditArchiveError, ChainBreakError, format_seq_ranges
from audit_archive.redact import redact


def _failure(exc: BaseException, step: str, secrets: tuple[str, ...]) -> Failure:
    if isinstance(exc, ChainBreakError):
        return Failure(
            description=str(exc),
            metadata={"chain_break_seqs": format_seq_ranges(exc.seqs), "deleted": 0},
        )
    if isinstance(exc, AuditArchiveError):
        return Failure(description=redact(str(exc), secrets))
    return Failure(
        description=redact(
            f"{step} failed: {type(exc).__name__}: {exc}. Nothing was deleted unless the "
            "purge had started; re-running the day is safe and converges.",
            secrets,
        )
    )


@contextmanager
def _operator_errors(
    archive: ArchiveResource, step: str, part: steps.PartRef | None = None
) -> Iterator[None]:
    """Turn any exception into a Failure an operator can act on, with secrets masked
    (driver exceptions can embed a URI with its password), and hand the day's lease
    back so a re-run need not wait for it to expire."""
    try:
        yield
    except Failure:
        if part is not None:
            steps.release(archive.stores, part.day, part.owner, part.lease_token)
        raise
    except Exception as e:
        if part is not None:
            steps.release(archive.stores, part.day, part.owner, part.lease_token)
        raise _failure(e, step, archive.stores.settings.secrets) from None


def _ratio(compressed: int, uncompressed: int) -> float:
    return round(uncompressed / compressed, 2) if compressed else 0.0


NO_PARTITION = (
    "This run has no day: cold_archive and audit_archive_job archive one UTC day per run. "
    "Pick the day: on the asset page (Assets -> cold_archive) click Materialize and choose "
    "the partition in the dialog; from the job (Jobs -> audit_archive_job -> "
    "Materialize..., or its menu -> Launchpad (configure assets)) choose the partition "
    "before Launch Run; or headless: "
    "dagster asset materialize -m audit_archive.definitions --select cold_archive "
    "--partition YYYY-MM-DD. Nothing was changed."
)


@op(out=Out(steps.Extracted, is_required=False))
def extract_chained(context: OpExecutionContext, archive: ArchiveResource) -> Iterator[Any]:
    """Claim the day for this run, finish any purge an earlier run left half done, and
    stage the day's chained events (as raw BSON) for the next part."""
    if not context.has_partition_key:
        raise Failure(description=NO_PARTITION)
    started = time.monotonic()
    day = partition_day(context.partition_key)
    try:
        with _operator_errors(archive, "extract_chained"):
            result = steps.extract(
                archive.stores, day, context.run_id, dt.datetime.now(dt.UTC), log=context.log.info
            )
    except Failure:
        # A failed attempt on an archived day does not hide that it is archived: the
        # partition keeps a materialization of this run with the day's state.
        yield from _still_archived(context, archive, day, "this run failed in extract_chained")
        raise
    meta: dict[str, Any] = {
        "day": context.partition_key,
        "seconds": round(time.monotonic() - started, 3),
    }
    if result.recovered_parts:
        meta["recovered_parts"] = list(result.recovered_parts)
        meta["recovered_deleted"] = result.recovered_deleted
    if isinstance(result, steps.Skip):
        # No output: the five downstream ops are skipped, and the UI says why.
        context.log.info(result.reason)
        state = day_state(archive.stores, result.day)
        if state.records:
            # The day is archived: it shows as materialized on the asset and in the
            # job's Partitions tab like any other run's day, with its current state.
            yield _materialization(
                context, state, {**meta, "changed": "nothing", "reason": result.reason}
            )
            context.log.info(run_summary(state, f"changed nothing ({result.reason})"))
        return
    if result.ref.part > 1:
        # Part 2 or later of an archived day: its parts so far stay visible even if
        # this attempt fails further on (the run's own materialization follows).
        yield from _still_archived(
            context, archive, day, f"archiving part {result.ref.part} follows"
        )
    meta.update(
        part=result.ref.part,
        events=result.event_count,
        seq_range=_seq_range(result.start_seq, result.end_seq),
    )
    yield Output(result, metadata=meta)


def _materialization(
    context: OpExecutionContext, state: DayState, extra: dict[str, Any]
) -> AssetMaterialization:
    return AssetMaterialization(
        COLD_ARCHIVE_ASSET,
        partition=context.partition_key,
        metadata={**day_metadata(state), **extra},
    )


def _still_archived(
    context: OpExecutionContext, archive: ArchiveResource, day: dt.date, why: str
) -> Iterator[AssetMaterialization]:
    """The day's state as a materialization when it already has parts (best effort: the
    store that failed may be the one to read)."""
    try:
        state = day_state(archive.stores, day)
    except Exception:
        return
    if state.records:
        yield _materialization(context, state, {"changed": f"nothing yet: {why}"})


def _own_lease(context: OpExecutionContext, part: steps.PartRef) -> steps.PartRef:
    """The day's lease is this run's: extract_chained took it with the run's id. A step
    handed another run's staging (a re-execution that skipped extract_chained) stops
    before changing anything; the run-start check (resources.py) refuses such runs
    first, this is the last line."""
    if part.owner != context.run_id:
        raise Failure(description=REEXECUTE_WHOLE.format(steps=context.op.name, parent=part.owner))
    return part


def _seq_range(lo: int | None, hi: int | None) -> str:
    return "none" if lo is None else f"{lo}-{hi}"


@op
def to_jsonl_gz(
    context: OpExecutionContext, archive: ArchiveResource, extracted: steps.Extracted
) -> Output[steps.Encoded]:
    """Stream the staged events into deterministic gzip JSONL, checking every event's
    hash and every chain link, and computing the Merkle root and chainEdges."""
    started = time.monotonic()
    settings = archive.stores.settings
    with _operator_errors(archive, "to_jsonl_gz", _own_lease(context, extracted.ref)):
        encoded = steps.encode(
            extracted, settings.cold_prefix, settings.purge_batch_size, log=context.log.info
        )
    s = encoded.summary
    seconds = time.monotonic() - started
    left: dict[str, Any] = {}
    if encoded.malformed:
        # Chained events that cannot be archived as they are: named, never deleted.
        context.log.warning(
            f"{len(encoded.malformed)} malformed event(s) of {extracted.ref.day} are left in "
            f"hot (the chain around them verifies): {'; '.join(encoded.malformed)}"
        )
        left["malformed_left_in_hot"] = MetadataValue.text("\n".join(encoded.malformed))
    return Output(
        encoded,
        metadata={
            **left,
            "events": s.event_count,
            "bytes_uncompressed": MetadataValue.int(s.jsonl_bytes_uncompressed),
            "bytes_compressed": MetadataValue.int(s.jsonl_bytes),
            "compression_ratio": _ratio(s.jsonl_bytes, s.jsonl_bytes_uncompressed),
            "jsonl_sha256": s.jsonl_sha256 or "none (empty day)",
            "merkle_root": s.merkle_root or "none (empty day)",
            "chain_edges": len(s.chain_edges),
            "seconds": round(seconds, 3),
            "events_per_second": round(s.event_count / seconds) if seconds else 0,
        },
    )


@op
def sign_manifest(
    context: OpExecutionContext, archive: ArchiveResource, encoded: steps.Encoded
) -> Output[steps.Signed]:
    """Build the part's manifest and sign it with HMAC-SHA-256 (AUDIT_SIGNING_KEY)."""
    settings = archive.stores.settings
    with _operator_errors(archive, "sign_manifest", _own_lease(context, encoded.ref)):
        signed = steps.sign(encoded, settings.cold_prefix, settings.signing_key.get_secret_value())
    return Output(
        signed,
        metadata={
            "manifest_key": signed.manifest_key,
            "manifest_sha256": signed.manifest_sha256,
            "key_id": signed.key_id,
        },
    )


@op
def upload_and_confirm(
    context: OpExecutionContext,
    archive: ArchiveResource,
    encoded: steps.Encoded,
    signed: steps.Signed,
) -> Output[steps.Uploaded]:
    """Upload the JSONL.gz and the manifest with SHA-256 checksums, then confirm that
    both exist with the right size and checksum."""
    started = time.monotonic()
    with _operator_errors(archive, "upload_and_confirm", _own_lease(context, signed.ref)):
        uploaded = steps.upload_and_confirm(archive.stores, encoded, signed, log=context.log.info)
    s = encoded.summary
    return Output(
        uploaded,
        metadata={
            "bucket": archive.stores.settings.cold_bucket,
            "jsonl_key": s.jsonl_key or "none (empty day)",
            "manifest_key": signed.manifest_key,
            "bytes": MetadataValue.int(s.jsonl_bytes + signed.manifest_bytes),
            "confirmed_by": ", ".join(sorted({c.method for c in uploaded.confirmations})),
            "already_present": len(uploaded.skipped_existing),
            "seconds": round(time.monotonic() - started, 3),
        },
    )


def batch_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """What the UI shows for an archived part (op output and cold_archive asset)."""
    return {
        "day": record["day"],
        "part": record["part"],
        "events": record["eventCount"],
        "seq_range": _seq_range(record["startSeq"], record["endSeq"]),
        "bytes_compressed": MetadataValue.int(record["bytesCompressed"]),
        "bytes_uncompressed": MetadataValue.int(record["bytesUncompressed"]),
        "compression_ratio": _ratio(record["bytesCompressed"], record["bytesUncompressed"]),
        "jsonl_key": record["jsonlKey"] or "none (empty day)",
        "manifest_key": record["manifestKey"],
        "manifest_sha256": record["manifestSha256"],
    }


@op
def record_batch(
    context: OpExecutionContext,
    archive: ArchiveResource,
    encoded: steps.Encoded,
    signed: steps.Signed,
    uploaded: steps.Uploaded,
) -> Output[steps.Recorded]:
    """Insert the batch record (unique on day and part): from here on the part counts as
    archived. With the signed log on (AUDIT_LOG_SIGNING_KEY), also append it to the log
    and publish the checkpoint; only then may its events be deleted from hot."""
    with _operator_errors(archive, "record_batch", _own_lease(context, uploaded.ref)):
        recorded = steps.record(archive.stores, encoded, signed, uploaded, context.run_id)
        # Before purge_hot may delete anything: the part (and any earlier part not yet
        # logged) gets its log index, entry and a published checkpoint (SPEC section 7).
        logged = signed_log.append(archive.stores, context.run_id, log=context.log.info)
    # What the log said goes on with the part: the day's materialization (purge_hot's
    # output) shows it.
    recorded = replace(recorded, log_metadata=dict(logged.metadata()) if logged else {})
    meta = {**batch_metadata(recorded.record), **recorded.log_metadata}
    return Output(recorded, metadata={**meta, "inserted": recorded.inserted})


@op
def purge_hot(
    context: OpExecutionContext, archive: ArchiveResource, recorded: steps.Recorded
) -> Output[steps.Purged]:
    """Delete exactly the recorded part's events from hot, in bounded batches."""
    started = time.monotonic()
    ref = _own_lease(context, recorded.ref)
    with _operator_errors(archive, "purge_hot", ref):
        purged = steps.purge(archive.stores, recorded, log=context.log.info)
        state = day_state(archive.stores, ref.day)
    seconds = time.monotonic() - started
    changed = "new part" if recorded.inserted else "purge finished"
    context.log.info(
        run_summary(state, f"{changed}: part {ref.part}, deleted {purged.deleted:,} from hot")
    )
    # purge_hot's output is cold_archive's: this metadata is the day's materialization.
    return Output(
        purged,
        metadata={
            **day_metadata(state),
            **batch_metadata(recorded.record),
            **recorded.log_metadata,
            "changed": changed,
            "deleted": purged.deleted,
            "batches": purged.batches,
            "exact_id_fallbacks": purged.exact_fallbacks,
            "seconds": round(seconds, 3),
            "deletes_per_second": round(purged.deleted / seconds) if seconds else 0,
        },
    )


def day_metadata(state: DayState) -> dict[str, Any]:
    """The day's current state, on every materialization of the day: the latest part's
    batch (as batch_metadata), the day's parts and events, every part's checksums and
    log index, and the signed log's size."""
    latest = state.latest
    if latest is None:
        return {"day": partition_key(state.day), "parts": 0, "day_events": 0}
    rows = ["| part | events | seq range | jsonl sha256 | manifest sha256 | log index |"]
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for r in state.records:
        rows.append(
            f"| {r['part']} | {r['eventCount']} | {_seq_range(r['startSeq'], r['endSeq'])} "
            f"| {r.get('jsonlSha256') or 'none (empty)'} | {r['manifestSha256']} "
            f"| {_or_none(r.get('logIndex'))} |"
        )
    meta: dict[str, Any] = {
        **batch_metadata(latest),
        "parts": MetadataValue.int(len(state.records)),
        "day_events": MetadataValue.int(state.events),
        "jsonl_sha256": latest.get("jsonlSha256") or "none (empty day)",
        "checksums": MetadataValue.md("\n".join(rows)),
    }
    if state.log_size is not None:
        meta["log_index"] = _or_none(latest.get("logIndex"))
        meta["log_size"] = MetadataValue.int(state.log_size)
    meta.update(witness_metadata(state))
    return meta


def witness_metadata(state: DayState) -> dict[str, Any]:
    """Hook for the witnesses (SPEC section 8): how many cosigned the checkpoint that
    covers the day, once the witness step fills ``state.cosignatures``."""
    return {} if state.cosignatures is None else dict(state.cosignatures)


def _or_none(value: Any) -> Any:
    return "none" if value is None else value


def run_summary(state: DayState, what: str) -> str:
    """The run's last line of its own (what `dagster asset materialize` ends with, before
    Dagster's closing lines): what it did and the day's state after it."""
    log = f"; signed log size {state.log_size}" if state.log_size is not None else ""
    return (
        f"summary: {state.day} {what}; the day has {len(state.records)} part(s), "
        f"{state.events:,} events{log}"
    )
