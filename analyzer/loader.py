"""Read an ONNX model for analysis without reading its weights.

Parameter counts and bytes come from initializer dims and dtypes, never from the data, so the file is
mapped and walked at the protobuf wire level (:mod:`analyzer.wire`): payloads of tensors over
``payload_threshold`` bytes are skipped, the rest (graph, attributes, small constants such as the
int64 shapes Reshape needs) goes to ``onnx.ModelProto.FromString``. External data is never read: its
locations are recorded and checked (absent, absolute, escaping the model's directory) without
opening anything. The input is opened read-only and never written. The graph inputs of real exports are
normalised once here (:func:`normalise_inputs`): initializers listed as inputs become constants only, and
input dims written as -1, 0, "?" or left empty become named symbolic dims.
"""

from __future__ import annotations

import math
import mmap
import os
import pathlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import onnx
import onnx.defs
from google.protobuf.message import DecodeError

from analyzer.errors import ModelLoadError
from analyzer.wire import WireError, skip_payloads

DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class LoadedModel:
    proto: onnx.ModelProto  # payloads of large tensors stripped (dims/data_type kept)
    path: pathlib.Path | None
    file_size: int  # bytes on disk (0 for bytes/ModelProto input)
    stripped: frozenset[str]  # keys of tensors whose payload was skipped (see analyzer.wire)
    external: dict[str, str]  # tensor key -> external data location (as written in the model)
    warnings: list[str] = field(default_factory=list)


def load_model(source, *, payload_threshold: int = 4096) -> LoadedModel:
    """Load ``source`` (a path, the serialized bytes, or an ``onnx.ModelProto``, used as is unless its inputs
    need :func:`normalise_inputs`: then a copy is).

    A tensor whose payload fields take more than ``payload_threshold`` encoded bytes keeps only its
    metadata; its key (name, or for an unnamed attribute tensor the node's first output) goes into
    ``stripped``. Raises :class:`ModelLoadError` with one line naming the input on anything unreadable.
    """
    if payload_threshold < 0:
        raise ValueError(f"payload_threshold must be >= 0, got {payload_threshold}")
    if isinstance(source, onnx.ModelProto):
        label = "<ModelProto>"
        proto, stripped, external = source, frozenset(), dict(_external_locations(source))
        path, file_size = None, 0
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label, path, file_size = "<bytes>", None, 0
        data = bytes(source)
        if not data:
            raise ModelLoadError(f"cannot load {label}: no data (0 bytes)")
        proto, stripped, external = _parse(data, payload_threshold, label)
    elif isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        label = str(path)
        file_size = _check_file(path, label)
        proto, stripped, external = _parse_file(path, payload_threshold, label)
    else:
        raise TypeError(f"load_model expects a path, bytes or onnx.ModelProto, not {type(source).__name__}")

    _check_model(proto, label)
    if proto is source and any(_export_quirks(proto.graph)):
        proto = onnx.ModelProto()  # the caller's ModelProto stays untouched: normalise a copy
        proto.CopyFrom(source)
    warnings = _opset_warnings(proto, label)
    warnings += _external_warnings(external, path.parent if path is not None else None, label)
    warnings += normalise_inputs(proto.graph, proto.ir_version)
    return LoadedModel(proto, path, file_size, frozenset(stripped), external, warnings)


