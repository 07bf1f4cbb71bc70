"""The candidate rewrites ``--auto`` tries on one conv: each an existing pass at a few settings.

    k x k, odd k >= 5     stack3x3 (fit, M = Cout and Cout/2)
    group-1, k > 1        bottleneck (Tucker-2) at rank ratios 1/4, 1/2; separable at m = 1, 2;
                          asymmetric (k x 1 + 1 x k) at rank ratios 1/4, 1/2
    1x1                   bottleneck at rank ratio 1/4, 1/2 (a low-rank pair of 1x1s)

A candidate that the pass declines (grouped conv, shared weights) or that does not cut the layer's MACs
below :data:`MAX_MAC_RATIO` of the original is not tried: it cannot pay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_MAC_RATIO = 0.95
RANK_RATIOS = (0.25, 0.5)
MULTIPLIERS = (1, 2)


@dataclass(frozen=True)
class Candidate:
    label: str  # "bottleneck rank_ratio=0.5"
    options: str  # the spec's options, "rank_ratio=0.5"
    pass_name: str

    def spec(self, node: str) -> str:
        """The ``--pass`` spec that rewrites ``node`` alone (its name matched exactly)."""
        return f"{self.pass_name}:{self.options + ',' if self.options else ''}nodes={re.escape(node)}"

    def build(self, node: str):
        from passes.options import parse_pass

        return parse_pass(self.spec(node))


def candidates_for(kernel: tuple[int, int], cout: int) -> list[Candidate]:
    kh, kw = kernel
    found: list[Candidate] = []
    if kh == kw and kh >= 5 and kh % 2:
        found += [Candidate(f"stack3x3 mid={m}", f"mid={m}", "stack3x3") for m in sorted({cout, max(1, cout // 2)}, reverse=True)]
    found += [Candidate(f"bottleneck rank_ratio={r:g}", f"rank_ratio={r:g}", "bottleneck") for r in RANK_RATIOS]
    if (kh, kw) != (1, 1):
        found += [Candidate(f"separable m={m}", f"m={m}", "separable") for m in MULTIPLIERS]
    if kh > 1 and kw > 1:
        found += [Candidate(f"asymmetric rank_ratio={r:g}", f"rank_ratio={r:g}", "asymmetric") for r in RANK_RATIOS]
    return found


__all__ = ["Candidate", "candidates_for", "MAX_MAC_RATIO"]
