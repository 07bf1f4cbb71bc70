"""Model files for commands that rewrite a model (optimize, annotate, the service's optimize): read one
with its weights, check an output path cannot clobber an input's file, write atomically.

Reading needs the weights (the analyzer never does): external data is read through onnx, which refuses
locations outside the model's folder, and inlined, so a rewrite never writes back into an input's files.
Writing (and the verification of a rewrite, which serializes the model for onnxruntime) keeps the weights
inline below :data:`EXTERNAL_DATA_BYTES` and moves them to an external-data file above it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError, OptionError

EXTERNAL_DATA_BYTES = 1_800_000_000  # below protobuf's 2 GiB message limit, with room for the graph


def initializer_bytes(model: Any) -> int:
    """Bytes of the constant weights of an ``onnx_ir.Model``."""
    return sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None)


def needs_external_data(model: Any) -> bool:
    """Whether ``model`` (an ``onnx_ir.Model``) is too big for one protobuf message."""
    return initializer_bytes(model) >= EXTERNAL_DATA_BYTES


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(source: Path, target: Path) -> None:
    if not source.is_file():
        raise AnalyzerError(f"{source} does not exist or is not a file")
    data = target.with_name(target.name + ".data")
    if target.resolve() == source.resolve() or same_file(source, target) or same_file(source, data):
        raise OptionError("output", f"{target}: refusing to overwrite the input model {source}; choose another file")


def load(path: Path, *, normalise: bool = True) -> tuple[Any, list[Path]]:
    """The input as an onnx-ir model (external data read, checked by onnx, and inlined) and the input's files.

    ``normalise``: apply :func:`normalise_for_rewrite` (what a rewrite needs; ``annotate`` copies the model as is).
    """
    import onnx
    import onnx_ir as ir

    try:
        proto = onnx.load(str(path), load_external_data=False)
        data_files = sorted({(path.parent / entry.value) for tensor in proto.graph.initializer
                             for entry in tensor.external_data if entry.key == "location"})
        onnx.load_external_data_for_model(proto, str(path.parent))
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AnalyzerError(f"cannot read {path.name} as an ONNX model: {first}") from e
    model = ir.serde.deserialize_model(proto)
    if normalise:
        normalise_for_rewrite(model)
    return model, [path, *data_files]


# The IR version from which an initializer need not be listed among the graph inputs.
IR_INITIALIZERS_NOT_INPUTS = 4


def normalise_for_rewrite(model: Any) -> list[str]:
    """Make the weights of real exports rewritable, in place on an ``onnx_ir.Model``; returns what changed.

    The analyzer counts these patterns as weights (:func:`analyzer.loader.normalise_inputs`, the graph's
    Constant handling); a rewrite needs them as plain initializers:

    * initializers also listed as graph inputs (IR < 4 exports, paddle2onnx) leave the inputs (onnx-ir's
      ``RemoveInitializersFromInputsPass``, as onnxruntime's ``remove_initializer_from_input`` tool does);
      the IR version becomes at least 4, the first that allows initializers outside the inputs;
    * a Constant node holding a weight (a tensor of rank >= 1 that is not int64, the analyzer's weight
      test) becomes an initializer of the same name; shape constants stay nodes;
    * a ConstantOfShape of a constant shape that makes such a weight (onnx's "light" model-zoo files fill
      every weight so) becomes an initializer holding the filled tensor.
    """
    import onnx_ir.passes.common as common_passes

    notes = []
    inputs_before = len(model.graph.inputs)
    if common_passes.RemoveInitializersFromInputsPass()(model).modified:
        notes.append(f"{inputs_before - len(model.graph.inputs)} initializer(s) dropped from the graph inputs")
        if model.ir_version < IR_INITIALIZERS_NOT_INPUTS:
            notes.append(f"IR version {model.ir_version} raised to {IR_INITIALIZERS_NOT_INPUTS}")
            model.ir_version = IR_INITIALIZERS_NOT_INPUTS
    lifted = _lift_weight_constants(model)
    if lifted:
        notes.append(f"{lifted} Constant weight(s) made initializers")
    filled = _fill_constant_of_shape(model)
    if filled:
        notes.append(f"{filled} ConstantOfShape weight(s) made initializers")
    return notes


def _lift_weight_constants(model: Any) -> int:
    """Constant nodes (default domain, one ``value`` tensor, rank >= 1, not int64, not a graph output) of the
    main graph replaced by initializers of the same name and value; returns how many."""
    import onnx_ir as ir

    lifted = 0
    for node in list(model.graph):
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or list(node.attributes) != ["value"]:
            continue
        out = node.outputs[0]
        tensor = node.attributes["value"].as_tensor()
        if out.is_graph_output() or len(tensor.shape) == 0 or tensor.dtype in (ir.DataType.INT64, ir.DataType.STRING):
            continue
        _replace_with_initializer(model, node, tensor)
        lifted += 1
    return lifted


def _replace_with_initializer(model: Any, node: Any, tensor: Any) -> None:
    """``node`` (one output) removed and its output replaced by an initializer of the same name holding ``tensor``."""
    import onnx_ir as ir

    out = node.outputs[0]
    initializer = ir.Value(name=out.name, shape=tensor.shape, type=ir.TensorType(tensor.dtype), const_value=tensor)
    out.replace_all_uses_with(initializer)
    model.graph.remove(node, safe=True)
    model.graph.register_initializer(initializer)


def _fill_constant_of_shape(model: Any) -> int:
    """ConstantOfShape nodes of the main graph whose shape is a constant and whose result is a weight (rank
    >= 1, not int64, not a graph output) replaced by initializers holding the filled tensor; returns how many."""
    import numpy as np
    import onnx_ir as ir

    filled = 0
    for node in list(model.graph):
        if node.op_type != "ConstantOfShape" or node.domain not in ("", "ai.onnx") or not node.inputs:
            continue
        shape_value, out = node.inputs[0], node.outputs[0]
        producer = shape_value.producer() if shape_value is not None else None
        if shape_value is not None and shape_value.const_value is not None:
            shape = shape_value.const_value.numpy()
        elif producer is not None and producer.op_type == "Constant" and "value" in producer.attributes:
            shape = producer.attributes["value"].as_tensor().numpy()
        else:
            continue
        attr = node.attributes.get("value")
        fill = attr.as_tensor().numpy().reshape(-1)[:1] if attr is not None else np.zeros(1, np.float32)
        if out.is_graph_output() or shape.ndim != 1 or len(shape) == 0 or fill.dtype in (np.int64, np.object_):
            continue
        _replace_with_initializer(model, node, ir.tensor(np.full([int(d) for d in shape], fill[0], dtype=fill.dtype),
                                                          name=out.name))
        filled += 1
    return filled


def input_files(model: str | os.PathLike) -> list[Path]:
    """The files an input model is made of: itself, the external-data files its tensors name, and the
    ``<model>.data`` beside it (where our own writers would put weights). Read with the wire walk (no onnx);
    a file that cannot be read yields just itself (the command will say what is wrong with it)."""
    import mmap

    from analyzer.wire import WireError, skip_payloads

    path = Path(model)
    files = [path, path.with_name(path.name + ".data")]
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            locations = set(skip_payloads(mapped, 4096).external.values())
    except (OSError, ValueError, WireError, RecursionError):
        return files
    return files + [path.parent / location for location in sorted(locations)]


def refuse_overwrite(target: str | os.PathLike, models: list[str | os.PathLike], option: str = "output") -> None:
    """Every command that writes calls this first: ``target`` (given as ``option``) may be none of the input
    models' files."""
    check_output(Path(target), [f for m in models for f in input_files(m)], option)


def check_output(target: Path, input_files: list[Path], option: str = "output") -> None:
    """Neither the output nor its external-data file may be one of the input's files."""
    outputs = [target, target.with_name(target.name + ".data")]
    for out in outputs:
        for used in input_files:
            if out.resolve() == used.resolve() or same_file(out, used):
                raise OptionError(option, f"{target}: refusing to overwrite {used}, a file of the input model; "
                                            "choose another file")


def save(model: Any, target: Path, input_files: list[Path] = ()) -> None:
    """Write atomically; above protobuf's limit the weights go to ``<output>.data`` beside it (our choice of
    location: an input's external-data location is never reused). ``input_files``: the files of the model
    it was read from, which neither file may overwrite (:func:`check_output`)."""
    import tempfile

    check_output(target, list(input_files))
    import onnx_ir as ir

    from analyzer.atomic import atomic_path, write_bytes_atomic

    if not needs_external_data(model):
        write_bytes_atomic(target, ir.serde.serialize_model(model).SerializeToString())
        return
    data_name = target.name + ".data"
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent or ".") as tmp:
        staged = Path(tmp) / target.name
        ir.save(model, staged, external_data=data_name)
        os.replace(staged.with_name(data_name), target.with_name(data_name))
        with atomic_path(target) as out:
            os.replace(staged, out)
