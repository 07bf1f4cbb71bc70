"""Verified, weight-preserving rewrites of CNN convolutions on onnx-ir.

    import passes
    result = passes.optimize("in.onnx", ["fold-bn", "bottleneck:energy=0.9,nodes=/features/.*"])
    result.save("out.onnx")
    result.records, result.comparison, result.steps[1].verification

    from passes import Sequential, bottleneck, fold_bn
    result = Sequential(fold_bn(), bottleneck(energy=0.9, kernel=3))(model)   # onnx_ir.Model, ModelProto or path

Each pass is one class, an :class:`onnx_ir.passes.FunctionalPass`, under two names: the one a user types
(``passes.bottleneck``, as in ``--pass bottleneck``) and its class name (``passes.BottleneckPass``) — the
same object, so ``passes.bottleneck(rank=2)`` is a ``BottleneckPass``. The passes: ``stack3x3`` (kxk →
stacked 3x3), ``bottleneck`` (Tucker-2 / two-stage 1x1 bottleneck), ``separable`` (depthwise + pointwise),
``asymmetric`` (kx1 + 1xk), ``fold_bn`` and ``cleanup``; each lives in the module of its name, whose
docstring holds the math (as ``passes.bottleneck`` is the class, import a module by its full name:
``from passes.bottleneck import tucker2`` or ``importlib.import_module("passes.bottleneck")``).

Every pass accepts the target filter ``nodes=`` (names or regexes), ``kernel=``, ``stride=``,
``min_macs=`` (the keys of ``--pass NAME:key=value``) and ``attrs=`` (any attribute values), plus
``verify=VerifyOptions(samples, seed, inputs)`` and ``progress=``.
"""

from __future__ import annotations

from passes._base import EXACT_OUTPUT_TOLERANCE, EXACT_WEIGHT_TOLERANCE, NodeFilter, RewritePass
from passes._records import PassFailed, RewriteResult, Skip, TargetRecord
from passes._verify import ModelRun, Verification, VerifyOptions
from passes.asymmetric import AsymmetricPass
from passes.bottleneck import BottleneckPass
from passes.cleanup import CleanupPass
from passes.fold_bn import FoldBatchNormPass
from passes.run import OptimizeResult, optimize
from passes.separable import SeparablePass
from passes.sequential import Sequential, SequentialResult
from passes.stack3x3 import Stack3x3Pass

# The names a user types; each is the pass class itself (importing ``passes.<name>`` as a module still
# works through ``sys.modules``: see the module docstring).
stack3x3 = Stack3x3Pass
bottleneck = BottleneckPass
separable = SeparablePass
asymmetric = AsymmetricPass
fold_bn = FoldBatchNormPass
cleanup = CleanupPass

# CLI name -> pass class (``analyzer optimize --pass NAME:key=value,...``)
PASSES: dict[str, type[RewritePass]] = {
    "stack3x3": Stack3x3Pass,
    "bottleneck": BottleneckPass,
    "separable": SeparablePass,
    "asymmetric": AsymmetricPass,
    "fold-bn": FoldBatchNormPass,
    "cleanup": CleanupPass,
}

__all__ = [
    "PASSES", "optimize", "OptimizeResult", "stack3x3", "bottleneck", "separable", "asymmetric", "fold_bn",
    "cleanup", "Sequential", "SequentialResult", "RewritePass", "RewriteResult", "TargetRecord", "Skip",
    "PassFailed", "NodeFilter", "VerifyOptions", "Verification", "ModelRun", "EXACT_OUTPUT_TOLERANCE",
    "EXACT_WEIGHT_TOLERANCE", "Stack3x3Pass", "BottleneckPass", "SeparablePass", "AsymmetricPass",
    "FoldBatchNormPass", "CleanupPass",
]
