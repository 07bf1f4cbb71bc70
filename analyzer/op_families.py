"""The ops the analyzer understands, grouped into families by what they do to their input.

One table, read by the counting rules (:mod:`analyzer.costs`) and the receptive-field rules
(:mod:`analyzer.receptive_field`): each derives its rule for an op from the op's family, so an op
added here gets both or the module that lacks a rule for its family fails at import.

Families of the default domain (ai.onnx) are keyed by op type; the com.microsoft contrib ops the
analyzer counts are in :data:`MICROSOFT_OP_FAMILIES`.
"""

from __future__ import annotations

MS_DOMAIN = "com.microsoft"

OP_FAMILIES: dict[str, tuple[str, ...]] = {
    # --- element-wise: each output element depends on the input elements at its own position only
    "activation": (
        "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "Sigmoid", "HardSigmoid",
        "Tanh", "Clip", "HardSwish", "Softplus", "Softsign", "Gelu", "Mish", "Shrink", "Swish",
    ),
    "unary": (
        "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin",
        "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf",
        "Not", "BitwiseNot",
    ),
    # arithmetic, comparison, logic and selection over numpy-broadcast inputs
    "broadcast": (
        "Pow", "Add", "Sub", "Mul", "Div", "Mod", "Where", "Equal", "Less", "LessOrEqual", "Greater",
        "GreaterOrEqual", "And", "Or", "Xor", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
    ),
    "variadic": ("Sum", "Max", "Min", "Mean"),  # any number of broadcast inputs
    "quantize": ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"),
    "passthrough": ("Identity", "Dropout", "Cast", "CastLike"),  # values copied or converted, no arithmetic
    # --- normalisations
    "channel_norm": ("BatchNormalization", "LRN"),  # per position: fixed statistics, or a window over channels
    "stats_norm": ("LayerNormalization", "InstanceNormalization", "GroupNormalization"),  # statistics over the map
    "softmax": ("Softmax", "LogSoftmax", "Hardmax"),  # normalise along one axis
    # --- reductions
    "reduce": (
        "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceMean", "ReduceSumSquare", "ReduceL1",
        "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
    ),
    "arg_reduce": ("ArgMax", "ArgMin"),
    # --- windows
    "conv": ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger"),
    "fc": ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"),
    "window_pool": ("MaxPool", "AveragePool", "LpPool"),
    "global_pool": ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"),
    "resample": ("Resize", "Upsample"),
    # --- no arithmetic: data moved or reinterpreted, shapes read, constants made
    "layout": (
        "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Pad",
        "Gather", "GatherElements", "GatherND", "Expand", "Tile", "DepthToSpace", "SpaceToDepth",
    ),
    "shape_reader": ("Shape", "Size"),  # outputs depend on the input's shape, never on its values
    "constant": ("Constant", "ConstantOfShape", "Range"),
    # --- sequences: every output step depends on the whole (past) sequence
    "recurrent": ("LSTM", "GRU", "RNN"),  # gated recurrences over the sequence axis
    "attention": ("Attention",),  # scaled dot-product attention: each query reads every key
}

MICROSOFT_OP_FAMILIES: dict[str, tuple[str, ...]] = {
    "conv": ("FusedConv",),
    "fc": ("FusedGemm", "FusedMatMul", "QGemm", "MatMulIntegerToFloat"),
    # Attention: packed Q/K/V input projection + attention; MultiHeadAttention: Q/K/V already projected
    "attention": ("Attention", "MultiHeadAttention"),
    "recurrent": ("DynamicQuantizeLSTM",),  # an LSTM with int8 weights, quantizing X and h per step
}

ELEMENTWISE_FAMILIES = ("activation", "unary", "broadcast", "variadic", "quantize", "passthrough")

# (domain, op_type) -> family; domain "" is ai.onnx
FAMILY_OF: dict[tuple[str, str], str] = {
    **{("", op): family for family, ops in OP_FAMILIES.items() for op in ops},
    **{(MS_DOMAIN, op): family for family, ops in MICROSOFT_OP_FAMILIES.items() for op in ops},
}


def default_domain(domain: str) -> str:
    """The domain as the tables key it: "" for ai.onnx, whichever way the model spells it."""
    return "" if domain in ("", "ai.onnx") else domain


def family_of(domain: str, op_type: str) -> str | None:
    """The family of an op, None for an op the analyzer has no rule for."""
    return FAMILY_OF.get((default_domain(domain), op_type))
