"""``stack3x3``: a kxk conv (odd k ≥ 5, group 1) → (k−1)/2 stacked 3x3 convs; the math (composition, ALS
fit, shift-kernel exact construction, geometry) is in :mod:`passes._stack3x3_solver`."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from analyzer.errors import AnalyzerError
from passes._base import RewritePass
from passes._graph import Builder, read_plain_conv, relative_error
from passes._records import Skip, TargetRecord
from passes._stack3x3_solver import compose, exact_stack, fit_stack

MODES = ("fit", "exact", "init")


class Stack3x3Pass(RewritePass):
    """Stacks of 3x3 convs for square, odd kxk convs with k ≥ 5 and group 1.

    Handles strides, dilations, asymmetric pads, with or without bias; skips other kernels and grouped
    convs as unsupported, and shared or non-constant weights. ``mode`` is ``fit`` (``mid``, ``iters``),
    ``exact`` (a failing verification above float rounding rolls the pass back) or ``init`` (``relu``)."""

    name = "stack3x3"

    def __init__(self, *, mode: str = "fit", mid: int | None = None, iters: int = 3, relu: bool = False,
                 seed: int = 0, max_error: float | None = None, **common: Any):
        if mode not in MODES:
            raise AnalyzerError(f"stack3x3: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mid is not None and (not isinstance(mid, int) or mid < 1):
            raise AnalyzerError(f"stack3x3: mid must be a positive integer, got {mid!r}")
        if mode == "exact" and mid is not None:
            raise AnalyzerError("stack3x3: mid does not apply to mode=exact (M is set by the construction)")
        if relu and mode != "init":
            raise AnalyzerError("stack3x3: relu=true only applies to mode=init (a ReLU would change the function)")
        if mode == "init" and max_error is not None:
            raise AnalyzerError("stack3x3: max_error does not apply to mode=init (it keeps no weights)")
        super().__init__(max_error=max_error, **common)
        self.mode, self.mid, self.iters, self.relu, self.seed = mode, mid, iters, relu, seed

    @property
    def exact(self) -> bool:
        return self.mode == "exact"

    def _kernels(self, weight: np.ndarray) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        cout, cin, k, _ = weight.shape
        if self.mode == "exact":
            return exact_stack(weight)
        mid = self.mid or cout
        if self.mode == "fit":
            return fit_stack(weight, mid, self.iters, rng)
        shapes = [(mid, cin)] + [(mid, mid)] * ((k - 1) // 2 - 2) + [(cout, mid)]
        return [rng.standard_normal((o, i, 3, 3)) * np.sqrt(2.0 / (i * 9)) for o, i in shapes]

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        spec = read_plain_conv(node, self.name)
        if isinstance(spec, Skip):
            return spec
        kh, kw = spec.kernel
        if kh != kw or kh < 5 or kh % 2 == 0:
            return Skip(f"{kh}x{kw} kernel: stack3x3 needs a square odd kernel of size >= 5", unsupported=True)
        kernels = self._kernels(spec.weight)
        b = Builder(graph, node, self.name, spec.dtype)
        y = node.inputs[0]
        for i, kern in enumerate(kernels):
            last = i == len(kernels) - 1
            y = b.conv(f"conv{i + 1}", y, kern, spec.bias if last else None, dilations=spec.dilations,
                       pads=spec.pads if i == 0 else (0, 0, 0, 0), strides=spec.strides if last else (1, 1))
            if self.relu and not last:
                y = b.relu(f"relu{i + 1}", y)
        new_nodes = b.splice(y)
        detail = f"{kh}x{kw} → {len(kernels)} x 3x3 ({self.mode}, M={kernels[0].shape[0]})"
        preserving = self.mode != "init"
        error = None
        if preserving:
            composed = kernels[0]
            for kern in kernels[1:]:
                composed = compose(composed, kern)
            error = relative_error(spec.weight, composed)
        return TargetRecord(node.name, node.op_type, True, detail, new_nodes, weight_error=error,
                            weight_preserving=preserving)
