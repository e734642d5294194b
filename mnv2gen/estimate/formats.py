"""Number formats and footnotes the terminal table and the HTML page share, so both show
the same figures with the same decimals."""

from __future__ import annotations

VERDICTS = {"fits": "fits", "plan-only": "plan only", "no-flash": "no (flash)", "no": "no (RAM)"}


def count(n: int | None) -> str:
    """Return a byte or instruction count with thousands separators ('-' for None)."""
    return "-" if n is None else f"{n:,}"


def signed(n: int) -> str:
    """Return a margin in bytes with its sign ('+1,024', '-96')."""
    return f"{n:+,}"


def millions(n: int | None) -> str:
    """Return an instruction count in millions with one decimal ('904.4 M')."""
    return "-" if n is None else f"{n / 1e6:,.1f} M"


def instructions(t: dict) -> str:
    """Return a target entry's instructions: measured (and whether bit-exact) or the
    estimate with its error bound."""
    measured = t.get("measured") or {}
    if measured.get("instructions"):
        exact = "" if measured.get("bit_exact") else ", NOT bit-exact"
        return f"{millions(measured['instructions'])} measured{exact}"
    if measured.get("error"):
        return f"{millions(t['instructions'])} est. (measure failed)"
    if t["instructions"] is None:
        return "- (no calibration)"
    return f"{millions(t['instructions'])} est. ±{t['instructions_error_pct']:g} %"


def latency(ms: float | None) -> str:
    """Return a latency lower bound in milliseconds with one decimal ('904.4 ms')."""
    return "-" if ms is None else f"{ms:,.1f} ms"


def caveat_numbers(report: dict) -> dict[str, int]:
    """Return every distinct latency caveat of the report's parts with its footnote number,
    1-based, in order of first appearance (one numbering for the whole report)."""
    numbers: dict[str, int] = {}
    for c in report["configurations"]:
        for p in c["parts"]:
            for caveat in p.get("latency_caveats", []):
                numbers.setdefault(caveat, len(numbers) + 1)
    return numbers


def marks(part: dict, numbers: dict[str, int]) -> str:
    """Return a part's footnote marks like '[1,2]' ('' when it has no caveat)."""
    mine = [numbers[c] for c in part.get("latency_caveats", [])]
    return f"[{','.join(map(str, mine))}]" if mine else ""
