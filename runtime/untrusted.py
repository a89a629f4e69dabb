"""Static checks of model files before any library parses them for real.

Bundles are passed around like documents, so their files are untrusted input. ONNX
Runtime executes whatever operators a graph names, resolves external-data paths, and
allocates what a tensor claims; ``np.load`` allocates what an ``.npy`` header claims and
inflates what a zip member holds. These checks read only headers and protobuf field tags,
run nothing, and refuse anything outside what SoundSentry itself writes.

The ONNX check walks the protobuf wire format directly (field numbers from ``onnx.proto``),
so the runtime needs no ``onnx`` package.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from .errors import ModelIntegrityError

__all__ = [
    "ALLOWED_ONNX_DOMAINS",
    "MAX_NPZ_BYTES",
    "MAX_NPZ_RATIO",
    "MAX_ONNX_BYTES",
    "check_npz",
    "check_onnx",
]

#: Operator sets a SoundSentry graph may use: the standard ONNX and ONNX-ML operators.
#: Any other domain means custom operators, i.e. native code from outside ONNX Runtime's
#: standard set (or a failure to load that should be reported as a refusal, not a crash).
ALLOWED_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})

#: Largest ONNX file accepted (the shipped encoder is under 1 MB).
MAX_ONNX_BYTES = 256 * 1024 * 1024

#: Largest total of uncompressed array bytes in an ``.npz`` (the shipped LOF set is 57 kB).
MAX_NPZ_BYTES = 256 * 1024 * 1024

#: Largest inflation ratio of a compressed ``.npz`` member; arrays of floats compress
#: to a fraction of their size, only crafted input inflates a thousandfold.
MAX_NPZ_RATIO = 100

_MAX_NPZ_MEMBERS = 64


# -- .npz ----------------------------------------------------------------------------------


def check_npz(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
    """Refuse an ``.npz`` that is not plain numeric arrays of a sane size.

    Checks the zip directory (member count, names, compression method, sizes, inflation
    ratio) and every member's ``.npy`` header (numeric dtype, no objects, a shape that
    matches the member's size) without reading any array data.

    Raises
    ------
    ModelIntegrityError
    """
    name = os.fspath(path)
    max_bytes = MAX_NPZ_BYTES if max_bytes is None else max_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if not members or len(members) > _MAX_NPZ_MEMBERS:
                raise ModelIntegrityError(f"{name}: .npz holds {len(members)} members")
            total = 0
            for member in members:
                total += member.file_size
                _check_npz_member(name, archive, member, total, max_bytes)
    except ModelIntegrityError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ModelIntegrityError(f"{name}: not a valid .npz archive ({exc})") from exc


def _check_npz_member(name: str, archive: zipfile.ZipFile, member: zipfile.ZipInfo, total: int, max_bytes: int) -> None:
    where = f"{name}: member {member.filename!r}"
    if not member.filename.endswith(".npy") or "/" in member.filename or "\\" in member.filename:
        raise ModelIntegrityError(f"{where} is not a plain .npy array")
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelIntegrityError(f"{where} uses an unexpected compression method")
    if total > max_bytes:
        raise ModelIntegrityError(f"{name}: arrays would take more than {max_bytes} bytes unpacked (zip bomb?)")
    if member.compress_type == zipfile.ZIP_DEFLATED and member.file_size > MAX_NPZ_RATIO * max(member.compress_size, 1):
        raise ModelIntegrityError(
            f"{where} inflates {member.file_size / max(member.compress_size, 1):.0f}-fold (zip bomb?)"
        )
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ModelIntegrityError(f"{where} has an unknown .npy version {version}")
        header_bytes = fh.tell()
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ModelIntegrityError(f"{where} holds {dtype} data; only numbers are allowed (no pickled objects)")
    count = 1
    for dim in shape:
        count *= int(dim)
    if header_bytes + count * dtype.itemsize != member.file_size:
        raise ModelIntegrityError(f"{where}: its header claims shape {shape} of {dtype}, which is not its size")


# -- ONNX ----------------------------------------------------------------------------------

# Field numbers in onnx.proto (ONNX IR version 3 to 10).
_MODEL_GRAPH, _MODEL_OPSET, _MODEL_FUNCTIONS = 7, 8, 25
_OPSET_DOMAIN = 1
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_OP_TYPE, _NODE_ATTRIBUTE, _NODE_DOMAIN = 4, 5, 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_MAX_DEPTH = 32


class _Malformed(ValueError):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview):
    """Yield ``(field_number, wire_type, value)``; value is an int or a memoryview."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Malformed("a field runs past the end of its message")
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise _Malformed("truncated field")
        yield number, wire, value


