"""One error type for bad input, and the recipe entry point that shows it as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


class SlimformerError(Exception):
    """Bad input or an impossible request; its message is meant for the user, on one line."""


def fail(message: str) -> NoReturn:
    raise SlimformerError(message)


def run_recipe(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run a recipe's main; a SlimformerError becomes `error: ...` on stderr and exit code 2."""
    try:
        main(argv)
    except SlimformerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
