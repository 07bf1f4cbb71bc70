r"""``separable``: a kxk conv → depthwise kxk (channel multiplier ``m``) + pointwise 1x1 (MobileNet).

For each input channel ``c`` the slice ``S_c = W[:, c]`` reshaped to ``Cout × (kh·kw)`` has the SVD
``S_c = Σ_j σ_{c,j} u_{c,j} v_{c,j}ᵀ``. Keeping ``m`` terms:

    depthwise weight  D[c·m + j, 0]  = √σ_{c,j} · v_{c,j}  reshaped to kh×kw    (group = Cin, Cin·m outputs)
    pointwise weight  P[o, c·m + j]  = √σ_{c,j} · u_{c,j}[o]                      (1x1, Cin·m → Cout, bias)

so that ``Σ_j P[o, c·m + j] · D[c·m + j] = Σ_{j<m} σ_{c,j} u_{c,j}[o] v_{c,j} ≈ W[o, c]``. The depthwise conv
takes the original stride, pads and dilations. It is exact when ``m ≥ min(Cout, kh·kw)``; the relative
error is ``√(Σ_c Σ_{j≥m} σ_{c,j}²) / ||W||_F``. ``energy`` / ``max_error`` choose the smallest uniform ``m``
whose kept energy over all channels reaches the target.

MACs (output ``Ho×Wo``): ``Ho·Wo·Cin·m·kh·kw + Ho·Wo·Cin·m·Cout``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from analyzer.errors import AnalyzerError
from passes._base import RewritePass
from passes.ranks import choose_rank
from passes._graph import Builder, read_plain_conv, relative_error
from passes._records import Skip, TargetRecord


def separable_factors(weight: np.ndarray, multiplier: int | None, energy: float | None = None,
                      max_error: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(depthwise (Cin·m, 1, kh, kw), pointwise (Cout, Cin·m, 1, 1))`` from the per-channel SVDs."""
    cout, cin, kh, kw = weight.shape
    slices = weight.transpose(1, 0, 2, 3).reshape(cin, cout, kh * kw)
    u, s, vt = np.linalg.svd(slices, full_matrices=False)  # (Cin, Cout, q), (Cin, q), (Cin, q, k²)
    if multiplier is None:
        # one "singular value" per term index j: the root of its energy summed over channels
        multiplier = choose_rank(np.sqrt((s**2).sum(axis=0)), energy=energy, max_error=max_error)
    q = s.shape[1]
    kept = min(multiplier, q)
    root = np.sqrt(s[:, :kept])
    depthwise = np.zeros((cin, multiplier, kh * kw))
    depthwise[:, :kept] = vt[:, :kept] * root[:, :, None]
    pointwise = np.zeros((cout, cin, multiplier))
    pointwise[:, :, :kept] = (u[:, :, :kept] * root[:, None, :]).transpose(1, 0, 2)
    return depthwise.reshape(cin * multiplier, 1, kh, kw), pointwise.reshape(cout, cin * multiplier, 1, 1)


def compose(depthwise: np.ndarray, pointwise: np.ndarray, cin: int) -> np.ndarray:
    cout, multiplier = pointwise.shape[0], pointwise.shape[1] // cin
    kh, kw = depthwise.shape[2:]
    d = depthwise.reshape(cin, multiplier, kh, kw)
    p = pointwise.reshape(cout, cin, multiplier)
    return np.einsum("ocj,cjkl->ockl", p, d)


class SeparablePass(RewritePass):
    """Depthwise-separable factorization of group-1 convs with a kernel larger than 1x1.

    Handles any stride, padding, dilation, with or without bias; skips 1x1 and grouped (including
    depthwise) convs as unsupported, and shared or non-constant weights. ``m`` (default 1) or ``energy``
    or ``max_error`` (also a verified bound on the output error) sets the channel multiplier."""

    name = "separable"

    def __init__(self, *, m: int | None = None, energy: float | None = None, max_error: float | None = None,
                 **common: Any):
        if m is not None and (not isinstance(m, int) or m < 1):
            raise AnalyzerError(f"separable: m must be a positive integer, got {m!r}")
        if sum(x is not None for x in (m, energy)) > 1:
            raise AnalyzerError("separable: give one of m, energy")
        if energy is not None and not 0 < energy <= 1:
            raise AnalyzerError(f"separable: energy must be in (0, 1], got {energy}")
        if max_error is not None and not max_error >= 0:
            raise AnalyzerError(f"separable: max_error must be >= 0, got {max_error}")
        super().__init__(max_error=max_error, **common)
        self.m = 1 if m is None and energy is None and max_error is None else m
        self.energy = energy

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        spec = read_plain_conv(node, self.name)
        if isinstance(spec, Skip):
            return spec
        if spec.kernel == (1, 1):
            return Skip("1x1 conv has no spatial part to separate", unsupported=True)
        max_error = self.max_error if self.m is None and self.energy is None else None
        depthwise, pointwise = separable_factors(spec.weight, self.m, self.energy, max_error)
        error = relative_error(spec.weight, compose(depthwise, pointwise, spec.cin))
        b = Builder(graph, node, self.name, spec.dtype)
        y = b.conv("depthwise", node.inputs[0], depthwise, strides=spec.strides, pads=spec.pads,
                   dilations=spec.dilations, group=spec.cin)
        y = b.conv("pointwise", y, pointwise, spec.bias)
        new_nodes = b.splice(y)
        multiplier = depthwise.shape[0] // spec.cin
        detail = f"{spec.kernel[0]}x{spec.kernel[1]} → depthwise (m={multiplier}) + pointwise"
        return TargetRecord(node.name, node.op_type, True, detail, new_nodes, weight_error=error)
