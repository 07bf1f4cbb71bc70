"""analyzer.loader: the weight-skipping reader against onnx.load, and every bad input it must refuse.

Equivalence check: ``load_model(path).proto`` must equal ``onnx.load(path, load_external_data=False)``
once the payload fields of exactly the tensors in ``stripped`` are cleared in the onnx.load copy. The
tensor walk below is written independently of the loader's.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import os
import pathlib

import numpy as np
import onnx
import onnx.defs
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.errors import AnalyzerError, ModelLoadError
from analyzer.loader import LoadedModel, load_model

PAYLOAD_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "raw_data", "double_data", "uint64_data")
THRESHOLD = 4096  # load_model's default payload_threshold
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- reference walk over a ModelProto


def all_tensors(model: onnx.ModelProto):
    """(key, tensor) for every tensor; key = name, or the node's first output for an unnamed attribute tensor."""

    def in_graph(graph):
        for tensor in graph.initializer:
            yield tensor.name, tensor
        for sparse in graph.sparse_initializer:
            yield from in_sparse(sparse, "")
        yield from in_nodes(graph.node)

    def in_nodes(nodes):
        for node in nodes:
            for attribute in node.attribute:
                yield from in_attribute(attribute, node.output[0] if node.output else "")

    def in_attribute(attribute, owner):
        tensors = ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
        for tensor in tensors:
            yield tensor.name or owner, tensor
        sparse_list = ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(
            attribute.sparse_tensors
        )
        for sparse in sparse_list:
            yield from in_sparse(sparse, owner)
        for graph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
            yield from in_graph(graph)

    def in_sparse(sparse, owner):
        values_key = sparse.values.name or owner
        yield values_key, sparse.values
        yield sparse.indices.name or values_key + "/indices", sparse.indices

    yield from in_graph(model.graph)
    for function in model.functions:
        yield from in_nodes(function.node)


def assert_equivalent(loaded: LoadedModel, reference: onnx.ModelProto) -> None:
    """``loaded.proto`` == ``reference`` with the payloads of exactly ``loaded.stripped`` cleared."""
    expected = onnx.ModelProto()
    expected.CopyFrom(reference)
    seen = set()
    for key, tensor in all_tensors(expected):
        if key in loaded.stripped:
            seen.add(key)
            for name in PAYLOAD_FIELDS:
                tensor.ClearField(name)
    assert seen == set(loaded.stripped), "stripped names a tensor the model does not have"
    assert loaded.proto.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    loaded_tensors = dict(all_tensors(loaded.proto))
    for key, tensor in all_tensors(reference):
        kept = loaded_tensors[key]
        assert (list(kept.dims), kept.data_type, kept.name) == (list(tensor.dims), tensor.data_type, tensor.name)
        if key not in loaded.stripped:
            assert kept.SerializeToString() == tensor.SerializeToString(), f"small tensor {key} changed"


def file_digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- hand-built models


def array(shape, dtype=np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def make(nodes, initializers=(), *, functions=(), sparse=(), opset=17, ir_version=10) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        list(initializers), sparse_initializer=list(sparse),
    )  # fmt: skip
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("local", 1)] if functions else [])
    return helper.make_model(graph, ir_version=ir_version, opset_imports=opsets, functions=list(functions))


def conv_model() -> onnx.ModelProto:
    """Conv + Reshape + MatMul with initializers on both sides of the 4096-byte threshold."""
    initializers = [
        numpy_helper.from_array(array((64, 3, 3, 3)), "conv.w"),  # 64*3*3*3*4 = 6912 bytes: stripped
        numpy_helper.from_array(array((64,)), "conv.b"),  # 64*4 = 256 bytes: kept
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"),  # 2*8 = 16 bytes: kept
        numpy_helper.from_array(array((64 * 6 * 6, 10)), "fc.w"),  # 2304*10*4 = 92160 bytes: stripped
        numpy_helper.from_array(array((32, 64), np.float16), "half.exact"),  # 32*64*2 = 4096: kept (not over)
        numpy_helper.from_array(array((33, 64), np.float16), "half.over"),  # 33*64*2 = 4224: stripped
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "fc.w"], ["y"]),
    ]
    return make(nodes, initializers)


