"""The signed log's bookkeeping in MongoDB: one document per leaf.

Collection ``<batches>_log`` (SPEC section 4 lets implementations keep such collections
named after the batches collection). Leaf ``i`` is ``{_id: i, day, part, manifestKey,
manifestSha256, leafHash}``: ``_id`` makes indexes unique and the unique ``(day, part)``
index makes sure no part is a leaf twice, whatever races. The leaf hashes let a run
compute the tree without reading every manifest from S3; the bucket's entry objects
remain the authority, so the tree can be rebuilt from the bucket alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database

from audit_archive.format.layout import format_day


class LogStore:
    def __init__(self, db: Database, batches: str) -> None:
        self.leaves = db[f"{batches}_log"]
        self.batches = db[batches]

    def ensure_indexes(self) -> None:
        self.leaves.create_index(
            [("day", ASCENDING), ("part", ASCENDING)], unique=True, name="day_part_unique"
        )

    def all_leaves(self) -> list[dict[str, Any]]:
        """Every leaf, by index."""
        return list(self.leaves.find({}).sort([("_id", ASCENDING)]))

    def insert_leaf(self, leaf: dict[str, Any], session: ClientSession | None = None) -> None:
        """Raises DuplicateKeyError if the index or the part is already a leaf."""
        self.leaves.insert_one(dict(leaf), session=session)

    def unlogged_records(self) -> list[dict[str, Any]]:
        """Batch records no published checkpoint covers yet, in (day, part) order."""
        flt = {"logIndex": {"$exists": False}}
        return list(self.batches.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)]))

    def any_unlogged(self) -> bool:
        return self.batches.find_one({"logIndex": {"$exists": False}}, {"_id": 1}) is not None

    def set_log_index(
        self, day: str, part: int, index: int, session: ClientSession | None = None
    ) -> None:
        self.batches.update_one(
            {"day": day, "part": part}, {"$set": {"logIndex": index}}, session=session
        )

    def log_index(self, day: dt.date, part: int) -> int | None:
        doc = self.batches.find_one({"day": format_day(day), "part": part}, {"logIndex": 1})
        value = (doc or {}).get("logIndex")
        return value if isinstance(value, int) else None

    def size(self) -> int:
        """How many leaves the log holds in MongoDB (the published checkpoint's size once
        a run has appended and published)."""
        return self.leaves.count_documents({})

    def index_named(self, index: int) -> bool:
        """Whether a batch record's ``logIndex`` names leaf ``index``."""
        return self.batches.find_one({"logIndex": index}, {"_id": 1}) is not None
