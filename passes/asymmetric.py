r"""``asymmetric``: Inception v3's spatial factorization, a kxk conv → kx1 conv (Cin → K) then 1xk (K → Cout).

Rearrange ``W: (Cout, Cin, kh, kw)`` as the matrix ``A[(c, i), (o, j)] = W[o, c, i, j]`` of shape
``(Cin·kh) × (Cout·kw)`` and take its SVD ``A = Σ_r σ_r u_r v_rᵀ``. Keeping ``K`` terms:

    vertical   V[r, c, i, 0] = √σ_r · u_r[(c, i)]    (kh x 1, Cin → K; stride (sh, 1), pads (top, 0, bottom, 0), dilations (dh, 1))
    horizontal H[o, r, 0, j] = √σ_r · v_r[(o, j)]    (1 x kw, K → Cout; stride (1, sw), pads (0, left, 0, right), dilations (1, dw), bias)

The composition's kernel is ``Σ_r H[o, r, 0, j] · V[r, c, i, 0] = A_K[(c, i), (o, j)]``, the best rank-K
approximation (Eckart–Young), so the relative error is ``√(Σ_{r≥K} σ_r²) / ||W||_F`` and the rewrite is
exact when ``K ≥ min(Cin·kh, Cout·kw)``. Zero padding is applied per axis by the conv that owns that axis;
since the vertical conv is linear with no bias, padding the columns first or last gives the same result.
Ranks: ``rank``, ``rank_ratio`` (of ``min(Cin·kh, Cout·kw)``, default 0.5), ``energy`` or ``max_error``.

MACs (input ``H×W``, output ``Ho×Wo``): ``Ho·W·K·Cin·kh + Ho·Wo·Cout·K·kw``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from passes._base import RewritePass
from passes.ranks import check_rank_options, choose_rank
from passes._graph import Builder, read_plain_conv, relative_error
from passes._records import Skip, TargetRecord


def asymmetric_factors(weight: np.ndarray, rank_options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(vertical (K, Cin, kh, 1), horizontal (Cout, K, 1, kw))``."""
    cout, cin, kh, kw = weight.shape
    matrix = weight.transpose(1, 2, 0, 3).reshape(cin * kh, cout * kw)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    rank = choose_rank(s, **rank_options)
    root = np.sqrt(s[:rank])
    vertical = (u[:, :rank] * root).T.reshape(rank, cin, kh, 1)
    horizontal = (vt[:rank] * root[:, None]).reshape(rank, cout, kw).transpose(1, 0, 2)[:, :, None, :]
    return vertical, horizontal


def compose(vertical: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
    cout, rank, _, kw = horizontal.shape
    _, cin, kh, _ = vertical.shape
    h = horizontal[:, :, 0, :].transpose(0, 2, 1).reshape(cout * kw, rank)  # ((o, j), r)
    v = vertical[:, :, :, 0].reshape(rank, cin * kh)  # (r, (c, i))
    return (h @ v).reshape(cout, kw, cin, kh).transpose(0, 2, 3, 1)


class AsymmetricPass(RewritePass):
    """kx1 + 1xk factorization of group-1 convs whose kernel is larger than 1 on both axes.

    Handles any stride, padding, dilation, with or without bias, non-square kernels; skips 1-D kernels and
    grouped convs as unsupported, and shared or non-constant weights."""

    name = "asymmetric"

    def __init__(self, *, rank: int | None = None, rank_ratio: float | None = None, energy: float | None = None,
                 max_error: float | None = None, **common: Any):
        self.rank_options = check_rank_options(self.name, {"rank": rank, "rank_ratio": rank_ratio,
                                                           "energy": energy, "max_error": max_error})
        if len(self.rank_options) > 1:
            self.rank_options.pop("max_error")  # an explicit rank choice wins; max_error is then only checked
        super().__init__(max_error=max_error, **common)

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        spec = read_plain_conv(node, self.name)
        if isinstance(spec, Skip):
            return spec
        kh, kw = spec.kernel
        if kh == 1 or kw == 1:
            return Skip(f"{kh}x{kw} kernel is already one-dimensional", unsupported=True)
        vertical, horizontal = asymmetric_factors(spec.weight, self.rank_options)
        error = relative_error(spec.weight, compose(vertical, horizontal))
        (sh, sw), (dh, dw), (top, left, bottom, right) = spec.strides, spec.dilations, spec.pads
        b = Builder(graph, node, self.name, spec.dtype)
        y = b.conv(f"{kh}x1", node.inputs[0], vertical, strides=(sh, 1), pads=(top, 0, bottom, 0), dilations=(dh, 1))
        y = b.conv(f"1x{kw}", y, horizontal, spec.bias, strides=(1, sw), pads=(0, left, 0, right), dilations=(1, dw))
        new_nodes = b.splice(y)
        detail = f"{kh}x{kw} → {kh}x1 + 1x{kw} (K={vertical.shape[0]}/{min(spec.cin * kh, spec.cout * kw)})"
        return TargetRecord(node.name, node.op_type, True, detail, new_nodes, weight_error=error)