def _text(value) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _check_tensor(buf: memoryview, problems: list[str]) -> None:
    for number, wire, value in _fields(buf):
        if number == _TENSOR_EXTERNAL_DATA or (number == _TENSOR_DATA_LOCATION and wire == 0 and value == 1):
            problems.append("a tensor refers to data in an external file")
            return


def _check_sparse(buf: memoryview, problems: list[str]) -> None:
    for number, wire, value in _fields(buf):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == 2:
            _check_tensor(value, problems)


def _check_graph(buf: memoryview, problems: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed("subgraphs nested too deep")
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _GRAPH_NODE:
            _check_node(value, problems, depth)
        elif number == _GRAPH_INITIALIZER:
            _check_tensor(value, problems)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            _check_sparse(value, problems)


def _check_node(buf: memoryview, problems: list[str], depth: int) -> None:
    op_type, domain = "?", ""
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _NODE_OP_TYPE:
            op_type = _text(value)
        elif number == _NODE_DOMAIN:
            domain = _text(value)
        elif number == _NODE_ATTRIBUTE:
            for a_number, a_wire, a_value in _fields(value):
                if a_wire != 2:
                    continue
                if a_number in (_ATTR_G, _ATTR_GRAPHS):
                    _check_graph(a_value, problems, depth + 1)
                elif a_number in (_ATTR_T, _ATTR_TENSORS):
                    _check_tensor(a_value, problems)
                elif a_number in (_ATTR_SPARSE, _ATTR_SPARSES):
                    _check_sparse(a_value, problems)
    if domain not in ALLOWED_ONNX_DOMAINS:
        problems.append(f"operator {op_type!r} of custom domain {domain!r}")


def check_onnx(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
    """Refuse an ONNX file that uses custom operators, local functions or external data.

    Reads the file's protobuf structure only: operator-set imports, every node's domain
    (subgraphs of ``If``/``Loop``/``Scan`` included), local functions, and whether any
    tensor points to an external data file. Nothing is loaded into ONNX Runtime.

    Raises
    ------
    ModelIntegrityError
    """
    name = os.fspath(path)
    max_bytes = MAX_ONNX_BYTES if max_bytes is None else max_bytes
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ModelIntegrityError(f"{name}: ONNX file of {size} bytes is larger than the {max_bytes} allowed")
    with open(path, "rb") as fh:
        buf = memoryview(fh.read())
    problems: list[str] = []
    has_graph = False
    try:
        for number, wire, value in _fields(buf):
            if wire != 2:
                continue
            if number == _MODEL_OPSET:
                domain = next((_text(v) for n, w, v in _fields(value) if n == _OPSET_DOMAIN and w == 2), "")
                if domain not in ALLOWED_ONNX_DOMAINS:
                    problems.append(f"imports the custom operator set {domain!r}")
            elif number == _MODEL_FUNCTIONS:
                problems.append("defines local functions")
            elif number == _MODEL_GRAPH:
                has_graph = True
                _check_graph(value, problems, 0)
    except _Malformed as exc:
        raise ModelIntegrityError(f"{name}: not a valid ONNX file ({exc})") from exc
    if not has_graph:
        raise ModelIntegrityError(f"{name}: not a valid ONNX file (no graph)")
    if problems:
        shown = "; ".join(dict.fromkeys(problems))
        raise ModelIntegrityError(f"{name}: refused, the graph {shown} (only standard ONNX operators are run)")
