"""Sample payloads shaped like users' data, shared by every test that needs them.

One value of every BSON type (the types MongoDB stores, not only the JSON-born ones), and
payload objects whose keys an Extended JSON parser reads as type wrappers (recorded query
filters are ordinary audit data; SPEC section 3 writes such documents as ``{"bson": ...}``
lines).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

from bson import Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import Binary

INT32_MAX = 2**31 - 1

# One value of every BSON type, nested arrays and documents included.
EVERY_BSON_TYPE: dict[str, Any] = {
    "double": 2.5,
    "negZero": -0.0,
    "nan": math.nan,
    "inf": math.inf,
    "negInf": -math.inf,
    "string": "é ☃ \U0001f600 \u202e",
    "document": {"nested": {"deeper": [1, {"x": None}]}},
    "array": [[1, 2], [], [[3]], {"in": "array"}],
    "binary": Binary(b"\x00\x01\xfe\xff", 0),
    "uuid": Binary(uuid.UUID("12345678-1234-5678-1234-567812345678").bytes, 4),
    "legacyUuid": Binary(b"0123456789abcdef", 3),
    "objectId": ObjectId("0123456789abcdef01234567"),
    "bool": True,
    "date": dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC),
    "preEpoch": dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
    # The edges of what the embedded server stores (it decodes dates as Python datetimes;
    # MongoDB itself also takes dates beyond year 9999, which test_fuzz_payloads covers
    # without a server).
    "lastDate": dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC),
    "firstDate": dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    "null": None,
    "regex": Regex("^adm.*$", "im"),
    "code": Code("function () { return 1; }"),
    "codeWithScope": Code("return x;", {"x": 1}),
    "int32": 7,
    "timestamp": Timestamp(1_700_000_000, 3),
    "int64": Int64(2**40),
    "int64Max": Int64(2**63 - 1),
    "decimal": Decimal128("1234.5678901234567890"),
    "decimalNaN": Decimal128("NaN"),
    "decimalInf": Decimal128("-Infinity"),
    "minKey": MinKey(),
    "maxKey": MaxKey(),
    "dbref": DBRef("users", ObjectId("0123456789abcdef01234567")),
}

# Payload objects that a Relaxed Extended JSON parser would read as something else.
WRAPPER_LOOKALIKES: list[dict[str, Any]] = [
    {"filter": {"email": {"$regex": "@example\\.com$", "$options": "i"}}},
    {"filter": {"name": {"$regex": "^adm"}}},
    {"when": {"$date": "yesterday"}},
    {"when": {"$date": "2026-01-01T00:00:00Z"}},
    {"id": {"$oid": "not-an-object-id"}},
    {"n": {"$numberLong": "12"}},
    {"update": {"$set": {"role": "admin"}, "$inc": {"logins": 1}}},
    {"ref": {"$ref": "users", "$id": 5}},
]