def constant_model() -> onnx.ModelProto:
    """Constant nodes: big unnamed value, big named value, small value; tensors in float_data/int64_data."""
    big_unnamed = numpy_helper.from_array(array((2000,)))  # 8000 bytes raw_data, no name: key is "k1"
    big_named = numpy_helper.from_array(array((1500,)), "k2.value")  # 6000 bytes: key "k2.value"
    small = numpy_helper.from_array(np.array([2, 3], dtype=np.int64))  # 16 bytes: kept
    # 1100 floats in float_data (packed): 1100*4 = 4400 bytes: stripped
    float_data = helper.make_tensor("floats", TensorProto.FLOAT, [1100], array((1100,)).tolist())
    # int64_data is varint-encoded: 1000 values of 100 take 1 byte each = 1000 bytes: kept;
    # 1000 values of 2**40 take ceil(41/7) = 6 bytes each = 6000 bytes: stripped
    ints_small = helper.make_tensor("ints_small", TensorProto.INT64, [1000], [100] * 1000)
    ints_big = helper.make_tensor("ints_big", TensorProto.INT64, [1000], [2**40] * 1000)
    nodes = [
        helper.make_node("Constant", [], [f"k{i}"], value=tensor)
        for i, tensor in enumerate([big_unnamed, big_named, small, float_data, ints_small, ints_big], start=1)
    ] + [helper.make_node("Identity", ["x"], ["y"])]
    return make(nodes)


def if_model() -> onnx.ModelProto:
    """An If whose branches hold a big initializer (then) and a big Constant (else), one level nested."""
    out = [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, None)]
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["then.w"], ["branch_out"])], "then", [], out,
        [numpy_helper.from_array(array((50, 50)), "then.w")],  # 10000 bytes: stripped
    )  # fmt: skip
    inner = helper.make_graph(
        [helper.make_node("Constant", [], ["branch_out"], value=numpy_helper.from_array(array((40, 40))))],
        "inner", [], out,
    )  # fmt: skip  (6400 bytes, unnamed: key "branch_out")
    else_graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["cond2"], value=numpy_helper.from_array(np.array(True))),
            helper.make_node("If", ["cond2"], ["branch_out"], then_branch=inner, else_branch=inner),
        ],
        "else", [], out,
    )  # fmt: skip
    nodes = [
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph),
    ]
    return make(nodes)


def function_model() -> onnx.ModelProto:
    """A local function whose body holds a big Constant (key: its output "fw")."""
    body = [
        helper.make_node("Constant", [], ["fw"], value=numpy_helper.from_array(array((30, 50)))),  # 6000 bytes
        helper.make_node("Add", ["a", "fw"], ["b"]),
    ]
    function = helper.make_function("local", "AddWeight", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    return make([helper.make_node("AddWeight", ["x"], ["y"], domain="local")], functions=[function])


def sparse_model() -> onnx.ModelProto:
    """A sparse initializer: 1200 float values (4800 bytes) and 1200 int64 indices (9600 bytes)."""
    values = numpy_helper.from_array(array((1200,)), "sp")
    indices = numpy_helper.from_array(np.arange(0, 2400, 2, dtype=np.int64))
    sparse = helper.make_sparse_tensor(values, indices, [2400])
    return make([helper.make_node("Identity", ["x"], ["y"])], sparse=[sparse])


def save(model: onnx.ModelProto, path: pathlib.Path) -> pathlib.Path:
    path.write_bytes(model.SerializeToString())
    return path


HAND_BUILT = {
    "conv": (conv_model, {"conv.w", "fc.w", "half.over"}),
    "constants": (constant_model, {"k1", "k2.value", "floats", "ints_big"}),
    "if_branches": (if_model, {"then.w", "branch_out"}),
    "function": (function_model, {"fw"}),
    "sparse": (sparse_model, {"sp", "sp/indices"}),
}


@pytest.mark.parametrize("case", sorted(HAND_BUILT))
def test_hand_built_matches_onnx_load(case, tmp_path):
    build, expected_stripped = HAND_BUILT[case]
    path = save(build(), tmp_path / f"{case}.onnx")
    digest = file_digest(path)
    loaded = load_model(path)
    assert loaded.stripped == expected_stripped
    assert (loaded.path, loaded.file_size, loaded.external, loaded.warnings) == (path, path.stat().st_size, {}, [])
    assert_equivalent(loaded, onnx.load(path, load_external_data=False))
    assert file_digest(path) == digest


def test_stripped_tensors_keep_metadata_and_drop_payload(tmp_path):
    loaded = load_model(save(conv_model(), tmp_path / "m.onnx"))
    tensors = {t.name: t for t in loaded.proto.graph.initializer}
    assert (list(tensors["conv.w"].dims), tensors["conv.w"].data_type) == ([64, 3, 3, 3], TensorProto.FLOAT)
    assert (list(tensors["half.over"].dims), tensors["half.over"].data_type) == ([33, 64], TensorProto.FLOAT16)
    assert all(not tensors[name].HasField("raw_data") for name in ("conv.w", "fc.w", "half.over"))
    np.testing.assert_array_equal(numpy_helper.to_array(tensors["shape"]), [1, -1])
    # what is parsed: everything but 6912 + 92160 + 4224 payload bytes (and their 3-byte field headers)
    assert loaded.proto.ByteSize() < 8192


def test_threshold_is_configurable(tmp_path):
    path = save(conv_model(), tmp_path / "m.onnx")
    reference = onnx.load(path)
    everything = load_model(path, payload_threshold=0)
    assert everything.stripped == {"conv.w", "conv.b", "shape", "fc.w", "half.exact", "half.over"}
    assert_equivalent(everything, reference)
    nothing = load_model(path, payload_threshold=10**9)
    assert nothing.stripped == frozenset()
    assert nothing.proto == reference
    with pytest.raises(ValueError):
        load_model(path, payload_threshold=-1)


def test_bytes_and_modelproto_input(tmp_path):
    model = conv_model()
    from_bytes = load_model(model.SerializeToString())
    assert (from_bytes.path, from_bytes.file_size) == (None, 0)
    assert from_bytes.stripped == {"conv.w", "fc.w", "half.over"}
    assert_equivalent(from_bytes, model)
    from_proto = load_model(model)
    assert from_proto.proto is model
    assert (from_proto.stripped, from_proto.file_size, from_proto.path) == (frozenset(), 0, None)
    assert load_model(str(save(model, tmp_path / "m.onnx"))).stripped == from_bytes.stripped


# ---------------------------------------------------------------- external data


def save_external(model: onnx.ModelProto, path: pathlib.Path, location: str = "weights.data") -> pathlib.Path:
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=1024)  # fmt: skip
    return path


