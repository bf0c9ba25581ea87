"""Request bodies read as a hostile client may send them: the size checked while reading (from
`Content-Length` first), gzip decompressed within the same limit, within the read timeout, and
a JSON body's records counted as its bytes arrive, so that one holding more than serve.max_rows
is refused before it is parsed (parsing holds several times the body in memory)."""

from __future__ import annotations

import re
import zlib

from fastapi import Request
from starlette.requests import ClientDisconnect

from churn.config import ServeConfig
from churn.service.errors import ClientError, ClientGone

CSV = "text/csv"
JSON = "application/json"
CLOSE = {"connection": "close"}  # the rest of a refused body is not worth reading


async def read(request: Request, limits: ServeConfig, max_records: int | None = None) -> tuple[str, bytes]:
    """The body's kind (JSON or CSV) and bytes, decompressed.

    Raises:
        ClientError: 415 for another content type or encoding, 413 over serve.max_body_mb, or a
            JSON body with more than `max_records` records.
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
    kind = CSV if kind == CSV else JSON
    counter = RecordCounter(max_records) if kind == JSON and max_records is not None else None
    body = await _stream(request, limit, counter if encoding != "gzip" else None)
    if encoding == "gzip":
        body = _gunzip(body, limit)
        if counter is not None:
            counter.feed(body)
    return kind, body


async def _stream(request: Request, limit: int, counter: RecordCounter | None) -> bytes:
    parts, size = [], 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise ClientError(413, f"the body exceeds {limit:,} bytes (serve.max_body_mb)", headers=CLOSE)
            if counter is not None:
                counter.feed(part)
            parts.append(part)
    except ClientDisconnect:
        raise ClientGone from None
    return b"".join(parts)


# After `"`: the rest of a JSON string (escapes included), up to its closing quote.
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.DOTALL)
_STRING_PART = re.compile(rb'(?:[^"\\]|\\.)*', re.DOTALL)  # as much of it as has arrived
_TOKEN = re.compile(rb'[{}\[\]"]')


class RecordCounter:
    """Counts a JSON body's records while it streams in: the objects and arrays opened two or
    three levels deep (`{"customers": [{...}]}` and MLflow's formats alike; a record's own
    values are scalars). Quoted text is skipped, so a brace inside a value is not counted.

    Cheap while it cannot matter: as long as the body holds no more braces and brackets than
    the limit allows, nothing is scanned; past that, it is scanned exactly from the start.

    Raises (from feed):
        ClientError: 413 once the count passes `max_records` (plus the two containers of
            MLflow's dataframe_split).
    """

    def __init__(self, max_records: int) -> None:
        self.limit = max_records + 2
        self.openers = 0
        self.seen: list[bytes] | None = []  # kept until exact scanning starts
        self.depth = self.records = 0
        self.in_string, self.carry = False, b""

    def feed(self, part: bytes) -> None:
        if self.seen is not None:
            self.openers += part.count(b"{") + part.count(b"[")
            self.seen.append(part)
            if self.openers <= self.limit:
                return
            part, self.seen = b"".join(self.seen), None
        self._scan(part)

    def _scan(self, part: bytes) -> None:
        data, at = self.carry + part, 0
        self.carry = b""
        while at < len(data):
            if self.in_string:
                end = _STRING_REST.match(data, at)
                if end is None:  # the string goes on in the next part (perhaps mid-escape)
                    self.carry = data[_STRING_PART.match(data, at).end() :]  # type: ignore[union-attr]
                    return
                at, self.in_string = end.end(), False
                continue
            token = _TOKEN.search(data, at)
            if token is None:
                return
            at = token.end()
            self._token(token.group())

    def _token(self, token: bytes) -> None:
        if token == b'"':
            self.in_string = True
        elif token in (b"{", b"["):
            self.depth += 1
            self.records += self.depth in (2, 3)
            if self.records > self.limit:
                raise ClientError(
                    413,
                    f"more than {self.limit - 2:,} rows in one request (serve.max_rows); "
                    "split the customers over several requests",
                    headers=CLOSE,
                )
        else:
            self.depth -= 1


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
