"""Input binding and shape inference.

``dims={"batch": 8}`` binds a symbolic dim wherever it appears, ``input_shapes={NAME: [1, 3, 224, 224]}``
overrides one input, and ``batch=N`` binds the leading dim of inputs whose batch is symbolic (the
command line's ``--dim batch=8``, ``--input-shape NAME:1x3x224x224`` and ``--batch N``, parsed by
:func:`parse_dim_options` and :func:`parse_input_shape_options`). Then onnx shape inference (with
data propagation) fills in every value's shape. Symbolic dims that stay unbound are kept symbolic
in the graph and evaluated as 1 by the counting rules; the report lists them under ``assumed_dims``.
What inference leaves open once the inputs are concrete (shapes computed at run time by shape
arithmetic it does not follow), :mod:`analyzer.shape_engine` finishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx

from analyzer.errors import AnalyzerError, ModelLoadError, OptionError
from analyzer.native import contained


@dataclass
class Binding:
    dims: dict[str, int] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    batch: int | None = None
    # input -> its value (a number or a list): the shape engine folds what depends on it (an If on it)
    input_values: dict[str, Any] = field(default_factory=dict)


def parse_dim_options(items: list[str] | None) -> dict[str, int]:
    """``["batch=8", "seq=128"]`` -> ``{"batch": 8, "seq": 128}``."""
    dims: dict[str, int] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise OptionError("dims", f"{item!r}: expected NAME=POSITIVE_INT, e.g. batch=8")
        dims[name.strip()] = int(value)
    return dims


def parse_shape(text: str) -> list[int]:
    """``"1x3x224x224"`` (or ``1,3,224,224``) -> ``[1, 3, 224, 224]``."""
    parts = text.replace(",", "x").lower().split("x")
    if not text or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise AnalyzerError(f"bad shape {text!r}: expected positive integers joined by 'x', e.g. 1x3x224x224")
    return [int(p) for p in parts]


def parse_input_shape_options(items: list[str] | None) -> dict[str, list[int]]:
    """``["input:1x3x224x224"]`` -> ``{"input": [1, 3, 224, 224]}``; a bare shape applies to the only input."""
    shapes: dict[str, list[int]] = {}
    for item in items or []:
        name, sep, shape = item.rpartition(":")
        shapes[name if sep else ""] = parse_shape(shape if sep else item)
    return shapes


def _graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    initializers = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in initializers]


def _set_dims(value: onnx.ValueInfoProto, shape: list[int]) -> None:
    tensor_shape = value.type.tensor_type.shape
    del tensor_shape.dim[:]
    for d in shape:
        tensor_shape.dim.add().dim_value = d


def apply_binding(model: onnx.ModelProto, binding: Binding) -> list[str]:
    """Bind dims and input shapes in place (on the analyzer's private copy); returns warnings."""
    warnings: list[str] = []
    graph = model.graph
    inputs = _graph_inputs(graph)
    by_name = {v.name: v for v in inputs}
    for name, shape in binding.input_shapes.items():
        if name == "":
            if len(inputs) != 1:
                raise OptionError(
                    "input_shapes",
                    f"without a name needs a model with one input; this one has {len(inputs)}: "
                    f"{', '.join(by_name)} (use NAME:SHAPE)",
                )
            name = inputs[0].name
        if name not in by_name:
            if any(t.name == name for t in graph.initializer):
                raise OptionError("input_shapes", f"names {name!r}, an initializer: a constant weight (exports "
                                  "below IR 4 list them among the graph inputs), not an input "
                                  f"(inputs: {', '.join(by_name)})")
            raise OptionError("input_shapes", f"names {name!r}, which is not an input (inputs: {', '.join(by_name)})")
        value = by_name[name]
        old_rank = len(value.type.tensor_type.shape.dim)
        if value.type.tensor_type.HasField("shape") and old_rank != len(shape):
            raise OptionError("input_shapes", f"{name}: rank {len(shape)} given, the model's input has rank {old_rank}")
        _set_dims(value, shape)

    if binding.dims:
        known = {d.dim_param for v in inputs for d in v.type.tensor_type.shape.dim if d.dim_param}
        unknown = set(binding.dims) - known
        if unknown:
            listing = ", ".join(sorted(known)) or "none"
            raise OptionError("dims", f"{', '.join(sorted(unknown))}: no such symbolic dim (the inputs have: {listing})")
        for value in list(graph.input) + list(graph.output) + list(graph.value_info):
            for d in value.type.tensor_type.shape.dim:
                if d.dim_param in binding.dims:
                    d.dim_value = binding.dims[d.dim_param]

    if binding.batch is not None:
        if binding.batch < 1:
            raise OptionError("batch", f"must be positive, got {binding.batch}")
        for value in inputs:
            dims = value.type.tensor_type.shape.dim
            if not dims:
                continue
            if dims[0].HasField("dim_value"):
                if dims[0].dim_value != binding.batch:
                    warnings.append(
                        f"input {value.name!r} has a fixed batch of {dims[0].dim_value}; "
                        f"--batch {binding.batch} scales only the training-memory estimate"
                    )
                continue
            symbol = dims[0].dim_param
            dims[0].dim_value = binding.batch
            if symbol:  # the same symbol elsewhere (outputs) is the same batch
                for other in list(graph.output) + list(graph.value_info):
                    for d in other.type.tensor_type.shape.dim:
                        if d.dim_param == symbol:
                            d.dim_value = binding.batch
    return warnings


def _infer(model: onnx.ModelProto, options: dict[str, bool]) -> bytes:
    return onnx.shape_inference.infer_shapes(model, strict_mode=False, **options).SerializeToString()


def infer_shapes(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Run onnx shape inference with data propagation; never raise on a model that cannot be fully inferred."""
    warnings: list[str] = []
    # Declared value_info can be stale or contradict the bound inputs; inference re-derives it.
    work = onnx.ModelProto()
    work.CopyFrom(model)
    del work.graph.value_info[:]
    # Declared output shapes would win over what the bound inputs imply; keep them only as a fall-back.
    declared = {}
    for value in work.graph.output:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            declared[value.name] = onnx.TypeProto()
            declared[value.name].CopyFrom(value.type)
            value.type.tensor_type.ClearField("shape")
    for attempt in ({"data_prop": True}, {"data_prop": False}):
        try:
            # in a forked child: a model that crashes onnx's C++ is rejected, the process goes on
            inferred = onnx.ModelProto.FromString(contained("onnx shape inference", lambda: _infer(work, attempt)))
        except ModelLoadError:
            raise
        except Exception as e:  # onnx raises InferenceError, ValidationError, RuntimeError...
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            warnings.append(f"shape inference failed ({'with' if attempt['data_prop'] else 'without'} data propagation): {message}")
            continue
        for value in inferred.graph.output:
            if value.name in declared and not value.type.tensor_type.HasField("shape"):
                value.type.CopyFrom(declared[value.name])
        return inferred, warnings
    warnings.append("continuing with the shapes declared in the model only")
    return model, warnings


def bind_remaining_input_dims(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    """A copy of ``model`` whose graph inputs have only concrete dims: every symbolic or unknown dim
    left after the user's binding is evaluated as 1.

    Shape inference on this copy lets data propagation compute concrete shapes through the Shape →
    Gather → Concat → Reshape chains that dynamic-batch exports carry; the counts come from it, while
    the symbolic run provides the shapes shown to the user. Returns (copy, {dim: value assumed}).
    """
    assumed: dict[str, int] = {}
    concrete = onnx.ModelProto()
    concrete.CopyFrom(model)
    for value in _graph_inputs(concrete.graph):
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            assumed[d.dim_param or f"{value.name}[{axis}]"] = 1
            d.dim_value = 1
    return concrete, assumed


def has_symbolic_inputs(model: onnx.ModelProto) -> bool:
    return any(
        not d.HasField("dim_value")
        for value in _graph_inputs(model.graph)
        for d in value.type.tensor_type.shape.dim
    )


def parse_input_value_options(items: list[str] | None) -> dict[str, Any]:
    """``["sr=16000", "scales=1,1,2,2"]`` -> ``{"sr": 16000, "scales": [1, 1, 2, 2]}``: one number, or
    numbers joined by ',' (a 1-D input)."""
    values: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        numbers = [_number(part) for part in text.split(",")]
        if not sep or not name.strip() or None in numbers:
            raise OptionError("input_values", f"{item!r}: expected NAME=NUMBER or NAME=N1,N2,..., e.g. sr=16000")
        values[name.strip()] = numbers if "," in text else numbers[0]
    return values


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            continue
    return None


def bind_input_values(model: onnx.ModelProto, values: dict[str, Any]) -> dict[str, Any]:
    """Each bound input's value (a number or a list) as a numpy array of the input's element type and shape,
    for the shape engine to fold what depends on it (an ``If`` on a sample rate). A 1-D input whose dim is
    symbolic takes the list's length (set in place, on the analyzer's copy).

    Raises :class:`OptionError` for a name that is not a graph input, a value its element type cannot hold
    exactly, or an element count its shape does not hold.
    """
    inputs = {v.name: v for v in _graph_inputs(model.graph)}
    arrays = {}
    for name, value in values.items():
        if name not in inputs:
            raise OptionError("input_values", f"names {name!r}, which is not an input (inputs: {', '.join(inputs)})")
        arrays[name] = _input_array(inputs[name], value)
    return arrays


def _input_array(value_info: onnx.ValueInfoProto, value: Any) -> Any:
    """``value`` cast to the input's element type and reshaped to its shape (see :func:`bind_input_values`)."""
    import math

    import numpy as np

    name, tensor_type = value_info.name, value_info.type.tensor_type
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        given = np.asarray(value)
        array = given.astype(dtype)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise OptionError("input_values", f"{name}: {value!r} does not fit its element type "
                          f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()}") from e
    if given.dtype.kind not in "biuf" or (array.dtype.kind in "biu" and not np.array_equal(array, given)):
        raise OptionError("input_values", f"{name}: {value!r} does not fit its element type {array.dtype}")
    if not tensor_type.HasField("shape"):
        return array  # rank unknown: the value's own
    dims = tensor_type.shape.dim
    if len(dims) == 1 and not dims[0].HasField("dim_value"):
        dims[0].dim_value = array.size
        return array.reshape(-1)
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if None in shape:
        raise OptionError("input_values", f"{name}: its shape {shape} has unbound dims: bind them first "
                          "(input_shapes or dims)")
    if array.size != math.prod(shape):
        raise OptionError("input_values", f"{name}: {array.size} value(s) given, its shape {shape} holds "
                          f"{math.prod(shape)}")
    return array.reshape(shape)