def set_locations(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    return model


def test_external_data_present(tmp_path):
    path = save_external(conv_model(), tmp_path / "m.onnx")
    digests = {p.name: file_digest(p) for p in tmp_path.iterdir()}
    loaded = load_model(path)
    # over size_threshold=1024 bytes: conv.w 6912, fc.w 92160, half.exact 4096, half.over 4224
    assert loaded.external == {name: "weights.data" for name in ("conv.w", "fc.w", "half.exact", "half.over")}
    assert loaded.stripped == frozenset()  # external tensors carry no payload in the .onnx file
    assert loaded.warnings == []
    assert loaded.file_size == path.stat().st_size
    assert_equivalent(loaded, onnx.load(path, load_external_data=False))
    assert {p.name: file_digest(p) for p in tmp_path.iterdir()} == digests


def test_external_data_absent_warns_and_loads(tmp_path):
    path = save_external(conv_model(), tmp_path / "m.onnx")
    (tmp_path / "weights.data").unlink()
    loaded = load_model(path)
    assert len(loaded.warnings) == 1
    assert "weights.data" in loaded.warnings[0] and "missing" in loaded.warnings[0]
    assert "4 tensors" in loaded.warnings[0]
    assert_equivalent(loaded, onnx.load(path, load_external_data=False))


@pytest.mark.parametrize(
    ("location", "fragment"),
    [("../outside.data", "outside the model's directory"), ("/etc/passwd", "absolute path")],
)
def test_external_location_escaping_warns_and_is_never_opened(location, fragment, tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (tmp_path / "outside.data").write_bytes(b"\0" * 100_000)
    source = save_external(conv_model(), model_dir / "ext.onnx")
    model = set_locations(onnx.load(source, load_external_data=False), location)
    path = save(model, model_dir / "m.onnx")
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: opened.append(str(file)) or real_open(file, *a, **k))
    loaded = load_model(path)
    monkeypatch.undo()
    assert opened == [str(path)]
    assert len(loaded.warnings) == 1 and fragment in loaded.warnings[0] and location in loaded.warnings[0]
    assert set(loaded.external.values()) == {location}
    assert_equivalent(loaded, onnx.load(path, load_external_data=False))


def test_external_location_symlink_out_warns(tmp_path):
    model_dir, elsewhere = tmp_path / "model", tmp_path / "elsewhere"
    model_dir.mkdir()
    elsewhere.mkdir()
    path = save_external(conv_model(), model_dir / "m.onnx")
    os.replace(model_dir / "weights.data", elsewhere / "weights.data")
    os.symlink(elsewhere / "weights.data", model_dir / "weights.data")
    loaded = load_model(path)
    assert len(loaded.warnings) == 1 and "symlink" in loaded.warnings[0]


def test_external_locations_from_modelproto_and_bytes(tmp_path):
    model = set_locations(onnx.load(save_external(conv_model(), tmp_path / "m.onnx"), load_external_data=False),
                          "../up.data")  # fmt: skip
    for source in (model, model.SerializeToString()):
        loaded = load_model(source)
        assert set(loaded.external) == {"conv.w", "fc.w", "half.exact", "half.over"}
        assert len(loaded.warnings) == 1 and "outside the model's directory" in loaded.warnings[0]


# ---------------------------------------------------------------- bad input


def write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


BAD_FILES = {
    "empty": (lambda: b"", ["bad.onnx", "empty"]),
    "random": (lambda: np.random.default_rng(7).bytes(4096), ["bad.onnx", "not an ONNX model"]),
    "truncated": (lambda: conv_model().SerializeToString()[:5000], ["bad.onnx", "truncated"]),
    "not_a_model": (lambda: conv_model().graph.SerializeToString(), ["bad.onnx", "no graph"]),
    # field 8 (opset_import) holding 2 bytes that are not an OperatorSetIdProto: the walk copies it, FromString fails
    "corrupt_nested": (lambda: b"\x08\x0a\x42\x02\xff\xff", ["bad.onnx", "not an ONNX model", "decode"]),
    "future_ir": (
        lambda: make([helper.make_node("Identity", ["x"], ["y"])], ir_version=onnx.IR_VERSION + 1).SerializeToString(),
        ["bad.onnx", f"IR version {onnx.IR_VERSION + 1}", f"IR {onnx.IR_VERSION}"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_one_line_error(case, tmp_path):
    make_bytes, fragments = BAD_FILES[case]
    path = write(tmp_path / "bad.onnx", make_bytes())
    digest = file_digest(path)
    with pytest.raises(ModelLoadError) as caught:
        load_model(path)
    message = str(caught.value)
    assert isinstance(caught.value, AnalyzerError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert caught.value.__cause__ is None  # no protobuf/struct traceback chained for the user
    assert file_digest(path) == digest


def test_bad_bytes_input(tmp_path):
    with pytest.raises(ModelLoadError, match="<bytes>.*truncated"):
        load_model(conv_model().SerializeToString()[:-100])
    with pytest.raises(ModelLoadError, match="no data"):
        load_model(b"")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="nope.onnx.*no such file"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model(tmp_path)


def test_future_opset_warns_and_loads(tmp_path):
    known = onnx.defs.onnx_opset_version()
    path = save(make([helper.make_node("Identity", ["x"], ["y"])], opset=known + 1), tmp_path / "m.onnx")
    loaded = load_model(path)
    assert len(loaded.warnings) == 1
    assert f"opset {known + 1}" in loaded.warnings[0] and f"({known})" in loaded.warnings[0]
    assert loaded.proto.opset_import[0].version == known + 1


def test_truncation_at_every_prefix_never_escapes(tmp_path):
    """Every prefix of a model either loads or raises ModelLoadError: no DecodeError or IndexError."""
    data = if_model().SerializeToString()
    for end in range(1, len(data), max(1, len(data) // 300)):
        try:
            load_model(data[:end], payload_threshold=64)
        except ModelLoadError:
            pass


# ---------------------------------------------------------------- exported zoo models

# With the export cached each case takes under 2 s; vgg16 takes about 4 s and 2 GB (onnx.load of 528 MB
# plus the copies the check makes), and its first export about a minute, so it is marked slow.
ZOO_FAST = ["lenet5", "mnist_cnn", "alexnet", "resnet50", "googlenet", "mobilenet_v2"]
ZOO_SLOW = ["vgg16"]


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
@pytest.mark.parametrize(
    "name", ZOO_FAST + [pytest.param(name, marks=pytest.mark.slow) for name in ZOO_SLOW]
)  # fmt: skip
def test_zoo_export_matches_onnx_load(zoo_onnx, name, exporter):
    path = zoo_onnx(name, exporter=exporter, dynamic_batch=True)
    digest = file_digest(path)
    loaded = load_model(path)
    reference = onnx.load(path, load_external_data=False)
    assert_equivalent(loaded, reference)
    # every tensor either is stripped, external, or has its payload; stripped ones are exactly those over 4096 bytes
    for key, tensor in all_tensors(reference):
        if tensor.data_location == TensorProto.EXTERNAL:
            assert key in loaded.external and key not in loaded.stripped
        elif tensor.HasField("raw_data"):  # exporters write raw_data: numel * itemsize bytes
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
            assert len(tensor.raw_data) == math.prod(tensor.dims) * itemsize
            assert (key in loaded.stripped) == (len(tensor.raw_data) > THRESHOLD), key
    assert loaded.warnings == []
    assert file_digest(path) == digest


def test_external_data_marked_by_a_non_canonical_varint_is_seen(tmp_path):
    """data_location = EXTERNAL written as 70 81 00 (an overlong varint, which protobuf reads as 1) on a tensor
    far below the payload threshold: the walk decodes it as protobuf does and warns about its location."""
    from analyzer.wire import encode_varint

    tensor = onnx.TensorProto(name="w", dims=[4, 3, 3, 3], data_type=onnx.TensorProto.FLOAT,
                              data_location=onnx.TensorProto.EXTERNAL)
    tensor.external_data.add(key="location", value="../outside.data")
    encoded = tensor.SerializeToString()
    assert encoded.count(b"\x70\x01") == 1
    encoded = encoded.replace(b"\x70\x01", b"\x70\x81\x00")
    model = onnx.helper.make_model(
        onnx.helper.make_graph([onnx.helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 6, 6])]),
        ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 17)])
    graph = model.graph.SerializeToString() + b"\x2a" + encode_varint(len(encoded)) + encoded  # initializer: field 5
    model.ClearField("graph")
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString() + b"\x3a" + encode_varint(len(graph)) + graph)  # graph: field 7
    assert onnx.load(path, load_external_data=False).graph.initializer[0].data_location == onnx.TensorProto.EXTERNAL
    loaded = load_model(path)
    assert loaded.external == {"w": "../outside.data"}
    assert len(loaded.warnings) == 1 and "outside the model's directory" in loaded.warnings[0]


# ---------------------------------------------------------------- inputs of real exports, normalised at load


def quirky_model() -> onnx.ModelProto:
    """x with dims -1, 0, empty, '?' and one named; the initializer w also listed as an input (IR 3 style);
    y declared with a -1 dim."""
    w = numpy_helper.from_array(array((4, 3, 3, 3)), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 1, 1])
    for d, written in zip(x.type.tensor_type.shape.dim, [-1, 0, None, "?", "H"]):
        d.Clear()
        if isinstance(written, int):
            d.dim_value = written
        elif written is not None:
            d.dim_param = written
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [x, helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 2])], [w],
    )  # fmt: skip
    return helper.make_model(graph, ir_version=3, opset_imports=[helper.make_opsetid("", 8)])


