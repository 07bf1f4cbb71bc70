"""Counting rules: MACs and FLOPs of one ONNX node from its shapes and attributes.

Conventions (the ones papers, torchvision ``_ops`` and the course material use):

* 1 MAC = one multiply-accumulate. Only Conv/ConvTranspose/Gemm/MatMul and their quantized and
  fused forms, the recurrent ops (LSTM/GRU/RNN: their W·x and R·h products) and the attention ops
  (their Q·Kᵀ and softmax·V products, and a packed input projection) have MACs; bias adds are not MACs.
* FLOPs = 2 x MACs for those, plus one add per output element where a bias is given (and, for the
  recurrent and attention ops, the element-wise work their docstrings list).
* Every other op has 0 MACs and a stated number of FLOPs per element (see each rule's docstring
  and the conventions below). Ops that only move data (Reshape, Concat, Gather, ...) cost 0.
* Rules read shapes and attributes only, never weight data (initializer payloads are stripped);
  a small constant input (``TensorView.value``) is read where an op moved an attribute to an
  input (Reduce* axes, Resize scales/sizes).
* An op without a rule has no entry in :data:`COST_RULES`, and :func:`node_cost` returns None for it:
  never a silent zero. A rule that needs an unknown shape raises :class:`ShapeUnknown`.

Which ops have a rule is decided by :mod:`analyzer.op_families` (the receptive-field rules read the
same table): :data:`COST_RULES` holds one rule per op of every family, the family's rule or the op's
own. The per-family conventions come first; the registry sits at the end of the module because it
refers to the rule functions defined in between.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from analyzer.errors import AnalyzerError
from analyzer.op_families import FAMILY_OF, MS_DOMAIN, default_domain, family_of
from analyzer.views import NodeView, ShapeUnknown, TensorView

__all__ = ["COST_RULES", "Cost", "ShapeUnknown", "node_cost", "op_category"]

# Element-wise family -> FLOPs per output element. One op per element, whatever the function:
# a Sigmoid, a Gelu or a Swish (x * sigmoid(x)) counts like an Add -- the common convention of fvcore
# and torchscan. Quantize / dequantize: one scale conversion per element (zero-point shift not counted).
FLOPS_PER_ELEMENT: dict[str, int] = {"activation": 1, "unary": 1, "broadcast": 1, "quantize": 1}

# Variadic ops over k inputs: (k - 1) pairwise combines per output element; Mean adds a divide.
VARIADIC_EXTRA_FLOPS: dict[str, int] = {"Sum": 0, "Max": 0, "Min": 0, "Mean": 1}

# Reductions: (1 + pre) FLOPs per input element and post FLOPs per output element, where pre is an
# element-wise transform before the combine and post a final op on each result.
REDUCE_FLOPS: dict[str, tuple[int, int]] = {
    "ReduceSum": (0, 0),
    "ReduceMax": (0, 0),
    "ReduceMin": (0, 0),
    "ReduceProd": (0, 0),
    # The divide is not counted, as AveragePool's kh·kw per output counts none: ReduceMean over H×W then
    # costs exactly what GlobalAveragePool costs, so both exporters' forms of a global pool agree.
    "ReduceMean": (0, 0),
    "ReduceSumSquare": (1, 0),  # square
    "ReduceL1": (1, 0),  # abs
    "ReduceL2": (1, 1),  # square; sqrt
    "ReduceLogSum": (0, 1),  # log
    "ReduceLogSumExp": (1, 1),  # exp; log
    "ArgMax": (0, 0),
    "ArgMin": (0, 0),
}

# Normalisations (inference): FLOPs per element.
# Statistics computed at run time (LayerNorm, InstanceNorm, GroupNorm): 5 per element -- mean
# (1 add), subtract the mean (1), square and accumulate for the variance (2), scale by 1/std (1) --
# plus 1 for the scale multiply and 1 for the bias add when those inputs are given. Per-row terms
# (the divide of the sums, the sqrt) are not counted.
NORMALIZATION_STATS_FLOPS = 5

# Softmax / LogSoftmax: exp, sum and divide per element (the attention rules' softmax counts the same).
SOFTMAX_FLOPS = 3

# Families whose work is moving, reinterpreting or making data, not arithmetic: 0 MACs, 0 FLOPs (supported).
ZERO_COST_FAMILIES = ("passthrough", "layout", "shape_reader", "constant")


@dataclass(frozen=True)
class Cost:
    """Work of one node: multiply-accumulates and floating-point (or integer) operations."""

    macs: int = 0
    flops: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.flops + other.flops)


def node_cost(node: NodeView) -> Cost | None:
    """Cost of ``node``; None when no rule exists for its (domain, op_type).

    Raises :class:`ShapeUnknown` when a shape the rule needs is unknown, and
    :class:`AnalyzerError` (naming the node) when its shapes or attributes are inconsistent.
    """
    rule = COST_RULES.get((default_domain(node.domain), node.op_type))
    if rule is None:
        return None
    try:
        return rule(node)
    except (ShapeUnknown, AnalyzerError):
        raise
    except (IndexError, ValueError, TypeError, ZeroDivisionError) as e:
        raise AnalyzerError(f"cannot count {node.op_type} node {node.name!r}: {e}") from e


def op_category(node: NodeView) -> str:
    """Category for the conv-vs-fc share: "conv" (Conv, ConvTranspose, QLinearConv, ConvInteger,
    FusedConv), "fc" (Gemm, MatMul and their quantized/fused forms) or "other": the op's family when
    it is one of the first two."""
    family = family_of(node.domain, node.op_type)
    return family if family in ("conv", "fc") else "other"


# --- shape helpers -------------------------------------------------------------------------------


def _fail(node: NodeView, message: str) -> AnalyzerError:
    return AnalyzerError(f"{node.op_type} node {node.name!r}: {message}")


def _tensor(node: NodeView, index: int, role: str) -> TensorView:
    tensor = node.input(index)
    if tensor is None:
        raise _fail(node, f"missing input {index} ({role})")
    return tensor


def _shape(node: NodeView, index: int, role: str, min_rank: int = 0) -> tuple[int, ...]:
    shape = _tensor(node, index, role).require_shape()
    if len(shape) < min_rank:
        raise _fail(node, f"{role} has rank {len(shape)}, expected at least {min_rank}")
    return shape


def _known_output_shape(node: NodeView) -> tuple[int, ...] | None:
    out = node.output(0)
    return None if out is None else out.shape


def _str_attr(node: NodeView, name: str, default: str) -> str:
    value = node.attr(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _broadcast(node: NodeView, shapes: Iterable[Sequence[int]]) -> tuple[int, ...]:
    """Numpy multidirectional broadcast of ``shapes``."""
    shapes = [tuple(s) for s in shapes]
    rank = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise _fail(node, f"shapes {shapes} do not broadcast")
        result.append(dims.pop() if dims else 1)
    return tuple(result)


def _output_elements(node: NodeView) -> int:
    """Elements of output 0: its shape when known, else the broadcast of the given inputs."""
    shape = _known_output_shape(node)
    if shape is None:
        given = [t for t in node.inputs if t is not None]
        if not given:
            raise ShapeUnknown(f"output shape of {node.name!r} is unknown")
        shape = _broadcast(node, (t.require_shape() for t in given))
    return math.prod(shape)


def _sliding_window_sizes(
    node: NodeView, in_spatial: Sequence[int], kernel: Sequence[int], *, ceil_mode: bool = False
) -> tuple[int, ...]:
    """Output spatial sizes of a Conv or pool window (ONNX operator spec).

    NOTSET: floor((in + pad_begin + pad_end - (d(k - 1) + 1)) / s) + 1 (ceil with ceil_mode, where
    a last window starting in the end padding is dropped); SAME_UPPER/SAME_LOWER: ceil(in / s);
    VALID: ceil((in - (d(k - 1) + 1) + 1) / s).
    """
    rank = len(in_spatial)
    strides = node.attr("strides") or [1] * rank
    dilations = node.attr("dilations") or [1] * rank
    pads = node.attr("pads") or [0] * (2 * rank)
    auto_pad = _str_attr(node, "auto_pad", "NOTSET")
    sizes = []
    for i, (size, k, s, d) in enumerate(zip(in_spatial, kernel, strides, dilations, strict=True)):
        span = d * (k - 1) + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-size // s)
        elif auto_pad == "VALID":
            out = -(-(size - span + 1) // s)
        else:
            padded = size + pads[i] + pads[i + rank] - span
            out = (-(-padded // s) if ceil_mode else padded // s) + 1
            if ceil_mode and (out - 1) * s >= size + pads[i]:
                out -= 1
        if out <= 0:
            raise _fail(node, f"window of {span} does not fit spatial size {size}")
        sizes.append(out)
    return tuple(sizes)


# --- MAC rules -----------------------------------------------------------------------------------


def _conv_macs_and_outputs(node: NodeView, x_index: int, w_index: int) -> tuple[int, int]:
    """(MACs, output elements) of a convolution: MACs = N * Cout * prod(out_spatial) * (Cin / groups) * prod(k).

    W is (Cout, Cin / groups, k1, ..., kn), so the MACs per output element are W[1] * prod(W[2:]).
    The output shape is the node's when known, else computed from X and the attributes.
    """
    w_shape = _shape(node, w_index, "W", min_rank=3)
    out_shape = _known_output_shape(node)
    if out_shape is None:
        x_shape = _shape(node, x_index, "X", min_rank=3)
        kernel = node.attr("kernel_shape") or w_shape[2:]
        out_shape = (x_shape[0], w_shape[0], *_sliding_window_sizes(node, x_shape[2:], kernel))
    out_elements = math.prod(out_shape)
    return out_elements * math.prod(w_shape[1:]), out_elements


def _bias_adds(node: NodeView, bias_index: int, out_elements: int) -> int:
    return out_elements if node.input(bias_index) is not None else 0


def cost_conv(node: NodeView) -> Cost:
    """Conv (1D/2D/3D, groups, dilations, strides, pads, auto_pad).

    MACs = N * Cout * prod(out_spatial) * (Cin / groups) * prod(kernel); FLOPs = 2 * MACs + one bias
    add per output element when B is given.
    """
    macs, out_elements = _conv_macs_and_outputs(node, x_index=0, w_index=1)
    return Cost(macs, 2 * macs + _bias_adds(node, 2, out_elements))


def cost_qlinear_conv(node: NodeView) -> Cost:
    """QLinearConv (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): MACs as Conv.

    FLOPs = 2 * MACs + one (int32) bias add per output element when B is given; zero-point shifts
    and the requantisation to y_scale are not counted.
    """
    macs, out_elements = _conv_macs_and_outputs(node, x_index=0, w_index=3)
    return Cost(macs, 2 * macs + _bias_adds(node, 8, out_elements))


def cost_conv_integer(node: NodeView) -> Cost:
    """ConvInteger (x, w, x_zp, w_zp): MACs as Conv, FLOPs = 2 * MACs (no bias input)."""
    macs, _ = _conv_macs_and_outputs(node, x_index=0, w_index=1)
    return Cost(macs, 2 * macs)


def cost_fused_conv(node: NodeView) -> Cost:
    """com.microsoft FusedConv (Conv + bias + activation [+ residual Z]): MACs as Conv.

    FLOPs = 2 * MACs + 1 per output element for each of: bias B, the fused activation, the residual Z.
    """
    macs, out_elements = _conv_macs_and_outputs(node, x_index=0, w_index=1)
    activation = out_elements if node.attr("activation") else 0
    residual = _bias_adds(node, 3, out_elements)
    return Cost(macs, 2 * macs + _bias_adds(node, 2, out_elements) + activation + residual)


def _conv_transpose_output_elements(node: NodeView, x_shape: Sequence[int], w_shape: Sequence[int]) -> int:
    """Output elements of ConvTranspose: node's shape when known, else (ONNX spec)
    out = s * (in - 1) + output_padding + d * (k - 1) + 1 - pad_begin - pad_end (SAME: in * s)."""
    out_shape = _known_output_shape(node)
    if out_shape is not None:
        return math.prod(out_shape)
    channels = x_shape[0] * w_shape[1] * node.attr("group", 1)
    if node.attr("output_shape"):
        return channels * math.prod(node.attr("output_shape")[-(len(x_shape) - 2):])
    rank = len(x_shape) - 2
    kernel = node.attr("kernel_shape") or w_shape[2:]
    strides = node.attr("strides") or [1] * rank
    dilations = node.attr("dilations") or [1] * rank
    output_padding = node.attr("output_padding") or [0] * rank
    pads = node.attr("pads") or [0] * (2 * rank)
    same = _str_attr(node, "auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER")
    sizes = [
        x * s if same else s * (x - 1) + op + d * (k - 1) + 1 - pads[i] - pads[i + rank]
        for i, (x, k, s, d, op) in enumerate(zip(x_shape[2:], kernel, strides, dilations, output_padding, strict=True))
    ]
    return channels * math.prod(sizes)


def cost_conv_transpose(node: NodeView) -> Cost:
    """ConvTranspose: every input element is scattered through a (Cout / groups) x kernel block.

    MACs = N * Cin * prod(in_spatial) * (Cout / groups) * prod(kernel), with W = (Cin, Cout / groups, k...);
    FLOPs = 2 * MACs + one bias add per output element when B is given.
    """
    x_shape = _shape(node, 0, "X", min_rank=3)
    w_shape = _shape(node, 1, "W", min_rank=3)
    macs = math.prod(x_shape) * math.prod(w_shape[1:])
    bias = 0
    if node.input(2) is not None:
        bias = _conv_transpose_output_elements(node, x_shape, w_shape)
    return Cost(macs, 2 * macs + bias)


def _gemm_mkn(node: NodeView, a_index: int, b_index: int) -> tuple[int, int, int]:
    """(M, K, N) of Gemm: A is (M, K), or (K, M) with transA; B is (K, N), or (N, K) with transB."""
    a = _shape(node, a_index, "A", min_rank=2)
    b = _shape(node, b_index, "B", min_rank=2)
    m, k = (a[1], a[0]) if node.attr("transA", 0) else (a[0], a[1])
    k_b, n = (b[1], b[0]) if node.attr("transB", 0) else (b[0], b[1])
    if k != k_b:
        raise _fail(node, f"inner dimensions differ: A {a} and B {b} (transA={node.attr('transA', 0)}, "
                          f"transB={node.attr('transB', 0)})")
    return m, k, n


def cost_gemm(node: NodeView) -> Cost:
    """Gemm Y = alpha * A' B' + beta * C.

    MACs = M * K * N; FLOPs = 2 * MACs + M * N when C is given. The alpha and beta scalings are
    not counted (1.0 in every exported network).
    """
    m, k, n = _gemm_mkn(node, 0, 1)
    macs = m * k * n
    return Cost(macs, 2 * macs + (m * n if node.input(2) is not None else 0))


def cost_qgemm(node: NodeView) -> Cost:
    """com.microsoft QGemm (A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp): as Gemm.

    MACs = M * K * N; FLOPs = 2 * MACs + M * N when C is given.
    """
    m, k, n = _gemm_mkn(node, 0, 3)
    macs = m * k * n
    return Cost(macs, 2 * macs + (m * n if node.input(6) is not None else 0))


def cost_fused_gemm(node: NodeView) -> Cost:
    """com.microsoft FusedGemm (Gemm + activation): MACs = M * K * N as Gemm.

    FLOPs = 2 * MACs + M * N for each of: C when given, the fused activation (as FusedConv).
    """
    m, k, n = _gemm_mkn(node, 0, 1)
    macs = m * k * n
    bias = m * n if node.input(2) is not None else 0
    activation = m * n if node.attr("activation") else 0
    return Cost(macs, 2 * macs + bias + activation)


def _matmul_macs(node: NodeView, a_index: int, b_index: int) -> int:
    a = _shape(node, a_index, "A", min_rank=1)
    b = _shape(node, b_index, "B", min_rank=1)
    return _matmul_macs_of_shapes(node, a, b)


def _matmul_macs_of_shapes(node: NodeView, a: Sequence[int], b: Sequence[int]) -> int:
    """MACs of numpy-style matmul: prod(broadcast batch) * M * K * N.

    A 1-D A is (1, K) and a 1-D B is (K, 1), the added dimension then dropped (numpy rules);
    batch dimensions broadcast.
    """
    a2 = (1, *a) if len(a) == 1 else tuple(a)
    b2 = (*b, 1) if len(b) == 1 else tuple(b)
    m, k = a2[-2:]
    k_b, n = b2[-2:]
    if k != k_b:
        raise _fail(node, f"inner dimensions differ: A {tuple(a)} and B {tuple(b)}")
    batch = _broadcast(node, [a2[:-2], b2[:-2]])
    return math.prod(batch) * m * k * n


def _matmul_rule(a_index: int, b_index: int, name: str) -> Callable[[NodeView], Cost]:
    def rule(node: NodeView) -> Cost:
        macs = _matmul_macs(node, a_index, b_index)
        return Cost(macs, 2 * macs)

    rule.__name__ = rule.__qualname__ = name
    rule.__doc__ = (f"MatMul family (A = input {a_index}, B = input {b_index}): "
                    "MACs = prod(broadcast batch) * M * K * N (numpy rules for 1-D operands); FLOPs = 2 * MACs.")
    return rule


cost_matmul = _matmul_rule(0, 1, "cost_matmul")
cost_matmul_integer = _matmul_rule(0, 1, "cost_matmul_integer")
cost_qlinear_matmul = _matmul_rule(0, 3, "cost_qlinear_matmul")


def cost_fused_matmul(node: NodeView) -> Cost:
    """com.microsoft FusedMatMul (alpha * A' B', transA/transB on the last two axes).

    MACs = prod(broadcast batch) * M * K * N as MatMul; FLOPs = 2 * MACs. The transposes only swap
    M and K (A) or K and N (B); alpha is not counted.
    """
    a = _shape(node, 0, "A", min_rank=2)
    b = _shape(node, 1, "B", min_rank=2)
    if node.attr("transA", 0):
        a = (*a[:-2], a[-1], a[-2])
    if node.attr("transB", 0):
        b = (*b[:-2], b[-1], b[-2])
    macs = _matmul_macs_of_shapes(node, a, b)
    return Cost(macs, 2 * macs)


def cost_matmul_integer_to_float(node: NodeView) -> Cost:
    """com.microsoft MatMulIntegerToFloat (A, B, a_scale, b_scale, a_zp, b_zp, bias): MatMul MACs;
    FLOPs = 2 * MACs + one bias add per output element when bias is given."""
    macs = _matmul_macs(node, 0, 1)
    bias = _output_elements(node) if node.input(6) is not None else 0
    return Cost(macs, 2 * macs + bias)


# --- element-wise families -----------------------------------------------------------------------


def _per_output_element(flops_per_element: int, name: str) -> Callable[[NodeView], Cost]:
    def rule(node: NodeView) -> Cost:
        return Cost(0, flops_per_element * _output_elements(node))

    rule.__name__ = rule.__qualname__ = name
    rule.__doc__ = (f"FLOPs = {flops_per_element} per output element (one op per element, whatever the function); "
                    "no MACs.")
    return rule


def _variadic(extra_flops: int, name: str) -> Callable[[NodeView], Cost]:
    def rule(node: NodeView) -> Cost:
        k = sum(1 for t in node.inputs if t is not None)
        per_element = (k - 1) + extra_flops if k > 1 else 0
        return Cost(0, per_element * _output_elements(node))

    rule.__name__ = rule.__qualname__ = name
    rule.__doc__ = (f"Variadic element-wise op over k inputs: FLOPs = ((k - 1) + {extra_flops}) per output "
                    "element (the pairwise combines, plus the final divide for Mean); 0 with a single input.")
    return rule


def cost_zero(node: NodeView) -> Cost:
    """Shape-only op (data movement or reinterpretation): 0 MACs, 0 FLOPs."""
    return Cost()


def cost_batch_norm(node: NodeView) -> Cost:
    """BatchNormalization, inference: scale and shift folded to x * a + b, so FLOPs = 2 per element.

    The same count is used in training mode (the batch statistics are not counted).
    """
    return Cost(0, 2 * math.prod(_shape(node, 0, "X")))


def cost_stats_normalization(node: NodeView) -> Cost:
    """LayerNormalization / InstanceNormalization / GroupNormalization: statistics at run time.

    FLOPs per element = 5 (mean add, subtract, square, variance add, scale by 1/std)
    + 1 for the scale multiply + 1 for the bias add, each when that input is given.
    """
    per_element = NORMALIZATION_STATS_FLOPS + sum(1 for t in node.inputs[1:3] if t is not None)
    return Cost(0, per_element * math.prod(_shape(node, 0, "X")))


def cost_lrn(node: NodeView) -> Cost:
    """LRN: FLOPs = (size + 5) per element.

    1 square, size adds over the channel window (as a pooling window counts kh·kw), 1 scale by
    alpha / size, 1 add of the bias k, 1 pow by beta, 1 divide. This is exactly what the same rules give
    for torch's decomposition (Mul, AveragePool [size,1,1], Mul, Add, Pow, Div), so an LRN op and its
    exported decomposition cost the same.
    """
    size = node.attr("size")
    if size is None:
        raise _fail(node, "attribute 'size' is missing")
    return Cost(0, (size + 5) * math.prod(_shape(node, 0, "X")))


def cost_softmax(node: NodeView) -> Cost:
    """Softmax / LogSoftmax: FLOPs = 3 per element (exp, sum, divide -- or subtract for LogSoftmax);
    the max subtracted for stability and the per-row log are not counted."""
    return Cost(0, SOFTMAX_FLOPS * math.prod(_shape(node, 0, "input")))


def cost_hardmax(node: NodeView) -> Cost:
    """Hardmax: FLOPs = 1 compare per element."""
    return Cost(0, math.prod(_shape(node, 0, "input")))


def _reduced_output_elements(node: NodeView, in_shape: Sequence[int]) -> int:
    """Output elements of a Reduce*/Arg* op: node's shape when known, else from the axes.

    Axes come from the attribute (before opset 18; ReduceSum before 13) or from the constant second
    input; none given means all axes, or none at all with noop_with_empty_axes.
    """
    out_shape = _known_output_shape(node)
    if out_shape is not None:
        return math.prod(out_shape)
    if node.op_type in ("ArgMax", "ArgMin"):
        axes = [node.attr("axis", 0)]
    else:
        axes = node.attr("axes")
        axes_input = node.input(1)
        if axes is None and axes_input is not None:
            if axes_input.value is None:
                raise ShapeUnknown(f"axes of {node.name!r} are not a known constant")
            axes = [int(a) for a in axes_input.value.reshape(-1)]
    if not axes:
        return math.prod(in_shape) if node.attr("noop_with_empty_axes", 0) else 1
    reduced = {a % len(in_shape) for a in axes}
    return math.prod(d for i, d in enumerate(in_shape) if i not in reduced)


def _reduction(pre: int, post: int, name: str) -> Callable[[NodeView], Cost]:
    def rule(node: NodeView) -> Cost:
        in_shape = _shape(node, 0, "data")
        post_flops = post * _reduced_output_elements(node, in_shape) if post else 0
        return Cost(0, (1 + pre) * math.prod(in_shape) + post_flops)

    rule.__name__ = rule.__qualname__ = name
    rule.__doc__ = (f"Reduction: FLOPs = {1 + pre} per input element (combine"
                    f"{' + element-wise transform' if pre else ''}) + {post} per output element.")
    return rule


def cost_pool(node: NodeView) -> Cost:
    """MaxPool / AveragePool / LpPool: FLOPs = prod(kernel_shape) per output element (course convention).

    Output shape from the node when known, else from the window formula (pads, strides,
    dilations, auto_pad, ceil_mode).
    """
    kernel = node.attr("kernel_shape")
    if not kernel:
        raise _fail(node, "attribute 'kernel_shape' is missing")
    out_shape = _known_output_shape(node)
    if out_shape is None:
        x_shape = _shape(node, 0, "X", min_rank=len(kernel) + 2)
        spatial = _sliding_window_sizes(node, x_shape[2:], kernel, ceil_mode=bool(node.attr("ceil_mode", 0)))
        out_shape = (*x_shape[:2], *spatial)
    return Cost(0, math.prod(kernel) * math.prod(out_shape))


def cost_global_pool(node: NodeView) -> Cost:
    """GlobalAveragePool / GlobalMaxPool / GlobalLpPool: FLOPs = input spatial size per output
    element, i.e. the number of input elements."""
    return Cost(0, math.prod(_shape(node, 0, "X", min_rank=3)))


def _resize_output_shape(node: NodeView, in_shape: Sequence[int]) -> tuple[int, ...]:
    """Output shape of Resize/Upsample: node's when known, else from constant sizes or scales.

    Resize-10 and Upsample-9 take scales as input 1; Resize-11+ takes (roi, scales, sizes) as
    inputs 1-3 (axes attribute from opset 18); Upsample-7 has a scales attribute.
    """
    out_shape = _known_output_shape(node)
    if out_shape is not None:
        return out_shape
    axes = node.attr("axes") or list(range(len(in_shape)))
    if node.op_type == "Resize" and (node.opset >= 11 or len(node.inputs) > 2):
        sizes, scales = node.input(3), node.input(2)
        if sizes is not None and sizes.value is not None and sizes.value.size:
            result = list(in_shape)
            for axis, size in zip(axes, sizes.value.reshape(-1), strict=True):
                result[axis] = int(size)
            return tuple(result)
    else:
        scales = node.input(1)
    scale_values = node.attr("scales") if scales is None else scales.value
    if scale_values is None:
        raise ShapeUnknown(f"output shape of {node.name!r} is unknown (scales/sizes not constant)")
    result = list(in_shape)
    for axis, scale in zip(axes, [float(s) for s in list(scale_values)], strict=True):
        result[axis] = math.floor(in_shape[axis] * scale)
    return tuple(result)


def cost_resize(node: NodeView) -> Cost:
    """Resize / Upsample, per output element with r = number of axes whose size changes:
    nearest 0 FLOPs (a gather); linear 2 * 2**r (a weight multiply and an accumulate per
    neighbour); cubic 2 * 4**r. Interpolation weights and coordinate transforms are not counted.
    """
    in_shape = _shape(node, 0, "X")
    out_shape = _resize_output_shape(node, in_shape)
    resized_axes = sum(1 for a, b in zip(in_shape, out_shape, strict=True) if a != b)
    mode = _str_attr(node, "mode", "nearest")
    neighbours = {"nearest": 0, "linear": 2, "bilinear": 2, "cubic": 4}.get(mode)
    if neighbours is None:
        raise _fail(node, f"unknown mode {mode!r}")
    per_element = 2 * neighbours**resized_axes if neighbours else 0
    return Cost(0, per_element * math.prod(out_shape))


# --- recurrent ops -------------------------------------------------------------------------------

# Gate pre-activations per hidden unit: LSTM input, output, forget and cell gates; GRU update, reset
# and hidden gates; RNN one.
RECURRENT_GATES: dict[str, int] = {"LSTM": 4, "GRU": 3, "RNN": 1}


@dataclass(frozen=True)
class Recurrence:
    """Geometry of an LSTM / GRU / RNN node."""

    directions: int  # 2 when bidirectional, else 1
    steps: int  # sequence length
    batch: int
    input_size: int
    hidden_size: int

    @property
    def cell_runs(self) -> int:
        """Cell evaluations: one per direction, time step and batch element."""
        return self.directions * self.steps * self.batch


def _recurrence(node: NodeView, *, transposed: bool = False) -> Recurrence:
    """X is [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1); W is
    [directions, gates * hidden, input] and R [directions, gates * hidden, hidden] (``transposed``, as
    com.microsoft DynamicQuantizeLSTM stores them: [directions, input, gates * hidden] and
    [directions, hidden, gates * hidden]), checked against the direction and hidden_size attributes
    (hidden from W when the attribute is absent)."""
    gates = RECURRENT_GATES[node.op_type.removeprefix("DynamicQuantize")]
    x = _shape(node, 0, "X", min_rank=3)
    w = _shape(node, 1, "W", min_rank=3)
    r = _shape(node, 2, "R", min_rank=3)
    if transposed:
        w, r = [w[0], w[2], w[1]], [r[0], r[2], r[1]]
    directions = 2 if _str_attr(node, "direction", "forward") == "bidirectional" else 1
    hidden = node.attr("hidden_size") or w[1] // gates
    steps, batch = (x[1], x[0]) if node.attr("layout", 0) else (x[0], x[1])
    if tuple(w) != (directions, gates * hidden, x[2]) or tuple(r) != (directions, gates * hidden, hidden):
        raise _fail(node, f"W {tuple(w)} and R {tuple(r)} do not fit X {tuple(x)} with {directions} direction(s), "
                          f"{gates} gate(s) and hidden_size {hidden}")
    return Recurrence(directions, steps, batch, x[2], hidden)


def _recurrent_cost(node: NodeView, cell_flops_per_unit: int, *, transposed: bool = False) -> Cost:
    """MACs = directions * steps * batch * gates * hidden * (input + hidden): W·x and R·h at every step
    (R·h at the first step too, as for a given initial_h). FLOPs = 2 * MACs plus, per cell run: 2 bias
    adds (Wb and Rb) per gate unit when B is given, 1 per gate unit when clip is set, and
    ``cell_flops_per_unit`` per hidden unit (gate activations and the element-wise cell update)."""
    geometry = _recurrence(node, transposed=transposed)
    gate_units = RECURRENT_GATES[node.op_type.removeprefix("DynamicQuantize")] * geometry.hidden_size
    macs = geometry.cell_runs * gate_units * (geometry.input_size + geometry.hidden_size)
    per_run = cell_flops_per_unit * geometry.hidden_size
    per_run += 2 * gate_units if node.input(3) is not None else 0
    per_run += gate_units if node.attr("clip") is not None else 0
    return Cost(macs, 2 * macs + geometry.cell_runs * per_run)


def cost_lstm(node: NodeView) -> Cost:
    """LSTM (X, W, R, B, sequence_lens, initial_h, initial_c, P), every direction and layout.

    MACs = directions * steps * batch * 4 * hidden * (input + hidden). FLOPs = 2 * MACs plus, per
    direction, step and batch element: 8 * hidden bias adds (Wb + Rb) when B is given; 9 * hidden for
    the cell -- 5 activations (f(i), f(f), g(c), f(o), h(C)), C = f ⊙ C' + i ⊙ c (3), H = o ⊙ h(C) (1);
    6 * hidden for the three peepholes (a multiply and an add each) when P is given; 4 * hidden when
    clip is set. sequence_lens does not shorten the count (padded steps are counted); input_forget
    changes nothing counted.
    """
    peepholes = 6 if node.input(7) is not None else 0
    return _recurrent_cost(node, 9 + peepholes)


def cost_dynamic_quantize_lstm(node: NodeView) -> Cost:
    """com.microsoft DynamicQuantizeLSTM (X, W, R, B, sequence_lens, initial_h, initial_c, P, W_scale,
    W_zero_point, R_scale, R_zero_point): an LSTM whose int8 weights are stored transposed, W
    [directions, input, 4 * hidden] and R [directions, hidden, 4 * hidden]. MACs and FLOPs as
    :func:`cost_lstm`; the dynamic quantization of X and h (a scale and a zero point per step) is not
    counted."""
    peepholes = 6 if node.input(7) is not None else 0
    return _recurrent_cost(node, 9 + peepholes, transposed=True)


def cost_gru(node: NodeView) -> Cost:
    """GRU (X, W, R, B, sequence_lens, initial_h), every direction and layout.

    MACs = directions * steps * batch * 3 * hidden * (input + hidden). FLOPs = 2 * MACs plus, per
    direction, step and batch element: 6 * hidden bias adds (Wb + Rb) when B is given; 8 * hidden for
    the cell -- 3 activations (f(z), f(r), g(h)), 1 multiply by r (of H' before Rh, or of Rh·H' + Rbh
    after it with linear_before_reset: the same count), H = (1 - z) ⊙ h + z ⊙ H' (4); 3 * hidden when
    clip is set.
    """
    return _recurrent_cost(node, 8)


def cost_rnn(node: NodeView) -> Cost:
    """RNN (X, W, R, B, sequence_lens, initial_h), every direction and layout.

    MACs = directions * steps * batch * hidden * (input + hidden). FLOPs = 2 * MACs plus, per
    direction, step and batch element: 2 * hidden bias adds (Wb + Rb) when B is given, hidden
    activations, and hidden more when clip is set.
    """
    return _recurrent_cost(node, 1)


# --- attention -----------------------------------------------------------------------------------

# Per attention score, besides its Q·K and V products: the scale multiply and the softmax.
ATTENTION_SCORE_FLOPS = 1 + SOFTMAX_FLOPS
# softcap: score = softcap * tanh(score / softcap)
SOFTCAP_FLOPS = 3


@dataclass(frozen=True)
class AttentionShape:
    """Geometry of a scaled dot-product attention."""

    batch: int
    heads: int  # query heads: grouped K/V heads (GQA, MQA) are read by every query head
    query_length: int
    total_length: int  # past + new key/value positions
    head_size: int  # of Q and K
    v_head_size: int

    @property
    def scores(self) -> int:
        return self.batch * self.heads * self.query_length * self.total_length

    @property
    def macs(self) -> int:
        """Q·Kᵀ (head_size per score) and softmax(Q·Kᵀ)·V (v_head_size per score), every head."""
        return self.scores * (self.head_size + self.v_head_size)


def _attention_cost(geometry: AttentionShape, score_terms: int, *, projection_macs: int = 0,
                    other_flops: int = 0) -> Cost:
    """Cost(MACs, FLOPs) of an attention: MACs = projection + Q·Kᵀ + softmax·V; FLOPs = 2 * MACs
    + (scale + softmax + ``score_terms``) per score + ``other_flops`` (bias adds)."""
    macs = projection_macs + geometry.macs
    flops = 2 * macs + geometry.scores * (ATTENTION_SCORE_FLOPS + score_terms) + other_flops
    return Cost(macs, flops)


def _heads(node: NodeView, name: str) -> int:
    heads = node.attr(name)
    if not heads or heads < 1:
        raise _fail(node, f"attribute {name!r} is missing")
    return heads


def _per_head(node: NodeView, hidden: int, heads: int, role: str) -> int:
    if hidden % heads:
        raise _fail(node, f"{role} hidden size {hidden} is not a multiple of {heads} heads")
    return hidden // heads


def _constant_length(node: NodeView, index: int, role: str) -> int:
    """A sequence length given as a small constant input (past_sequence_length with a shared buffer)."""
    tensor = _tensor(node, index, role)
    if tensor.value is None:
        raise ShapeUnknown(f"{role} of {node.name!r} is not a known constant")
    return int(tensor.value.reshape(-1)[0])


def cost_attention(node: NodeView) -> Cost:
    """ONNX Attention (opset 23): Q, K, V, attn_mask, past_key, past_value.

    Q, K, V are 4-D [batch, heads, seq, head_size] or 3-D [batch, seq, heads * head_size] with the
    q_num_heads / kv_num_heads attributes. MACs = batch * q_heads * q_seq * total_seq * (head_size
    + v_head_size): Q·Kᵀ and softmax(·)·V per query head, total_seq = past_seq + kv_seq; masked
    (causal) positions are counted. FLOPs = 2 * MACs + per score: 1 scale, 3 softmax (the Softmax
    convention), 1 mask add when attn_mask is given or is_causal set, 3 when softcap is set.
    """
    q = _shape(node, 0, "Q", min_rank=3)
    k = _shape(node, 1, "K", min_rank=3)
    v = _shape(node, 2, "V", min_rank=3)
    if len(q) == 4:
        batch, heads, q_length, head_size = q
    else:
        batch, q_length = q[0], q[1]
        heads = _heads(node, "q_num_heads")
        head_size = _per_head(node, q[2], heads, "Q")
    kv_length = k[2] if len(k) == 4 else k[1]
    v_head_size = v[3] if len(v) == 4 else _per_head(node, v[2], _heads(node, "kv_num_heads"), "V")
    past = _shape(node, 4, "past_key", min_rank=4)[2] if node.input(4) is not None else 0
    geometry = AttentionShape(batch, heads, q_length, past + kv_length, head_size, v_head_size)
    masked = node.input(3) is not None or bool(node.attr("is_causal", 0))
    softcap = SOFTCAP_FLOPS if node.attr("softcap", 0.0) else 0
    return _attention_cost(geometry, int(masked) + softcap)


def cost_ms_attention(node: NodeView) -> Cost:
    """com.microsoft Attention: input [batch, seq, input_hidden], packed Q/K/V weights [input_hidden,
    q_hidden + k_hidden + v_hidden] (qkv_hidden_sizes, else three equal parts), bias, mask_index,
    past [2, batch, heads, past_seq, head_size], attention_bias, past_sequence_length; num_heads.

    MACs = batch * seq * input_hidden * (q_hidden + k_hidden + v_hidden)  (the input projection)
         + batch * heads * seq * total_seq * (head_size + v_head_size)     (Q·Kᵀ and softmax(·)·V)
    with head_size = q_hidden / heads, v_head_size = v_hidden / heads, total_seq = past_seq + seq
    (past_seq from past_sequence_length with past_present_share_buffer). FLOPs = 2 * MACs + one add
    per projected element when bias is given + per score: 1 scale, 3 softmax, 1 mask when mask_index
    is given or unidirectional set, 1 when attention_bias is given. Rotary embedding is not counted.
    """
    x = _shape(node, 0, "input", min_rank=3)
    w = _shape(node, 1, "weights", min_rank=2)
    heads = _heads(node, "num_heads")
    q_hidden, k_hidden, v_hidden = node.attr("qkv_hidden_sizes") or [w[1] // 3] * 3
    if w[0] != x[-1] or q_hidden + k_hidden + v_hidden != w[1]:
        raise _fail(node, f"weights {tuple(w)} do not fit input {tuple(x)} and Q/K/V sizes "
                          f"{[q_hidden, k_hidden, v_hidden]}")
    batch, length = x[0], x[1]
    past = 0
    if node.attr("past_present_share_buffer", 0):
        past = _constant_length(node, 6, "past_sequence_length")
    elif node.input(4) is not None:
        past = _shape(node, 4, "past", min_rank=5)[3]
    geometry = AttentionShape(batch, heads, length, past + length, _per_head(node, q_hidden, heads, "Q"),
                              _per_head(node, v_hidden, heads, "V"))
    tokens = batch * length
    masked = node.input(3) is not None or bool(node.attr("unidirectional", 0))
    score_terms = int(masked) + int(node.input(5) is not None)
    bias = tokens * w[1] if node.input(2) is not None else 0
    return _attention_cost(geometry, score_terms, projection_macs=tokens * w[0] * w[1], other_flops=bias)


def _multi_head_attention_shape(node: NodeView) -> AttentionShape:
    """Geometry of com.microsoft MultiHeadAttention from its query, key and value layouts."""
    heads = _heads(node, "num_heads")
    q = _shape(node, 0, "query", min_rank=3)
    batch, length = q[0], q[1]
    if len(q) == 5:  # packed QKV [batch, seq, heads, 3, head_size]
        head_size = v_head_size = q[4]
        kv_length = length
    else:
        head_size = _per_head(node, q[2], heads, "query")
        k = _shape(node, 1, "key", min_rank=3)
        kv_length = k[2] if len(k) == 4 else k[1]
        if len(k) == 5:  # packed KV [batch, kv_seq, heads, 2, head_size]
            v_head_size = k[4]
        else:
            v = _shape(node, 2, "value", min_rank=3)
            v_head_size = v[3] if len(v) == 4 else _per_head(node, v[2], heads, "value")
    return AttentionShape(batch, heads, length, _past_length(node) + kv_length, head_size, v_head_size)


def _past_length(node: NodeView) -> int:
    """MultiHeadAttention's past_seq: past_key's length, or the past_sequence_length value when past and
    present share a buffer (past_key then holds the maximum length); 0 without a past."""
    if node.input(8) is not None:
        return _constant_length(node, 8, "past_sequence_length")
    if node.input(6) is not None:
        return _shape(node, 6, "past_key", min_rank=4)[2]
    return 0


def cost_multi_head_attention(node: NodeView) -> Cost:
    """com.microsoft MultiHeadAttention: Q/K/V already projected; the bias of their projection may
    come as input 3 (hidden + hidden + v_hidden); num_heads.

    query [batch, seq, hidden] or packed QKV [batch, seq, heads, 3, head_size]; key [batch, kv_seq,
    hidden], packed KV [batch, kv_seq, heads, 2, head_size] or [batch, heads, kv_seq, head_size];
    value [batch, kv_seq, v_hidden] or [batch, heads, kv_seq, v_head_size]; past_key [batch, heads,
    past_seq, head_size] (or the past_sequence_length value with a shared buffer) adds past_seq.
    MACs = batch * heads * seq * total_seq * (head_size + v_head_size). FLOPs = 2 * MACs + one bias
    add per element of the new Q, K and V when bias is given + per score: 1 scale, 3 softmax, 1 mask
    when key_padding_mask is given or unidirectional set, 1 when attention_bias is given.
    """
    geometry = _multi_head_attention_shape(node)
    masked = node.input(4) is not None or bool(node.attr("unidirectional", 0))
    score_terms = int(masked) + int(node.input(5) is not None)
    bias = 0
    if node.input(3) is not None:
        new_kv = geometry.total_length - _past_length(node)
        hidden = geometry.heads * geometry.head_size
        bias = geometry.batch * (geometry.query_length * hidden
                                 + new_kv * (hidden + geometry.heads * geometry.v_head_size))
    return _attention_cost(geometry, score_terms, other_flops=bias)


# --- the registry --------------------------------------------------------------------------------

Rule = Callable[[NodeView], Cost]

# Ops whose rule is their own rather than their family's: their operands sit at op-specific input
# positions, or they follow a convention of their own.
OP_RULES: dict[tuple[str, str], Rule] = {
    # multiply-accumulate ops
    ("", "Conv"): cost_conv,
    ("", "ConvTranspose"): cost_conv_transpose,
    ("", "QLinearConv"): cost_qlinear_conv,
    ("", "ConvInteger"): cost_conv_integer,
    ("", "Gemm"): cost_gemm,
    ("", "MatMul"): cost_matmul,
    ("", "MatMulInteger"): cost_matmul_integer,
    ("", "QLinearMatMul"): cost_qlinear_matmul,
    (MS_DOMAIN, "FusedConv"): cost_fused_conv,
    (MS_DOMAIN, "FusedGemm"): cost_fused_gemm,
    (MS_DOMAIN, "FusedMatMul"): cost_fused_matmul,
    (MS_DOMAIN, "QGemm"): cost_qgemm,
    (MS_DOMAIN, "MatMulIntegerToFloat"): cost_matmul_integer_to_float,
    # normalisations and softmax with a convention of their own
    ("", "BatchNormalization"): cost_batch_norm,
    ("", "LRN"): cost_lrn,
    ("", "Softmax"): cost_softmax,
    ("", "LogSoftmax"): cost_softmax,
    ("", "Hardmax"): cost_hardmax,
    # sequence ops
    ("", "LSTM"): cost_lstm,
    ("", "GRU"): cost_gru,
    ("", "RNN"): cost_rnn,
    ("", "Attention"): cost_attention,
    (MS_DOMAIN, "Attention"): cost_ms_attention,
    (MS_DOMAIN, "MultiHeadAttention"): cost_multi_head_attention,
    (MS_DOMAIN, "DynamicQuantizeLSTM"): cost_dynamic_quantize_lstm,
}


def _named(op: str) -> str:
    return f"cost_{op.lower()}"


# family -> the rule of one of its ops, given the op type
FAMILY_RULES: dict[str, Callable[[str], Rule]] = {
    **{family: (lambda op, n=n: _per_output_element(n, _named(op))) for family, n in FLOPS_PER_ELEMENT.items()},
    "variadic": lambda op: _variadic(VARIADIC_EXTRA_FLOPS[op], _named(op)),
    "reduce": lambda op: _reduction(*REDUCE_FLOPS[op], _named(op)),
    "arg_reduce": lambda op: _reduction(*REDUCE_FLOPS[op], _named(op)),
    "stats_norm": lambda op: cost_stats_normalization,
    "window_pool": lambda op: cost_pool,
    "global_pool": lambda op: cost_global_pool,
    "resample": lambda op: cost_resize,
    **{family: (lambda op: cost_zero) for family in ZERO_COST_FAMILIES},
}


def _rule(key: tuple[str, str], family: str) -> Rule:
    if key in OP_RULES:
        return OP_RULES[key]
    if family not in FAMILY_RULES:
        raise LookupError(f"{key[1]} (family {family!r}) has no counting rule: add one to OP_RULES or FAMILY_RULES")
    return FAMILY_RULES[family](key[1])


# (domain, op_type) -> rule, for every op of analyzer.op_families; domain "" is ai.onnx. Rules only need
# shapes, so ops whose attributes moved to inputs across opsets (Clip, Squeeze, Unsqueeze, Reduce*,
# Resize) need one rule each; where a value matters (Reduce* axes, Resize scales) the rule reads
# attribute or input by opset.
COST_RULES: dict[tuple[str, str], Rule] = {key: _rule(key, family) for key, family in FAMILY_OF.items()}
