"""How sure a difference in test accuracy is: two variants answer the same test queries, so
the difference is measured per query, and its 95% interval comes from those paired answers.

A student and its teacher agree on most queries; only the queries where one is right and the
other wrong move the difference. A paired interval counts exactly those, and is much narrower
than two separate intervals would suggest, yet on CLINC150's 5,500 test queries it is still
about ±0.5 points for a 3-layer student against its teacher: a gap of that size is within what
the choice of test queries can move. The interval is the normal one of the mean per-query
difference (right = 1, wrong = 0), which for thousands of rows matches a paired bootstrap.

Per-row answers are stored in the report as packed bits in hex (one bit per test row, about
1.4 kB for 5,500 rows), so an interval can be computed against any baseline afterwards. The
validation split's answers are stored the same way: optimize's choice asks how sure a
variant's validation drop is within budget (optimize/select.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slimformer.errors import fail

Z95 = 1.959964  # two-sided 95% quantile of the standard normal


def pack_right(right: np.ndarray) -> str:
    """Per-row right (True) or wrong, as hex of the packed bits."""
    return np.packbits(np.asarray(right, dtype=bool)).tobytes().hex()


def unpack_right(text: str, rows: int) -> np.ndarray:
    """The per-row answers `pack_right` wrote, for `rows` rows."""
    try:
        packed = np.frombuffer(bytes.fromhex(text), dtype=np.uint8)
    except (TypeError, ValueError):
        fail("per-row test answers must be a hex string (packed bits)")
    if len(packed) != (rows + 7) // 8:
        fail(f"per-row test answers hold {len(packed) * 8} bits, not {rows} rows")
    return np.unpackbits(packed, count=rows).astype(bool)


def paired_difference(right: np.ndarray, base: np.ndarray) -> dict[str, Any]:
    """Accuracy of `right` minus that of `base` over the same rows, in points, with its 95%
    interval, and how many rows only one of the two answered right."""
    right, base = np.asarray(right, dtype=bool), np.asarray(base, dtype=bool)
    if right.shape != base.shape or right.ndim != 1 or not len(right):
        fail(f"a paired difference needs answers to the same rows, got {right.shape} and "
             f"{base.shape}")
    diff = right.astype(float) - base.astype(float)
    mean = float(diff.mean())
    spread = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    half = Z95 * spread / math.sqrt(len(diff))
    return {"points": 100 * mean, "low": 100 * (mean - half), "high": 100 * (mean + half),
            "standard_error": 100 * spread / math.sqrt(len(diff)), "rows": int(len(diff)),
            "only_this_right": int((right & ~base).sum()),
            "only_base_right": int((base & ~right).sum())}


def answers_difference(mine: dict[str, str], theirs: dict[str, str], rows: int
                       ) -> dict[str, Any] | None:
    """The paired difference of two rows' packed answers over the same `rows` rows (each
    {"argmax": ..., "with_fallback": ...}): with both fallbacks where both have one (what
    `predict()` answers), else by argmax; None where either has none stored (reports written
    before they were)."""
    kind = "with_fallback" if "with_fallback" in mine and "with_fallback" in theirs \
        else "argmax"
    if kind not in mine or kind not in theirs:
        return None
    return {**paired_difference(unpack_right(mine[kind], rows), unpack_right(theirs[kind], rows)),
            "with_fallback": kind == "with_fallback"}


def difference_to(row: dict[str, Any], base: dict[str, Any], rows: int) -> dict[str, Any] | None:
    """The paired difference of a row's test accuracy to the baseline's (answers_difference)."""
    return answers_difference(row.get("test_right") or {}, base.get("test_right") or {}, rows)


def validation_difference(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | None:
    """The same on validation, from the answers under row["validation"]["right"]; None also
    where the two rows' validation splits differ in size."""
    mine, theirs = (r.get("validation") or {} for r in (row, base))
    rows = mine.get("rows")
    if not isinstance(rows, int) or theirs.get("rows") != rows:
        return None
    return answers_difference(mine.get("right") or {}, theirs.get("right") or {}, rows)


def interval_text(found: dict[str, Any] | None) -> str:
    """"-0.65 (-1.19 to -0.11)": the difference in points and its 95% interval."""
    if not found:
        return "n/a"
    return f"{found['points']:+.2f} ({found['low']:+.2f} to {found['high']:+.2f})"
