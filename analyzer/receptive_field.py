"""Receptive fields of every node's output, propagated over the graph (Araujo et al., Distill 2019).

Per spatial axis, for layers l = 1..L with kernel k_l (dilated: d·(k−1)+1), stride s_l and left
padding p_l::

    r = 1 + Σ_l (k_l − 1) · ∏_{i<l} s_i        (receptive field size)
    S = ∏_l s_l                                 (effective stride)
    P = Σ_l p_l · ∏_{i<l} s_i                   (effective left padding)

computed one layer at a time: r' = r + (k − 1)·S, P' = P + p·S, S' = S·s. The layout is NCHW: the
spatial axes are dims 2.. of the graph's image input (a graph input of rank ≥ 3 starts at r = 1,
S = 1, P = 0 on each of them).

Rules (``FIELD_RULES``: by op family, from the table :mod:`analyzer.op_families` that the counting
rules read too, and per op where the rule depends on the op):

- windows (Conv, MaxPool, AveragePool, LpPool): kernel_shape (Conv: weight dims 2.. when absent),
  strides, dilations, begin pads, or the left pad that auto_pad SAME_UPPER / SAME_LOWER gives for
  the input size (VALID: 0);
- k = 1: activations, element-wise ops, (de)quantization, BatchNormalization, LRN, Dropout, Identity,
  Cast, Concat and Split along a non-spatial axis, Transpose that keeps the spatial axes in place,
  Reshape that keeps them (channel shuffle), reductions, Softmax and Hardmax over non-spatial axes;
- Pad with constant pads adds p·S to P; Slice with constant starts/steps on spatial axes is a crop:
  P' = P − start·S, S' = S·step;
- global: GlobalAveragePool / GlobalMaxPool / GlobalLpPool, InstanceNormalization and
  GroupNormalization (statistics over the whole map), LayerNormalization (its trailing axes always
  include the last spatial one), reductions, ArgMax/ArgMin, Softmax and Hardmax over a spatial axis
  (axes from the attribute or the constant ``axes`` input), Gemm / MatMul fed by features with
  spatial axes in them; the recurrent ops (LSTM, GRU, RNN: each output step reads every earlier
  step, both ends when bidirectional) and the attention ops (ONNX Attention, com.microsoft Attention and
  MultiHeadAttention: each query reads every key), whether fed with
  spatial axes or with features the spatial axes were folded into (a CNN's map flattened into a
  sequence). A global field reports ``size`` = the input's full spatial size, with the
  stride and padding the field had where it became global; everything downstream stays global.

Decisions where the method is silent:

- Flatten, and a Reshape/Squeeze/Unsqueeze that folds spatial axes into features, report **None**:
  their outputs have no spatial axes, so a per-axis stride or padding means nothing there. The
  field travels on internally and the Gemm/MatMul that consumes it is global.
- Merges (any node with several inputs carrying a field) take, per axis, the field of the input
  with the largest r. Inputs are aligned when they share S and the center −P + (r − 1)/2 on every
  axis; otherwise the merge and everything downstream report ``aligned=False`` and the merge node
  gets a warning. A merge with a global input is global.
- Unsupported ops on the spatial path (Resize, Upsample, ConvTranspose, If, ...) warn once per op
  type and the field stops there: None downstream. Shape and Size read no pixel values: None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from analyzer.errors import MALFORMED_ERRORS
from analyzer.op_families import (
    ELEMENTWISE_FAMILIES,
    MICROSOFT_OP_FAMILIES,
    MS_DOMAIN,
    OP_FAMILIES,
    default_domain,
    family_of,
)
from analyzer.report import ReceptiveFieldInfo
from analyzer.views import NodeView


@dataclass(frozen=True)
class Field:
    """The receptive field carried by one tensor (internal; reported as ReceptiveFieldInfo)."""

    size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    input_size: tuple[int, ...]  # full spatial size of the graph input it started from
    is_global: bool = False
    aligned: bool = True
    folded: bool = False  # spatial axes folded into features (Flatten & co.): reported as None

    def info(self) -> ReceptiveFieldInfo:
        size = self.input_size if self.is_global else self.size
        return ReceptiveFieldInfo(
            size=list(size),
            stride=list(self.stride),
            padding=list(self.padding),
            is_global=self.is_global,
            aligned=self.aligned,
        )


class _Stopped:
    """Marks tensors downstream of an op the analysis does not understand."""


STOPPED = _Stopped()
State = Field | _Stopped


class UnsupportedOp(Exception):
    """A rule cannot propagate the field through this node; the message says why."""


class MalformedNode(Exception):
    """The node's attributes make no sense for its op (a ``perm`` shorter than the rank, ...)."""


