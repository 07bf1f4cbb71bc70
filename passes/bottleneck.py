r"""``bottleneck``: Tucker-2 factorization of a conv kernel into 1x1 → kxk → 1x1 (Inception/ResNet bottleneck).

A kernel ``W`` of shape ``(Cout, Cin, kh, kw)`` is approximated as

    W ≈ G ×₀ U_out ×₁ U_in,    W_hat[o, i] = Σ_{r, s} U_out[o, r] · G[r, s] · U_in[i, s]

with ``U_in: (Cin, R_in)`` and ``U_out: (Cout, R_out)`` orthonormal and the core
``G = W ×₀ U_outᵀ ×₁ U_inᵀ: (R_out, R_in, kh, kw)``. The factors come from the HOSVD: ``U_out`` is the top
``R_out`` left singular vectors of the mode-0 unfolding ``W_(0): Cout × (Cin·kh·kw)``, ``U_in`` those of the
mode-1 unfolding ``W_(1): Cin × (Cout·kh·kw)``; ``iters`` HOOI (ALS) steps refine them (each recomputes one
factor from the SVD of the kernel projected on the other). The network form is

    1x1 conv (Cin → R_in, weight U_inᵀ)  →  kxk conv (R_in → R_out, weight G, original stride/pads/dilations)
    →  1x1 conv (R_out → Cout, weight U_out, original bias)

which is exact (zero padding commutes with the channel projection) when ``R_in = Cin`` and ``R_out = Cout``.
``form="reduce"`` is Inception's two-stage form, Tucker-1 on the input mode: 1x1 (Cin → R_in) then kxk
(R_in → Cout, weight ``W ×₁ U_inᵀ``, bias). The relative error ``||W − W_hat||_F / ||W||_F`` is reported;
HOSVD guarantees ``||W − W_hat||² ≤ Σ tail σ²(W_(0)) + Σ tail σ²(W_(1))``, so ``max_error=e`` picks each
mode's rank for a tail of at most ``e/√2``.

MACs (output ``Ho×Wo``, input ``H×W``): ``H·W·Cin·R_in + Ho·Wo·R_in·R_out·kh·kw + Ho·Wo·R_out·Cout``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from analyzer.errors import AnalyzerError
from passes._base import RewritePass
from passes.ranks import check_rank_options, choose_rank
from passes._graph import Builder, read_plain_conv, relative_error
from passes._records import Skip, TargetRecord

FORMS = ("tucker2", "reduce")


def _leading_vectors(matrix: np.ndarray, rank_options: dict[str, Any]) -> np.ndarray:
    """Top left singular vectors of ``matrix``, their number chosen by ``rank_options``."""
    # The Gram matrix's eigenvectors are the left singular vectors: much cheaper than an SVD of a wide matrix.
    matrix = np.ascontiguousarray(matrix)
    gram = matrix @ matrix.T
    eigenvalues, vectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    singular = np.sqrt(np.maximum(eigenvalues[order], 0.0))
    rank = choose_rank(singular, **rank_options)
    return vectors[:, order[:rank]]


def _mode_product(tensor: np.ndarray, matrix: np.ndarray, mode: int) -> np.ndarray:
    """``tensor ×_mode matrixᵀ``: contracts axis ``mode`` (size n) with ``matrix`` (n × r), keeping the axis order."""
    moved = np.ascontiguousarray(np.moveaxis(tensor, mode, -1))  # one 2-D BLAS product, not a strided batch
    product = moved.reshape(-1, moved.shape[-1]) @ matrix
    return np.moveaxis(product.reshape(*moved.shape[:-1], matrix.shape[1]), -1, mode)


def tucker2(weight: np.ndarray, in_options: dict[str, Any], out_options: dict[str, Any] | None, iters: int = 0):
    """``(U_in, G, U_out)`` with ``W ≈ G ×₀ U_out ×₁ U_in``; ``out_options=None`` keeps the output mode whole
    (``U_out`` is None and ``G = W ×₁ U_inᵀ``)."""
    cout, cin, kh, kw = weight.shape
    unfold_in = weight.transpose(1, 0, 2, 3).reshape(cin, -1)
    u_in = _leading_vectors(unfold_in, in_options)
    u_out = None
    if out_options is not None:
        u_out = _leading_vectors(weight.reshape(cout, -1), out_options)
        for _ in range(iters):  # HOOI: each factor from the kernel projected on the other
            projected = _mode_product(weight, u_in, 1)
            u_out = _leading_vectors(projected.reshape(cout, -1), {"rank": u_out.shape[1]})
            projected = _mode_product(weight, u_out, 0)
            u_in = _leading_vectors(projected.transpose(1, 0, 2, 3).reshape(cin, -1), {"rank": u_in.shape[1]})
    core = _mode_product(weight, u_in, 1)
    if u_out is not None:
        core = _mode_product(core, u_out, 0)
    return u_in, core, u_out


def reconstruct(u_in: np.ndarray, core: np.ndarray, u_out: np.ndarray | None) -> np.ndarray:
    full = _mode_product(core, u_in.T, 1)
    return full if u_out is None else _mode_product(full, u_out.T, 0)


class BottleneckPass(RewritePass):
    """Tucker-2 (or two-stage) bottleneck of group-1 kxk convs with k > 1 or Cin, Cout > 1.

    Handles any stride, padding, dilation, with or without bias; skips grouped convs (unsupported) and
    shared or non-constant weights. Ranks: one of ``rank``, ``rank_ratio`` (default 0.5), ``energy``,
    ``max_error`` (also a verified bound on the output error)."""

    name = "bottleneck"

    def __init__(self, *, rank: int | None = None, rank_ratio: float | None = None, energy: float | None = None,
                 max_error: float | None = None, form: str = "tucker2", iters: int = 2, **common: Any):
        if form not in FORMS:
            raise AnalyzerError(f"bottleneck: form must be one of {', '.join(FORMS)}, got {form!r}")
        if not isinstance(iters, int) or iters < 0:
            raise AnalyzerError(f"bottleneck: iters must be a non-negative integer, got {iters!r}")
        self.rank_options = check_rank_options(self.name, {"rank": rank, "rank_ratio": rank_ratio,
                                                           "energy": energy, "max_error": max_error})
        super().__init__(max_error=max_error, **common)
        self.form = form
        self.iters = iters
        self.fixed_rank = rank is not None or rank_ratio is not None

    def _mode_options(self) -> dict[str, Any]:
        options = dict(self.rank_options)
        if "max_error" in options and len(options) == 1 and self.form == "tucker2":
            options["max_error"] = options["max_error"] / math.sqrt(2)  # two modes share the error budget
        elif len(options) > 1:
            options.pop("max_error")  # an explicit rank choice wins; max_error is then only checked
        return options

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        spec = read_plain_conv(node, self.name)
        if isinstance(spec, Skip):
            return spec
        options = self._mode_options()
        u_in, core, u_out = tucker2(spec.weight, options, options if self.form == "tucker2" else None, self.iters)
        factor_size = u_in.size + core.size + (0 if u_out is None else u_out.size)
        if factor_size >= spec.weight.size and not self.fixed_rank:
            # ranks chosen by default, energy or max_error that leave the layer no smaller only add work
            return Skip(f"the factors ({factor_size:,} weights) would not be smaller than the kernel "
                        f"({spec.weight.size:,}); give rank= or rank_ratio= to force it")
        error = relative_error(spec.weight, reconstruct(u_in, core, u_out))
        b = Builder(graph, node, self.name, spec.dtype)
        x = b.conv("reduce", node.inputs[0], u_in.T[:, :, None, None])
        last_bias = spec.bias if u_out is None else None
        y = b.conv("conv", x, core, last_bias, strides=spec.strides, pads=spec.pads, dilations=spec.dilations)
        if u_out is not None:
            y = b.conv("expand", y, u_out[:, :, None, None], spec.bias)
        new_nodes = b.splice(y)
        ranks = f"R_in={u_in.shape[1]}/{spec.cin}" + ("" if u_out is None else f", R_out={u_out.shape[1]}/{spec.cout}")
        detail = f"{self.form} {spec.kernel[0]}x{spec.kernel[1]} → {len(new_nodes)} convs ({ranks})"
        return TargetRecord(node.name, node.op_type, True, detail, new_nodes, weight_error=error)