def test_unknown_input_dims_get_names_and_listed_initializers_leave_the_inputs(tmp_path):
    loaded = load_model(save(quirky_model(), tmp_path / "m.onnx"))
    assert [v.name for v in loaded.proto.graph.input] == ["x"]
    assert [t.name for t in loaded.proto.graph.initializer] == ["w"]
    dims = loaded.proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["x.dim0", "x.dim1", "x.dim2", "x.dim3", "H"]
    assert not any(d.HasField("dim_value") for d in dims)
    output_dims = loaded.proto.graph.output[0].type.tensor_type.shape.dim
    assert [(d.HasField("dim_value"), d.dim_value) for d in output_dims] == [(False, 0), (True, 2)]
    assert loaded.warnings == [
        "1 initializer(s) are also listed as graph inputs (IR 3 style): counted as constant weights and dropped "
        "from the inputs, as onnxruntime's remove_initializer_from_input tool does",
        "input dims written as -1, 0, '?' or left empty are symbolic: x.dim0, x.dim1, x.dim2, x.dim3 "
        "(bind them with --dim NAME=N, --input-shape or --batch)",
    ]


def test_a_caller_model_proto_needing_normalisation_is_copied_not_changed():
    model = quirky_model()
    before = model.SerializeToString()
    loaded = load_model(model)
    assert loaded.proto is not model and model.SerializeToString() == before
    assert [v.name for v in loaded.proto.graph.input] == ["x"]
    plain = conv_model()
    assert load_model(plain).proto is plain  # nothing to normalise: used as is