# ---------------------------------------------------------------- formulas


def window_field(
    field: Field, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], left_pads: Sequence[int]
) -> Field:
    """One sliding-window layer: r' = r + (d·(k−1)+1 − 1)·S, P' = P + p·S, S' = S·s, per axis."""
    size, stride, padding = [], [], []
    for r, S, P, k, s, d, p in zip(field.size, field.stride, field.padding, kernel, strides, dilations, left_pads):
        effective_kernel = d * (k - 1) + 1
        size.append(r + (effective_kernel - 1) * S)
        padding.append(P + p * S)
        stride.append(S * s)
    return replace(field, size=tuple(size), stride=tuple(stride), padding=tuple(padding))


def pad_field(field: Field, left_pads: Sequence[int]) -> Field:
    """Explicit padding (k = 1, s = 1): P' = P + p·S per axis; a negative p is a crop."""
    padding = tuple(P + p * S for P, S, p in zip(field.padding, field.stride, left_pads))
    return replace(field, padding=padding)


def same_left_pad(input_size: int, kernel: int, stride: int, dilation: int, upper: bool) -> int:
    """Left pad of auto_pad SAME_*: total = max((⌈n/s⌉ − 1)·s + d·(k−1)+1 − n, 0).

    SAME_UPPER puts the odd pixel at the end (left = ⌊total/2⌋), SAME_LOWER at the start (⌈total/2⌉).
    """
    output_size = -(-input_size // stride)
    total = max((output_size - 1) * stride + dilation * (kernel - 1) + 1 - input_size, 0)
    return total // 2 if upper else total - total // 2


def center(field: Field, axis: int) -> Fraction:
    """Center of the field of output pixel 0 in input coordinates: −P + (r − 1)/2."""
    return Fraction(field.size[axis] - 1, 2) - field.padding[axis]


def merge_fields(fields: Sequence[Field]) -> tuple[Field, str | None]:
    """Per axis the field of the input with the largest r; the reason string says why paths are misaligned."""
    if len({len(f.size) for f in fields}) > 1:
        raise UnsupportedOp("inputs have different numbers of spatial axes")
    aligned = all(f.aligned for f in fields)
    if any(f.is_global for f in fields):
        widest = max(fields, key=lambda f: f.input_size)
        return replace(widest, is_global=True, folded=False, aligned=aligned), None
    axes = range(len(fields[0].size))
    widest = [max(fields, key=lambda f: f.size[a]) for a in axes]
    merged = Field(
        size=tuple(widest[a].size[a] for a in axes),
        stride=tuple(widest[a].stride[a] for a in axes),
        padding=tuple(widest[a].padding[a] for a in axes),
        input_size=max(f.input_size for f in fields),
        aligned=aligned,
        folded=any(f.folded for f in fields),
    )
    reason = None
    strides = {f.stride for f in fields}
    centers = {tuple(center(f, a) for a in axes) for f in fields}
    if len(strides) > 1 or len(centers) > 1:
        shown = "; ".join(
            f"stride {list(f.stride)} center {[str(center(f, a)) for a in axes]}" for f in fields
        )
        reason = f"input fields differ ({shown})"
        merged = replace(merged, aligned=False)
    return merged, reason


def make_global(field: Field) -> Field:
    return replace(field, is_global=True, folded=False)


# ---------------------------------------------------------------- helpers for rules


def _spatial_rank(field: Field) -> int:
    return len(field.size)


def _rank(node: NodeView, index: int = 0) -> int | None:
    tensor = node.input(index)
    return None if tensor is None or tensor.shape is None else len(tensor.shape)


def _constant_ints(node: NodeView, index: int, what: str) -> list[int] | None:
    """The constant int list at input ``index``, None when the input is omitted; unknown value → unsupported."""
    tensor = node.input(index)
    if tensor is None:
        return None
    if tensor.value is None:
        raise UnsupportedOp(f"{what} is not a constant")
    return [int(v) for v in tensor.value.reshape(-1)]


def _spatial_axes(node: NodeView, field: Field) -> tuple[int, range]:
    """(input rank, spatial axis ids): the spatial axes are the trailing ones (dims 2.. in NCHW)."""
    rank = _rank(node)
    n = _spatial_rank(field)
    if rank is None:
        raise UnsupportedOp("input shape unknown")
    if rank < n + 2:
        raise UnsupportedOp(f"input rank {rank} has fewer than {n} spatial axes after batch and channels")
    return rank, range(rank - n, rank)


def _normalized(axes: Sequence[int], rank: int) -> set[int]:
    return {a + rank if a < 0 else a for a in axes}


def _over_axes(node: NodeView, field: Field, axes: Sequence[int]) -> Field:
    """Reductions and normalisations: global when they touch a spatial axis, else k = 1."""
    rank, spatial = _spatial_axes(node, field)
    return make_global(field) if _normalized(axes, rank) & set(spatial) else field


# ---------------------------------------------------------------- rules: (node, merged input field) -> field


def _window(node: NodeView, field: Field) -> Field:
    n = _spatial_rank(field)
    kernel = node.attr("kernel_shape")
    if kernel is None and node.op_type == "Conv":
        weight = node.input(1)
        if weight is None or weight.shape is None:
            raise UnsupportedOp("no kernel_shape and the weight shape is unknown")
        kernel = list(weight.shape[2:])
    if kernel is None or len(kernel) < n:
        raise UnsupportedOp(f"kernel {kernel} does not match {n} spatial axes")
    strides = node.attr("strides") or [1] * len(kernel)
    dilations = node.attr("dilations") or [1] * len(kernel)
    pads = node.attr("pads") or [0] * (2 * len(kernel))
    if len(kernel) > n:
        # Leading window axes run over non-spatial dims, e.g. the dynamo exporter's LRN: a [size, 1, 1]
        # AveragePool over (C, H, W) of an unsqueezed tensor. The spatial axes are the trailing ones.
        extra = len(kernel) - n
        kernel, strides, dilations = list(kernel)[extra:], list(strides)[extra:], list(dilations)[extra:]
        pads = list(pads)[extra : len(pads) // 2]
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        _, spatial = _spatial_axes(node, field)
        sizes = [node.input(0).shape[a] for a in spatial]
        upper = auto_pad == "SAME_UPPER"
        left_pads = [same_left_pad(*args, upper) for args in zip(sizes, kernel, strides, dilations)]
    elif auto_pad == "VALID":
        left_pads = [0] * n
    else:
        left_pads = list(pads)[:n]
    return window_field(field, kernel, strides, dilations, left_pads)


def _keep(node: NodeView, field: Field) -> Field:
    return field


def _along_axis(node: NodeView, field: Field) -> Field:
    """Concat / Split: k = 1 along batch or channels; along a spatial axis the output is no field."""
    rank, spatial = _spatial_axes(node, field)
    default = 1 if node.op_type == "Concat" else 0
    axis = node.attr("axis", default)
    if (axis + rank if axis < 0 else axis) in spatial:
        raise UnsupportedOp(f"{node.op_type} along spatial axis {axis}")
    return field


def _pad(node: NodeView, field: Field) -> Field:
    rank, spatial = _spatial_axes(node, field)
    if node.opset and node.opset < 11:
        pads = node.attr("pads")
        axes = None
    else:
        pads = _constant_ints(node, 1, "pads")
        axes = _constant_ints(node, 3, "axes")
    if pads is None:
        raise UnsupportedOp("no pads")
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    begin = dict(zip(axes, pads[: len(axes)]))
    return pad_field(field, [begin.get(a, 0) for a in spatial])


def _slice(node: NodeView, field: Field) -> Field:
    rank, spatial = _spatial_axes(node, field)
    starts = _constant_ints(node, 1, "starts")
    axes = _constant_ints(node, 3, "axes") or list(range(len(starts)))
    steps = _constant_ints(node, 4, "steps") or [1] * len(starts)
    shape = node.input(0).shape
    by_axis = {(a + rank if a < 0 else a): (st, sp) for a, st, sp in zip(axes, starts, steps)}
    crops, steps_per_axis = [], []
    for a in spatial:
        start, step = by_axis.get(a, (0, 1))
        if step <= 0:
            raise UnsupportedOp(f"step {step} on spatial axis {a}")
        start = min(max(start + shape[a] if start < 0 else start, 0), shape[a])
        crops.append(-start)
        steps_per_axis.append(step)
    cropped = pad_field(field, crops)
    return replace(cropped, stride=tuple(S * s for S, s in zip(cropped.stride, steps_per_axis)))


def _transpose(node: NodeView, field: Field) -> Field:
    rank, spatial = _spatial_axes(node, field)
    perm = node.attr("perm") or list(reversed(range(rank)))
    if any(perm[a] != a for a in spatial):
        raise UnsupportedOp(f"perm {list(perm)} moves spatial axes")
    return field


def _reshape(node: NodeView, field: Field) -> Field:
    """Keeps the field when the trailing spatial dims survive (channel regrouping), else folds them."""
    _, spatial = _spatial_axes(node, field)
    before = node.input(0).shape
    out = node.output(0)
    if out is None or out.shape is None:
        raise UnsupportedOp("output shape unknown")
    n = _spatial_rank(field)
    after = out.shape
    kept = len(after) >= n + 2 and tuple(after[-n:]) == tuple(before[a] for a in spatial)
    return field if kept else replace(field, folded=True)


def _fold(node: NodeView, field: Field) -> Field:
    return replace(field, folded=True)


def _reduce(node: NodeView, field: Field) -> Field:
    rank, _ = _spatial_axes(node, field)
    axes = node.attr("axes")
    if axes is None:
        axes = _constant_ints(node, 1, "axes")
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return field
        axes = list(range(rank))
    return _over_axes(node, field, axes)


def _arg_reduce(node: NodeView, field: Field) -> Field:
    return _over_axes(node, field, [node.attr("axis", 0)])


def _softmax(node: NodeView, field: Field) -> Field:
    rank, _ = _spatial_axes(node, field)
    if node.opset and node.opset < 13:
        # before opset 13 the input is coerced to 2-D at ``axis``: every later axis is normalised too
        axis = node.attr("axis", 1)
        return _over_axes(node, field, range(axis + rank if axis < 0 else axis, rank))
    return _over_axes(node, field, [node.attr("axis", -1)])


def _global(node: NodeView, field: Field) -> Field:
    return make_global(field)


# family (analyzer.op_families) -> the rule of each of its ops
FAMILY_RULES: dict[str, Callable[[NodeView, Field], Field]] = {
    # k = 1: each output position reads its own input position
    **{family: _keep for family in ELEMENTWISE_FAMILIES},
    "channel_norm": _keep,
    "window_pool": _window,
    # statistics over the map (LayerNormalization's trailing axes always include the last spatial one)
    "stats_norm": _global,
    "global_pool": _global,
    "reduce": _reduce,
    "arg_reduce": _arg_reduce,
    "softmax": _softmax,
    # every output position reads the whole sequence: global whatever axis the sequence came from
    "recurrent": _global,
    "attention": _global,
}

# Ops whose rule is their own: the layout ops the analysis understands, and the MAC ops it follows.
# Any other op of the families (ConvTranspose, Resize, Gather, Tile, ...) stops the field.
OP_RULES: dict[str, Callable[[NodeView, Field], Field]] = {
    "Conv": _window,
    "Gemm": _global,
    "MatMul": _global,
    "Concat": _along_axis,
    "Split": _along_axis,
    "Pad": _pad,
    "Slice": _slice,
    "Transpose": _transpose,
    **{op: _reshape for op in ("Reshape", "Squeeze", "Unsqueeze")},
    "Flatten": _fold,
}

# op_type (ai.onnx) -> rule: (node, merged input field) -> output field
FIELD_RULES: dict[str, Callable[[NodeView, Field], Field]] = {
    **{op: FAMILY_RULES[family] for family, ops in OP_FAMILIES.items() if family in FAMILY_RULES for op in ops},
    **OP_RULES,
}

# com.microsoft op_type -> rule: the contrib ops of a family with a rule here (the attention ops)
MICROSOFT_FIELD_RULES: dict[str, Callable[[NodeView, Field], Field]] = {
    op: FAMILY_RULES[family] for family, ops in MICROSOFT_OP_FAMILIES.items() if family in FAMILY_RULES for op in ops
}

# Families whose ops mix every position of folded features (no spatial axes left: a map flattened
# into a sequence), as Gemm and MatMul do.
_GLOBAL_ON_FOLDED_FAMILIES = ("recurrent", "attention")
# Ops on folded features that keep them folded; the ops above make them global.
_FOLDED_KEEP = {op for op, rule in FIELD_RULES.items() if rule is _keep} | {
    "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Concat", "Transpose"
}
# Ops whose outputs depend on the input's shape only, never on its values.
_SHAPE_ONLY = set(OP_FAMILIES["shape_reader"])


# ---------------------------------------------------------------- traversal


def _initial_states(G) -> tuple[dict[str, State], list[str]]:
    states: dict[str, State] = {}
    warnings: list[str] = []
    for name, tensor in G.graph["inputs"].items():
        if tensor.shape is None:
            warnings.append(f"receptive field: shape of input {name!r} is unknown; no field starts there")
        elif len(tensor.shape) >= 3:
            n = len(tensor.shape) - 2
            states[name] = Field(
                size=(1,) * n, stride=(1,) * n, padding=(0,) * n, input_size=tuple(tensor.shape[2:])
            )
    return states, warnings


def _input_names(G, vertex: int, node: NodeView) -> list[str]:
    """Tensors the node reads: its inputs plus names its subgraphs read from the outer scope."""
    names = [t.name for t in node.inputs if t is not None]
    for u in G.predecessors(vertex):
        names.extend(t for t in G.edges[u, vertex]["tensors"] if t not in names)
    return names


def _propagate(node: NodeView, field: Field) -> Field:
    if field.is_global:
        return field
    if field.folded:
        if node.op_type in ("Gemm", "MatMul") or family_of(node.domain, node.op_type) in _GLOBAL_ON_FOLDED_FAMILIES:
            return make_global(field)
        if node.op_type in _FOLDED_KEEP:
            return field
        raise UnsupportedOp("input has its spatial axes folded into features")
    rules = {"": FIELD_RULES, MS_DOMAIN: MICROSOFT_FIELD_RULES}.get(default_domain(node.domain), {})
    rule = rules.get(node.op_type)
    if rule is None:
        raise UnsupportedOp("no receptive-field rule")
    try:
        return rule(node, field)
    except MALFORMED_ERRORS as e:
        raise MalformedNode(f"{type(e).__name__}: {e}") from None


def compute_receptive_fields(G) -> tuple[dict[int, ReceptiveFieldInfo | None], list[str]]:
    """Receptive field of every vertex's first output (None where it has no spatial meaning), and warnings."""
    states, warnings = _initial_states(G)
    warned_ops: set[tuple[str, str]] = set()
    fields: dict[int, ReceptiveFieldInfo | None] = {}
    for vertex in G.graph["order"]:
        node: NodeView = G.nodes[vertex]["view"]
        carried = [states[name] for name in _input_names(G, vertex, node) if name in states]
        fields[vertex] = None
        if not carried or node.op_type in _SHAPE_ONLY:
            continue
        out: State = STOPPED
        if not any(state is STOPPED for state in carried):
            try:
                field, misaligned = merge_fields(carried) if len(carried) > 1 else (carried[0], None)
                if misaligned:
                    warnings.append(f"misaligned merge at node {node.name!r} ({node.op_type}): {misaligned}")
                out = _propagate(node, field)
            except UnsupportedOp as e:
                key = (node.domain, node.op_type)
                if key not in warned_ops:
                    warned_ops.add(key)
                    warnings.append(
                        f"receptive field stops at unsupported op {node.op_type} (node {node.name!r}: {e})"
                    )
            except MalformedNode as e:
                warnings.append(f"malformed node {node.name!r} ({node.op_type}): its attributes do not fit its input "
                                f"({e}); the receptive field stops there")
        for tensor in node.outputs:
            if tensor is not None:
                states[tensor.name] = out
        if isinstance(out, Field) and not out.folded:
            fields[vertex] = out.info()
    return fields, warnings
