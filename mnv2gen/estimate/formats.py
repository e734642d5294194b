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


def caveat_numbers(parts: list[dict]) -> tuple[list[list[int]], list[str]]:
    """Return (footnote numbers per part, footnote texts): every distinct latency caveat
    of the parts gets one number, 1-based, in order of first appearance."""
    texts: list[str] = []
    numbers = []
    for p in parts:
        mine = []
        for caveat in p.get("latency_caveats", []):
            if caveat not in texts:
                texts.append(caveat)
            mine.append(texts.index(caveat) + 1)
        numbers.append(mine)
    return numbers, texts


def marks(numbers: list[int]) -> str:
    """Return footnote marks like '[1,2]' ('' when there are none)."""
    return f"[{','.join(map(str, numbers))}]" if numbers else ""
