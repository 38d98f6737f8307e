"""Keep secrets out of every message: logs, metadata, exceptions (ours and the drivers')."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

_URI_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]*@", re.I
)
# A userinfo without a colon is often a bearer token (https://<token>@host): all masked.
_URI_TOKEN = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^:@/\s]+@", re.I)
MASK = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URI passwords and every known secret value (raw and URL-encoded)."""
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _URI_TOKEN.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, MASK)
    return text
