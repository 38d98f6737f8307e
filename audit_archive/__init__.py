"""audit-archive: hot MongoDB audit events -> signed, verifiable S3 cold storage.

The pure modules (canonical, merkle, chain, jsonl, manifest, layout, settings, redact)
hold the data contract and never import Dagster, pymongo clients or boto3, so the
format can be tested and reasoned about on its own. hot/cold wrap the clients,
archiver orchestrates one day, and the Dagster layer (resources, ops, jobs,
definitions) is a thin shell around that.
"""

__version__ = "0.1.0"
