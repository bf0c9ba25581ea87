"""SQL as text: database URLs shown without their password, a query checked to be one
statement, table names parsed as the database reads them, and names shortened and escaped for
messages. A leaf module (standard library only): the config checks its URLs with it.

A query is lexed, not parsed: quotes ('...', "...", PostgreSQL's $tag$...$tag$), comments
(-- to the end of the line, /* ... */) and parentheses are followed, which is enough to find a
second statement or a `)` that would close churn's own `SELECT ... FROM (<query>)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from churn.errors import ChurnError

SHOWN_CHARS = 80  # a name or query longer than this is shortened in messages
POSTGRES_NAME_BYTES = 63  # PostgreSQL keeps this many bytes of a name (NAMEDATALEN - 1)
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PASSWORD_PARAMETER = re.compile(r"((?:^|[?&])password=).*", re.IGNORECASE)


def is_url(text: str | Path) -> bool:
    """A database URL (scheme://...) rather than a file path."""
    return isinstance(text, str) and bool(_URL.match(text))


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case, without a driver suffix (postgresql+adbc -> postgresql)."""
    return url.split("://", 1)[0].split("+")[0].lower()


def redact(url: str) -> str:
    """The URL without its password, whether or not it parses: anything between `//` and the
    last `@` but the user name is hidden, and so is everything after a password= parameter."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    at = rest.rfind("@")
    if at >= 0 and not rest.startswith("/"):
        user = rest[:at].split(":", 1)[0]
        hidden = ":***" if ":" in rest[:at] else ""
        rest = ("***" if any(c in user for c in "/?#[]") else user) + hidden + rest[at:]
    return f"{scheme}://" + _PASSWORD_PARAMETER.sub(r"\1***", rest)


def has_password(url: str) -> bool:
    """A password in the URL: after the user name, or as a password= parameter (libpq's)."""
    rest = url.partition("://")[2]
    at = rest.rfind("@")
    in_user_part = at >= 0 and not rest.startswith("/") and ":" in rest[:at]
    return in_user_part or bool(_PASSWORD_PARAMETER.search(rest))


def check_url(url: str) -> None:
    """Refuse a URL that does not parse the way churn reads it, naming only its scheme: a
    message must not show a password that a stray `/`, `?`, `#` or `@` moved out of place.

    Raises:
        ChurnError: the URL does not parse, or (SQLite) holds a user or password.
    """
    scheme = scheme_of(url)
    fix = (
        "percent-encode the user name and password (/ as %2F, ? as %3F, # as %23, @ as %40) and check the host and port"
    )
    try:
        parts = urlsplit(url)
        _ = parts.hostname, parts.port
    except ValueError:
        raise ChurnError(f"a {scheme}:// URL could not be read; {fix}") from None
    rest = url.partition("://")[2]
    if rest.rfind("@") >= len(parts.netloc) and not rest.startswith("/"):
        raise ChurnError(f"a {scheme}:// URL could not be read (an @ after the host); {fix}")
    if scheme == "sqlite" and parts.netloc:
        raise ChurnError(
            "a sqlite:// URL names a file and takes no user, password or host; write "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )


def shown(text: str) -> str:
    """A name or query as a message shows it: control characters escaped, at most SHOWN_CHARS."""
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return escaped if len(escaped) <= SHOWN_CHARS else escaped[: SHOWN_CHARS - 1] + "…"


def one_statement(query: str, where: str = "--query") -> str:
    """The query without trailing semicolons, comments and blanks.

    Raises:
        ChurnError: the query is empty, holds a second statement, an unclosed quote or comment,
            or a parenthesis closed that it never opened.
    """
    end = _statement_end(query, where)
    if not query[:end].strip():
        raise ChurnError(f"{where} is empty; give a SELECT")
    return query[:end].rstrip()


def _statement_end(query: str, where: str) -> int:
    """Where the query's only statement ends (what follows is `;`, comments and blanks)."""
    depth, index, end, closed = 0, 0, 0, False
    while index < len(query):
        char = query[index]
        if query.startswith("--", index):
            index = _after(query, "\n", index + 2, where, "comment", missing_ok=True)
            continue
        if query.startswith("/*", index):
            index = _after(query, "*/", index + 2, where, "comment")
            continue
        if char.isspace():
            index += 1
            continue
        if closed and char != ";":
            raise ChurnError(f"{where} holds more than one statement; give one SELECT")
        if char == ";":
            closed = True
        elif char in "'\"":
            index = _after(query, char, index + 1, where, "quote") - 1
        elif char == "$" and (tag := _DOLLAR_TAG.match(query, index)):
            index = _after(query, tag.group(0), tag.end(), where, "quote") - 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ChurnError(f"{where} closes a parenthesis it never opened; give one SELECT")
        index += 1
        end = index if not closed else end
    if depth:
        raise ChurnError(f"{where} leaves {depth} parenthesis(es) open; give one SELECT")
    return end


def _after(query: str, closing: str, start: int, where: str, what: str, missing_ok: bool = False) -> int:
    """The index just past `closing` from `start` (a doubled quote is part of the text)."""
    index = start
    while True:
        found = query.find(closing, index)
        if found < 0:
            if missing_ok:
                return len(query)
            raise ChurnError(f"{where} has an unclosed {what}; close it")
        if what == "quote" and len(closing) == 1 and query.startswith(closing * 2, found):
            index = found + 2
            continue
        return found + len(closing)


def table_name(name: str, scheme: str, where: str) -> tuple[str, ...]:
    """A table name as its parts (`schema.table`: two), each unquoted where given in double
    quotes ("My Table", "a.b"), as the database will hold them.

    Raises:
        ChurnError: an empty name or part, more than two parts, a part with a control character,
            or (PostgreSQL) a part longer than the 63 bytes the database keeps.
    """
    parts = _split_name(name, where)
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise ChurnError(f"{where} {shown(name)!r} is not a table name; give table or schema.table")
    for part in parts:
        if any(not c.isprintable() for c in part):
            raise ChurnError(f"{where} {shown(name)!r} holds a control character; rename it")
        if scheme in ("postgresql", "postgres") and len(part.encode()) > POSTGRES_NAME_BYTES:
            kept = part.encode()[:POSTGRES_NAME_BYTES].decode(errors="ignore")
            raise ChurnError(
                f"{where} {shown(part)!r} is longer than the {POSTGRES_NAME_BYTES} bytes PostgreSQL keeps of a name: "
                f"it would use {shown(kept)!r}; give a shorter name"
            )
    return tuple(parts)


def _split_name(name: str, where: str) -> list[str]:
    parts, current, index, quoted = [], [], 0, False
    while index < len(name):
        char = name[index]
        if char == '"':
            if quoted and name.startswith('""', index):
                current.append('"')
                index += 2
                continue
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if quoted:
        raise ChurnError(f"{where} {shown(name)!r} has an unclosed double quote")
    return [*parts, "".join(current)]


def quoted(parts: tuple[str, ...] | list[str]) -> str:
    """Parts as "schema"."table": quoted, so that their case is kept and no name ends the statement."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)
