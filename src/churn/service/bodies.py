"""Request bodies read as a hostile client may send them: the size checked while reading (from
`Content-Length` first), gzip decompressed within the same limit, within the read timeout."""

from __future__ import annotations

import zlib

from fastapi import Request
from starlette.requests import ClientDisconnect

from churn.config import ServeConfig
from churn.service.errors import ClientError, ClientGone

CSV = "text/csv"
JSON = "application/json"
CLOSE = {"connection": "close"}  # the rest of a refused body is not worth reading


async def read(request: Request, limits: ServeConfig) -> tuple[str, bytes]:
    """The body's kind (JSON or CSV) and bytes, decompressed.

    Raises:
        ClientError: 415 for another content type or encoding, 413 over serve.max_body_mb.
        ClientGone: the body never came.
    """
    kind = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if kind not in (JSON, CSV, "*/*", ""):
        raise ClientError(415, f"content type {kind!r} is not accepted; send application/json or text/csv")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ClientError(415, f"Content-Encoding {encoding!r} is not accepted; send identity or gzip")
    limit = int(limits.max_body_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(
            413, f"the body has {int(declared):,} bytes; at most {limit:,} (serve.max_body_mb)", headers=CLOSE
        )
    body = await _stream(request, limit)
    if encoding == "gzip":
        body = _gunzip(body, limit)
    return (CSV if kind == CSV else JSON), body


async def _stream(request: Request, limit: int) -> bytes:
    parts, size = [], 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise ClientError(413, f"the body exceeds {limit:,} bytes (serve.max_body_mb)", headers=CLOSE)
            parts.append(part)
    except ClientDisconnect:
        raise ClientGone from None
    return b"".join(parts)


def _gunzip(body: bytes, limit: int) -> bytes:
    """The decompressed body, refused as soon as it passes `limit` (a small bomb stays small)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ClientError(400, f"the body is not valid gzip ({error})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ClientError(413, f"the body decompresses past {limit:,} bytes (serve.max_body_mb)")
    return out
