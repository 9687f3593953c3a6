"""URLs in messages, logs, cards and reports without their passwords."""

from __future__ import annotations

from urllib.parse import quote


def url_parts(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, user, password, host and the rest) of a URL like scheme://user:password@host/db;
    None without a password. The credentials end at the last '@' (a password may hold '@', ':'
    or '/', where parsers that stop at the first '@', SQLAlchemy's included, show the rest of it
    as the host)."""
    scheme, sep, rest = str(url).partition("://")
    if not sep or "@" not in rest:
        return None
    credentials, _, host = rest.rpartition("@")
    user, colon, password = credentials.partition(":")
    return (scheme, user, password, host) if colon else None


def url_password(url: str) -> str | None:
    parts = url_parts(url)
    return parts[2] if parts else None


def safe_url(url: str) -> str:
    """The storage URL without its password, for messages and logs."""
    parts = url_parts(url)
    if parts is None:
        return str(url)
    scheme, user, _, host = parts
    return f"{scheme}://{user}:***@{host}"


def without_password(text: str, url: str) -> str:
    """`text` (an error message, say) with the URL's password masked wherever it shows, as
    given or percent-encoded."""
    password = url_password(url)
    text = str(text).replace(str(url), safe_url(url))
    if not password:
        return text
    return text.replace(password, "***").replace(quote(password, safe="%"), "***")


def with_encoded_credentials(url: str) -> str:
    """The URL with '@', ':' and '/' in its user name and password percent-encoded, as RFC 3986
    wants them: SQLAlchemy splits at the first '@', so an unencoded one sends the rest of the
    password to the driver as a host name (which then shows in its error)."""
    parts = url_parts(url)
    if parts is None:
        return str(url)
    scheme, user, password, host = parts
    return f"{scheme}://{quote(user, safe='%')}:{quote(password, safe='%')}@{host}"
