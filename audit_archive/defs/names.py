"""The names the Dagster wiring shares between its modules (the job, the asset, the ops'
step keys), in one place so the run-start checks (resources.py) need not import the job."""

from dagster import AssetKey

ARCHIVE_JOB = "audit_archive_job"
COLD_ARCHIVE_ASSET = AssetKey("cold_archive")
PARTITION_TAG = "dagster/partition"
# The ops of one day's run, in order (SPEC section 6). The first takes the day's lease for
# the run and stages what the others read.
STEPS = (
    "extract_chained",
    "to_jsonl_gz",
    "sign_manifest",
    "upload_and_confirm",
    "record_batch",
    "purge_hot",
)
FIRST_STEP = STEPS[0]
