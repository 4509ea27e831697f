"""A safetensors reader and writer (https://github.com/huggingface/safetensors, "Format" section).

File layout: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the data
buffer; offsets are relative to the first byte after the header, tensors are row-major little-endian, packed without
gaps or overlaps. The writer pads the header with spaces to a multiple of 8 bytes (as the reference writer does).

Only numpy is needed. Arrays are returned as numpy arrays (copies, aligned). Every problem with a file is a one-line
UserError naming the file.
"""
import json
import os
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from .errors import UserError, read_input_bytes

# safetensors dtype code -> numpy dtype (little-endian).
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODE = {v: k for k, v in DTYPES.items()}
MAX_HEADER_BYTES = 100 * 1000 * 1000


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def parse_safetensors(buf: bytes, shown: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Parses safetensors bytes -> ({name: array}, metadata). ``shown`` names the file in errors.

    Refuses (UserError): a header length over 100 MB or past the end of the file, a header that is not a JSON object,
    unknown dtypes (BF16 included: numpy has none), a shape whose byte size differs from its offsets, offsets out of
    range, overlapping or leaving gaps, and trailing bytes.
    """
    if len(buf) < 8:
        raise UserError(f"{shown}: not a safetensors file (shorter than its 8-byte header length)")
    n = int.from_bytes(buf[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise UserError(f"{shown}: safetensors header of {n} bytes is over the 100 MB limit")
    if 8 + n > len(buf):
        raise UserError(f"{shown}: safetensors header of {n} bytes is longer than the file ({len(buf)} bytes)")
    try:
        header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{shown}: safetensors header is not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(header, dict):
        raise UserError(f"{shown}: safetensors header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise UserError(f"{shown}: safetensors __metadata__ must map strings to strings")
    data = memoryview(buf)[8 + n :]
    spans = []
    out: Dict[str, np.ndarray] = {}
    for name, e in header.items():
        if not isinstance(e, dict):
            raise UserError(f"{shown}: tensor {name!r} has no description")
        code = e.get("dtype")
        if code not in DTYPES:
            raise UserError(f"{shown}: tensor {name!r} has unsupported dtype {json.dumps(code)}")
        shape = e.get("shape")
        offs = e.get("data_offsets")
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise UserError(f"{shown}: tensor {name!r} has an invalid shape")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs) and 0 <= offs[0] <= offs[1]):
            raise UserError(f"{shown}: tensor {name!r} has invalid data_offsets")
        dt = DTYPES[code]
        if offs[1] - offs[0] != _numel(shape) * dt.itemsize:
            raise UserError(
                f"{shown}: tensor {name!r} has {offs[1] - offs[0]} bytes but shape {shape} of {code} needs {_numel(shape) * dt.itemsize}"
            )
        if offs[1] > len(data):
            raise UserError(f"{shown}: tensor {name!r} (bytes {offs[0]}..{offs[1]}) is out of range (data has {len(data)} bytes)")
        spans.append((offs[0], offs[1], name))
        out[name] = np.frombuffer(data[offs[0] : offs[1]], dtype=dt).reshape(shape).copy()
    spans.sort()
    end = 0
    for b, e, name in spans:
        if b < end:
            raise UserError(f"{shown}: tensor {name!r} overlaps another tensor's bytes")
        if b > end:
            raise UserError(f"{shown}: gap of {b - end} bytes before tensor {name!r}")
        end = e
    if end != len(data):
        raise UserError(f"{shown}: {len(data) - end} trailing bytes after the last tensor")
    return out, dict(meta)


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a safetensors file -> ({name: numpy array}, metadata); errors name ``path``."""
    return parse_safetensors(read_input_bytes(path, "missing"), path)


def serialize_safetensors(tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """Tensors (numpy arrays, any supported dtype) -> safetensors bytes, in the mapping's order, header space-padded to 8."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        code = _CODE.get(np.dtype(a.dtype).newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype)
        if code is None:
            raise ValueError(f"safetensors: tensor {name!r} has unsupported dtype {a.dtype}")
        raw = a.astype(DTYPES[code], copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return len(h).to_bytes(8, "little") + h + b"".join(chunks)


def write_safetensors(path: str, tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes and fsyncs a safetensors file at ``path`` (the caller makes the folder swap atomic)."""
    data = serialize_safetensors(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def main(argv=None) -> int:
    """``python -m factorgen_twin.safetensors FILE...``: validates each file and lists its tensors (name dtype shape),
    one line per problem and exit 2 on a bad file."""
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("factorgen_twin: usage: python -m factorgen_twin.safetensors FILE...", file=sys.stderr)
        return 2
    for path in paths:
        try:
            tensors, meta = read_safetensors(path)
        except UserError as e:
            print(f"factorgen_twin: {e}", file=sys.stderr)
            return 2
        for name, a in tensors.items():
            print(f"{path}\t{name}\t{_CODE[np.dtype(a.dtype).newbyteorder('<') if a.dtype.itemsize > 1 else a.dtype]}\t{list(a.shape)}")
        if meta:
            print(f"{path}\t__metadata__\t{json.dumps(meta, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
