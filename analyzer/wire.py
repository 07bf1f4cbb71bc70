"""Protobuf wire-format walk of a serialized ONNX ModelProto that leaves large tensor payloads behind.

A protobuf message is a sequence of fields ``key = (number << 3) | wire_type`` followed by a varint
(wire type 0), 8 bytes (1), 4 bytes (5) or a varint length and that many bytes (2). A length-delimited
field therefore tells how far to jump without parsing its contents, which is what makes skipping a
528 MB weight payload cost one varint read.

The walk descends only along the paths that can hold a tensor (field numbers from onnx.proto)::

    ModelProto.graph 7, .training_info 20, .functions 25
    TrainingInfoProto.initialization 1, .algorithm 2          -> GraphProto
    GraphProto.node 1, .initializer 5, .sparse_initializer 15
    FunctionProto.node 7, .attribute_proto 11
    NodeProto.attribute 5
    AttributeProto.t 5, .g 6, .tensors 10, .graphs 11, .sparse_tensor 22, .sparse_tensors 23
    SparseTensorProto.values 1, .indices 2                     -> TensorProto

and into every submessage on those paths, small ones included, so that every tensor's
``data_location`` is decoded as protobuf decodes it (a byte-pattern shortcut would miss a
non-canonical varint such as ``70 81 00``) and each external-data location is recorded. Messages
the walk leaves unchanged are copied verbatim.

In a TensorProto whose payload (the encoded bytes of float_data 4, int32_data 5, string_data 6,
int64_data 7, raw_data 9, double_data 10, uint64_data 11) exceeds the threshold, those fields are
dropped; dims, data_type, name, segment, doc_string, external_data, data_location and metadata stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Message kinds on the paths that can hold tensors, and for each, field number -> kind of that field.
MODEL, TRAINING_INFO, GRAPH, FUNCTION, NODE, ATTRIBUTE, SPARSE_TENSOR, TENSOR = (
    "ModelProto", "TrainingInfoProto", "GraphProto", "FunctionProto", "NodeProto", "AttributeProto",
    "SparseTensorProto", "TensorProto",
)  # fmt: skip
CHILD_KINDS: dict[str, dict[int, str]] = {
    MODEL: {7: GRAPH, 20: TRAINING_INFO, 25: FUNCTION},
    TRAINING_INFO: {1: GRAPH, 2: GRAPH},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE_TENSOR},
    FUNCTION: {7: NODE, 11: ATTRIBUTE},
    NODE: {5: ATTRIBUTE},
    ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE_TENSOR, 23: SPARSE_TENSOR},
    SPARSE_TENSOR: {1: TENSOR, 2: TENSOR},
}

TENSOR_PAYLOAD_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
NODE_OUTPUT = 2

WIRE_VARINT, WIRE_FIXED64, WIRE_LENGTH, WIRE_FIXED32 = 0, 1, 2, 5


class WireError(Exception):
    """The bytes are not a well-formed protobuf (the message says where)."""


@dataclass
class WalkResult:
    """What the walk produced: the rewritten model bytes and what it left out."""

    data: bytes
    stripped: set[str] = field(default_factory=set)
    external: dict[str, str] = field(default_factory=dict)  # tensor key -> location as written


def read_varint(buf, pos: int, end: int) -> tuple[int, int]:
    """Decode the base-128 varint at ``pos``; return (value, position after it)."""
    if pos >= end:
        raise WireError(f"truncated protobuf: varint at byte {pos} runs past the end")
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift, pos = byte & 0x7F, 7, pos + 1
    while True:
        if pos >= end:
            raise WireError(f"truncated protobuf: varint at byte {pos} runs past the end")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise WireError(f"corrupt protobuf: varint longer than 10 bytes before byte {pos}")


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def next_field(buf, pos: int, end: int) -> tuple[int, int, int, int, int]:
    """Read the field at ``pos``: (number, wire type, key end, value start, field end).

    For wire type 2 the value spans ``value start .. field end``; for the others ``key end`` is where
    the value starts and ``value start`` equals it.
    """
    key, key_end = read_varint(buf, pos, end)
    number, wire_type = key >> 3, key & 7
    if number == 0:
        raise WireError(f"corrupt protobuf: field number 0 at byte {pos}")
    if wire_type == WIRE_LENGTH:
        length, value_start = read_varint(buf, key_end, end)
        field_end = value_start + length
    elif wire_type == WIRE_VARINT:
        _, field_end = read_varint(buf, key_end, end)
        value_start = key_end
    elif wire_type == WIRE_FIXED64:
        value_start, field_end = key_end, key_end + 8
    elif wire_type == WIRE_FIXED32:
        value_start, field_end = key_end, key_end + 4
    else:
        raise WireError(f"corrupt protobuf: wire type {wire_type} (field {number}) at byte {pos}")
    if field_end > end:
        raise WireError(
            f"truncated protobuf: field {number} at byte {pos} needs {field_end - pos} bytes, "
            f"only {end - pos} remain"
        )
    return number, wire_type, key_end, value_start, field_end


class PayloadSkipper:
    """One walk over one buffer (bytes or mmap); collects stripped tensor keys and external locations.

    A tensor's key is its name, or for an unnamed tensor the name its container gives it: the first
    output of the node whose attribute holds it; ``<values key>/indices`` for a sparse tensor's indices.
    """

    def __init__(self, buf, payload_threshold: int) -> None:
        self.buf = buf
        self.threshold = payload_threshold
        self.stripped: set[str] = set()
        self.external: dict[str, str] = {}

    def run(self) -> WalkResult:
        pieces, _ = self.rewrite(MODEL, 0, len(self.buf), "")
        data = bytes(self.buf) if pieces is None else b"".join(pieces)
        return WalkResult(data, self.stripped, self.external)

    def rewrite(self, kind: str, start: int, end: int, owner: str) -> tuple[list[bytes] | None, int]:
        """Rewrite the message ``buf[start:end]``; return (pieces, total length), or (None, length) if unchanged."""
        if kind == TENSOR:
            return self.rewrite_tensor(start, end, owner)
        buf, children = self.buf, CHILD_KINDS[kind]
        if kind == NODE:
            owner = self.first_string(start, end, NODE_OUTPUT)
        elif kind == SPARSE_TENSOR:
            owner = self.sparse_values_name(start, end) or owner
        elif kind != ATTRIBUTE:
            owner = ""
        pieces: list[bytes] = []
        copy_from, pos, changed, length = start, start, False, 0
        while pos < end:
            number, wire_type, key_end, value_start, field_end = next_field(buf, pos, end)
            child = children.get(number) if wire_type == WIRE_LENGTH else None
            if child is not None:
                child_owner = f"{owner}/indices" if kind == SPARSE_TENSOR and number == 2 else owner
                sub_pieces, sub_length = self.rewrite(child, value_start, field_end, child_owner)
                if sub_pieces is not None:
                    pieces.append(buf[copy_from:key_end])
                    prefix = encode_varint(sub_length)
                    pieces.append(prefix)
                    pieces.extend(sub_pieces)
                    length += key_end - copy_from + len(prefix) + sub_length
                    copy_from, changed = field_end, True
            pos = field_end
        if not changed:
            return None, end - start
        pieces.append(buf[copy_from:end])
        return pieces, length + end - copy_from

    def rewrite_tensor(self, start: int, end: int, owner: str) -> tuple[list[bytes] | None, int]:
        buf = self.buf
        payload_bytes, name, location, is_external = 0, "", None, False
        fields: list[tuple[int, int, int]] = []  # (number, field start, field end)
        pos = start
        while pos < end:
            number, wire_type, _, value_start, field_end = next_field(buf, pos, end)
            fields.append((number, pos, field_end))
            if number in TENSOR_PAYLOAD_FIELDS:
                payload_bytes += field_end - value_start
            elif number == TENSOR_NAME and wire_type == WIRE_LENGTH:
                name = bytes(buf[value_start:field_end]).decode("utf-8", "replace")
            elif number == TENSOR_DATA_LOCATION and wire_type == WIRE_VARINT:
                is_external = read_varint(buf, value_start, field_end)[0] == 1
            elif number == TENSOR_EXTERNAL_DATA and wire_type == WIRE_LENGTH:
                entry = self.string_entry(value_start, field_end)
                if entry[0] == "location":
                    location = entry[1]
            pos = field_end
        key = name or owner
        if is_external:
            self.external[key] = location if location is not None else ""
        if payload_bytes <= self.threshold:
            return None, end - start
        self.stripped.add(key)
        pieces = [buf[a:b] for number, a, b in fields if number not in TENSOR_PAYLOAD_FIELDS]
        return pieces, sum(len(p) for p in pieces)

    def first_string(self, start: int, end: int, wanted: int) -> str:
        """The first length-delimited field ``wanted`` of the message, decoded, or ''."""
        pos = start
        while pos < end:
            number, wire_type, _, value_start, field_end = next_field(self.buf, pos, end)
            if number == wanted and wire_type == WIRE_LENGTH:
                return bytes(self.buf[value_start:field_end]).decode("utf-8", "replace")
            pos = field_end
        return ""

    def sparse_values_name(self, start: int, end: int) -> str:
        """Name of a SparseTensorProto's ``values`` tensor (field 1), or ''."""
        pos = start
        while pos < end:
            number, wire_type, _, value_start, field_end = next_field(self.buf, pos, end)
            if number == 1 and wire_type == WIRE_LENGTH:
                return self.first_string(value_start, field_end, TENSOR_NAME)
            pos = field_end
        return ""

    def string_entry(self, start: int, end: int) -> tuple[str, str]:
        """A StringStringEntryProto: (key 1, value 2)."""
        return self.first_string(start, end, 1), self.first_string(start, end, 2)


def skip_payloads(buf, payload_threshold: int) -> WalkResult:
    """Walk a serialized ModelProto in ``buf`` (bytes or mmap) and drop tensor payloads over the threshold.

    Raises :class:`WireError` when the bytes are not a well-formed protobuf along the walked paths.
    """
    return PayloadSkipper(buf, payload_threshold).run()
