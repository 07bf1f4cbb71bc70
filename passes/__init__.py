"""Verified, weight-preserving rewrites of CNN convolutions on onnx-ir.

    from passes import Sequential, bottleneck, fold_bn
    result = Sequential(fold_bn(), bottleneck(energy=0.9, nodes=r"/features/.*"))(model)   # model: onnx_ir.Model
    result.records, result.comparison, result.steps[1].verification

Each factory returns a :class:`~passes._base.RewritePass` (an :class:`onnx_ir.passes.FunctionalPass`):
``stack3x3`` (kxk → stacked 3x3), ``bottleneck`` (Tucker-2 / two-stage 1x1 bottleneck), ``separable``
(depthwise + pointwise), ``asymmetric`` (kx1 + 1xk), ``fold_bn`` and ``cleanup``. Every pass accepts the
target filter ``nodes=`` (names or regexes), ``attrs=`` (attribute values), ``min_macs=``, plus
``verify=VerifyOptions(samples, seed, inputs)`` and ``progress=``. The math is in each module's docstring.
"""

from __future__ import annotations

from typing import Any

from passes._base import EXACT_OUTPUT_TOLERANCE, EXACT_WEIGHT_TOLERANCE, NodeFilter, RewritePass
from passes._records import PassFailed, RewriteResult, Skip, TargetRecord
from passes._verify import ModelRun, Verification, VerifyOptions
from passes.spatial import AsymmetricPass
from passes.tucker import BottleneckPass
from passes.housekeeping import CleanupPass, FoldBatchNormPass
from passes.depthwise import SeparablePass
from passes.sequential import Sequential, SequentialResult
from passes.stacking import Stack3x3Pass

# CLI name -> pass class (``analyzer optimize --pass NAME:key=value,...``)
PASSES: dict[str, type[RewritePass]] = {
    "stack3x3": Stack3x3Pass,
    "bottleneck": BottleneckPass,
    "separable": SeparablePass,
    "asymmetric": AsymmetricPass,
    "fold-bn": FoldBatchNormPass,
    "cleanup": CleanupPass,
}


def stack3x3(**options: Any) -> Stack3x3Pass:
    return Stack3x3Pass(**options)


def bottleneck(**options: Any) -> BottleneckPass:
    return BottleneckPass(**options)


def separable(**options: Any) -> SeparablePass:
    return SeparablePass(**options)


def asymmetric(**options: Any) -> AsymmetricPass:
    return AsymmetricPass(**options)


def fold_bn(**options: Any) -> FoldBatchNormPass:
    return FoldBatchNormPass(**options)


def cleanup(**options: Any) -> CleanupPass:
    return CleanupPass(**options)


__all__ = [
    "PASSES", "stack3x3", "bottleneck", "separable", "asymmetric", "fold_bn", "cleanup", "Sequential",
    "SequentialResult", "RewritePass", "RewriteResult", "TargetRecord", "Skip", "PassFailed", "NodeFilter",
    "VerifyOptions", "Verification", "ModelRun", "EXACT_OUTPUT_TOLERANCE", "EXACT_WEIGHT_TOLERANCE",
    "Stack3x3Pass", "BottleneckPass", "SeparablePass", "AsymmetricPass", "FoldBatchNormPass", "CleanupPass",
]