def _check_file(path: pathlib.Path, label: str) -> int:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ModelLoadError(f"cannot load {label}: no such file") from None
    except OSError as e:
        raise ModelLoadError(f"cannot load {label}: {e.strerror or e}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelLoadError(f"cannot load {label}: is a directory, not an ONNX file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(f"cannot load {label}: not a regular file")
    if info.st_size == 0:
        raise ModelLoadError(f"cannot load {label}: file is empty (0 bytes)")
    return info.st_size


def _parse_file(path: pathlib.Path, payload_threshold: int, label: str):
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return _parse(mapped, payload_threshold, label)
    except OSError as e:
        raise ModelLoadError(f"cannot load {label}: {e.strerror or e}") from None


def _parse(buf, payload_threshold: int, label: str):
    """Skip payloads in ``buf`` and parse the rest; every decoding failure becomes a ModelLoadError."""
    try:
        walked = skip_payloads(buf, payload_threshold)
        proto = onnx.ModelProto.FromString(walked.data)
    except WireError as e:
        raise ModelLoadError(f"cannot load {label}: not an ONNX model ({e})") from None
    except DecodeError as e:
        raise ModelLoadError(f"cannot load {label}: not an ONNX model (protobuf decode failed: {e})") from None
    except RecursionError:
        raise ModelLoadError(f"cannot load {label}: not an ONNX model (graphs nested too deeply)") from None
    return proto, walked.stripped, walked.external


def _check_model(proto: onnx.ModelProto, label: str) -> None:
    if not proto.HasField("graph"):
        raise ModelLoadError(f"cannot load {label}: not an ONNX model (the protobuf has no graph)")
    if proto.ir_version > onnx.IR_VERSION:
        raise ModelLoadError(
            f"cannot load {label}: IR version {proto.ir_version} is newer than this onnx "
            f"{onnx.__version__} supports (IR {onnx.IR_VERSION}); upgrade onnx"
        )


# dim_param values exporters write for "unknown" (paddle2onnx, some TF converters); never a real dim name
PLACEHOLDER_DIM_PARAMS = frozenset({"?", "-1", "0", "None", "none", "null"})


def _is_unknown_dim(d: onnx.TensorShapeProto.Dimension) -> bool:
    """A dim written as -1 or 0, left empty, or named by a placeholder such as "?": unknown, not a size."""
    if d.HasField("dim_value"):
        return d.dim_value <= 0
    return not d.dim_param.strip() or d.dim_param.strip() in PLACEHOLDER_DIM_PARAMS


def _export_quirks(graph: onnx.GraphProto) -> tuple[list[str], list[tuple[onnx.ValueInfoProto, int]], list[Any]]:
    """(graph inputs that are initializers, (input, axis) of each unknown dim of the other inputs, the
    negative dims declared on outputs and value_info)."""
    initializers = {t.name for t in graph.initializer}
    constant_inputs = [v.name for v in graph.input if v.name in initializers]
    unknown_dims = [
        (value, axis)
        for value in graph.input
        if value.name not in initializers and value.type.tensor_type.HasField("shape")
        for axis, d in enumerate(value.type.tensor_type.shape.dim)
        if _is_unknown_dim(d)
    ]
    negative = [d for value in list(graph.output) + list(graph.value_info)
                for d in value.type.tensor_type.shape.dim if d.HasField("dim_value") and d.dim_value < 0]
    return constant_inputs, unknown_dims, negative


def normalise_inputs(graph: onnx.GraphProto, ir_version: int = 0) -> list[str]:
    """Rewrite the graph inputs of real exports the way the analysis reads them; returns one warning per change.

    * An initializer also listed as a graph input (required below IR 4; paddle2onnx, old Caffe2 and TF
      exports) is a constant: it leaves ``graph.input``, as onnxruntime's ``remove_initializer_from_input``
      tool does, and counts as a weight.
    * An input dim written as -1 or 0, left empty, or named "?" is unknown, never a size: it becomes the
      symbolic dim ``<input>.dim<axis>``, which the binding options name and the report lists when assumed.
    """
    constant_inputs, unknown_dims, negative = _export_quirks(graph)
    for d in negative:
        d.ClearField("dim_value")  # a declared -1 is "unknown": inference, not the declaration, decides it
    # named before the inputs are rewritten below: the kept inputs are copied into the new list
    named = []
    for value, axis in unknown_dims:
        name = f"{value.name}.dim{axis}"
        value.type.tensor_type.shape.dim[axis].dim_param = name  # replaces a dim_value: the two are a oneof
        named.append(name)
    warnings = []
    if constant_inputs:
        kept = [v for v in graph.input if v.name not in set(constant_inputs)]
        del graph.input[:]
        graph.input.extend(kept)
        style = f" (IR {ir_version} style)" if 0 < ir_version < 4 else ""
        warnings.append(f"{len(constant_inputs)} initializer(s) are also listed as graph inputs{style}: counted as "
                        "constant weights and dropped from the inputs, as onnxruntime's "
                        "remove_initializer_from_input tool does")
    if named:
        warnings.append(f"input dims written as -1, 0, '?' or left empty are symbolic: {', '.join(named)} "
                        "(bind them with --dim NAME=N, --input-shape or --batch)")
    return warnings


# More elements than any runtime could hold (256 Ti): a tensor that declares so is refused at once.
MAX_TENSOR_ELEMENTS = 1 << 48
DENSE_VALUE_ELEMENTS = 64  # sparse weights up to this size get their values (shape inputs, small constants)


def sparse_as_dense(graph: onnx.GraphProto, label: str) -> list[str]:
    """Sparse initializers become dense initializers of the same name, as onnxruntime densifies them: a
    weight is counted at its dense size. Small ones keep their values; larger ones only their dims (the
    analysis never reads a weight's values), so a huge declared shape costs no memory or time; one beyond
    :data:`MAX_TENSOR_ELEMENTS`, or with a negative dim, is refused."""
    import numpy as np
    from onnx import numpy_helper

    names = []
    for sparse in graph.sparse_initializer:
        name, dims = sparse.values.name, list(sparse.dims)
        if any(d < 0 for d in dims):
            raise ModelLoadError(f"cannot load {label}: sparse initializer {name!r} has a negative dim {dims}")
        numel = math.prod(dims)
        if numel > MAX_TENSOR_ELEMENTS:
            raise ModelLoadError(f"cannot load {label}: sparse initializer {name!r} declares {numel:,} elements "
                                 f"(dims {dims}), more than any runtime can hold")
        dense = onnx.TensorProto(name=name, data_type=sparse.values.data_type, dims=dims)
        if numel <= DENSE_VALUE_ELEMENTS:
            try:
                values, indices = numpy_helper.to_array(sparse.values), numpy_helper.to_array(sparse.indices)
                full = np.zeros(numel, values.dtype)
                flat = indices if indices.ndim == 1 else np.ravel_multi_index(tuple(indices.T), dims)
                full[flat] = values.reshape(-1)
                dense = numpy_helper.from_array(full.reshape(dims), name)
            except (ValueError, IndexError, TypeError) as e:
                raise ModelLoadError(f"cannot load {label}: sparse initializer {name!r} is malformed ({e})") from None
        graph.initializer.append(dense)
        names.append(name)
    if not names:
        return []
    del graph.sparse_initializer[:]
    return [f"{len(names)} sparse initializer(s) counted as dense weights, as onnxruntime densifies them: "
            + ", ".join(names[:5])]


def _opset_warnings(proto: onnx.ModelProto, label: str) -> list[str]:
    known = onnx.defs.onnx_opset_version()
    return [
        f"{label}: opset {opset.version} is newer than this onnx knows ({known}); "
        "ops may be misread"
        for opset in proto.opset_import
        if opset.domain in DEFAULT_DOMAINS and opset.version > known
    ]


def _external_warnings(external: dict[str, str], base_dir: pathlib.Path | None, label: str) -> list[str]:
    """One warning per distinct unusable location; nothing is opened (only ``lstat``/``realpath``)."""
    tensors_by_location: dict[str, list[str]] = {}
    for tensor, location in external.items():
        tensors_by_location.setdefault(location, []).append(tensor)
    warnings = []
    for location, tensors in tensors_by_location.items():
        problem = _location_problem(location, base_dir)
        if problem:
            count = f"{len(tensors)} tensor{'s' if len(tensors) > 1 else ''}"
            warnings.append(f"{label}: external data {location!r} ({count}, e.g. {tensors[0]!r}) {problem}")
    return warnings


def _location_problem(location: str, base_dir: pathlib.Path | None) -> str | None:
    if not location:
        return "has no location"
    relative = pathlib.PurePath(location)
    if relative.is_absolute() or relative.drive or location.startswith(("/", "\\")):
        return "is an absolute path; not opened"
    if ".." in relative.parts or ".." in pathlib.PureWindowsPath(location).parts:
        return "points outside the model's directory; not opened"
    if base_dir is None:
        return None
    target = base_dir / relative
    real_base = os.path.realpath(base_dir)
    if os.path.commonpath([real_base, os.path.realpath(target)]) != real_base:
        return "points outside the model's directory (symlink); not opened"
    if not os.path.lexists(target):
        return "is missing; weights are not needed for analysis"
    return None


def _external_locations(model: onnx.ModelProto) -> Iterator[tuple[str, str]]:
    """(tensor key, location) of each tensor with external data, in a ModelProto already in memory."""
    for key, tensor in _iter_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            yield key, entries.get("location", "")


def _iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, onnx.TensorProto]]:
    graphs = [model.graph] + [g for info in model.training_info for g in (info.initialization, info.algorithm)]
    for graph in graphs:
        yield from _graph_tensors(graph)
    for function in model.functions:
        for attribute in function.attribute_proto:
            yield from _attribute_tensors(attribute, "")
        yield from _nodes_tensors(function.node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, onnx.TensorProto]]:
    for tensor in graph.initializer:
        yield tensor.name, tensor
    for sparse in graph.sparse_initializer:
        yield from _sparse_tensors(sparse, "")
    yield from _nodes_tensors(graph.node)


def _nodes_tensors(nodes) -> Iterator[tuple[str, onnx.TensorProto]]:
    for node in nodes:
        owner = node.output[0] if node.output else ""
        for attribute in node.attribute:
            yield from _attribute_tensors(attribute, owner)


def _attribute_tensors(attribute: onnx.AttributeProto, owner: str) -> Iterator[tuple[str, onnx.TensorProto]]:
    if attribute.HasField("t"):
        yield attribute.t.name or owner, attribute.t
    for tensor in attribute.tensors:
        yield tensor.name or owner, tensor
    for sparse in ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []):
        yield from _sparse_tensors(sparse, owner)
    for sparse in attribute.sparse_tensors:
        yield from _sparse_tensors(sparse, owner)
    for graph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
        yield from _graph_tensors(graph)


def _sparse_tensors(sparse: onnx.SparseTensorProto, owner: str) -> Iterator[tuple[str, onnx.TensorProto]]:
    values_key = sparse.values.name or owner
    yield values_key, sparse.values
    yield sparse.indices.name or f"{values_key}/indices", sparse.indices
