"""URLs in messages, logs, cards and reports without their passwords."""

from __future__ import annotations


def url_password(url: str) -> str | None:
    """The password of a URL like scheme://user:password@host/db. The credentials end at the
    last '@' (a password may hold '@', ':' or '/', where parsers that stop at the first '@',
    SQLAlchemy's included, show the rest of it as the host)."""
    _, sep, rest = str(url).partition("://")
    if not sep or "@" not in rest:
        return None
    credentials = rest.rpartition("@")[0]
    user, colon, password = credentials.partition(":")
    return password if colon else None


def safe_url(url: str) -> str:
    """The storage URL without its password, for messages and logs."""
    url = str(url)
    password = url_password(url)
    if password is None:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{host}"


def without_password(text: str, url: str) -> str:
    """`text` (an error message, say) with the URL's password masked wherever it shows, as
    given or percent-encoded."""
    password = url_password(url)
    text = str(text).replace(str(url), safe_url(url))
    if not password:
        return text
    from urllib.parse import quote

    return text.replace(password, "***").replace(quote(password, safe="%"), "***")


def with_encoded_credentials(url: str) -> str:
    """The URL with '@', ':' and '/' in its user name and password percent-encoded, as RFC 3986
    wants them: SQLAlchemy splits at the first '@', so an unencoded one sends the rest of the
    password to the driver as a host name (which then shows in its error)."""
    from urllib.parse import quote

    url = str(url)
    password = url_password(url)
    if password is None:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{quote(user, safe='%')}:{quote(password, safe='%')}@{host}"
