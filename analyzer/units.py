"""Human-readable numbers for the text renderers (JSON and CSV keep exact integers)."""

from __future__ import annotations


def count(n: float) -> str:
    """1234567 -> '1.23M' (SI: K, M, G, T)."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{suffix}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"


def nbytes(n: float) -> str:
    """Bytes in binary units: 1536 -> '1.50 KiB'."""
    for factor, suffix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{int(n)} B"


def shape(dims) -> str:
    if dims is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in dims) or "scalar"


def ms(seconds: float) -> str:
    """Seconds as milliseconds, no unit: 0.0012345 -> '1.234' (the latency tables put the unit in the header)."""
    return f"{seconds * 1e3:.3f}"


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def receptive_field(rf) -> str:
    if rf is None:
        return ""
    text = "global" if rf.is_global else "x".join(map(str, rf.size))
    stride = "x".join(map(str, rf.stride)) if len(set(rf.stride)) > 1 else str(rf.stride[0]) if rf.stride else ""
    text = f"{text} /{stride}" if stride else text
    return text + ("" if rf.aligned else " !")
