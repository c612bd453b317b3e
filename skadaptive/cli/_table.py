"""Plain-text tables for the command line."""

from __future__ import annotations


def table(rows: list[tuple], header: tuple) -> str:
    """Left-align the first column, right-align the others."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(
        f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)
    )
    return "\n".join(line.format(*map(str, r)) for r in [header, *rows])
