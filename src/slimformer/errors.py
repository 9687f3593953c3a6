"""One error type for bad input, and the recipe entry point that shows it as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

DEBUG_VARIABLE = "SLIMFORMER_DEBUG"


class SlimformerError(ValueError):
    """Bad input or an impossible request; its message is meant for the user, on one line."""


def fail(message: str, cause: BaseException | None = None) -> NoReturn:
    raise SlimformerError(message) from cause


def first_line(err: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:limit]


def run_recipe(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run a recipe's main; a SlimformerError becomes `error: ...` on stderr and exit code 2.

    Any other exception is a bug or a failure slimformer did not foresee: it is still shown as
    one line (exit 1) with the way to see the traceback, `SLIMFORMER_DEBUG=1`.
    """
    try:
        main(argv)
    except SlimformerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"error: unexpected {type(err).__name__}: {first_line(err)} (rerun with "
              f"{DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        sys.exit(1)
