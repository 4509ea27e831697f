"""Reader for factorgen's token files (written by ``factorgen tokenizer encode``; packages/tokenizer/src/tokenFile.ts).

Layout (documented in docs/scaling-out.md, "Token file"):
    bytes 0..7    magic "FGTOKEN1"
    bytes 8..11   uint32 LE: length L of the JSON header
    bytes 12..    header JSON (UTF-8, L bytes): {format: 1, tokenizerId, tokenizerPath, configHash, gridH, gridW,
                  subCodebookSizes, classNames, count, dtype: "uint16" | "int32", source}
    then ``count`` records: int32 LE label, then K token maps of gridH*gridW ids in raster order (sub-codebook 0's map
    first), each id uint16 LE or int32 LE as header.dtype says.
"""
import json
from dataclasses import dataclass

import numpy as np

from .errors import UserError, read_input_bytes

MAGIC = b"FGTOKEN1"


@dataclass
class TokenSet:
    """header: the JSON header; tokens: int64 [count, T, K] (position-major, as factorgen keeps them); labels: int64 [count]."""

    header: dict
    tokens: np.ndarray
    labels: np.ndarray


def read_token_file(path: str) -> TokenSet:
    """Reads and validates a whole token file: magic, header fields, exact size, labels and ids in range."""
    buf = read_input_bytes(path, "no such file")
    if len(buf) < 12 or buf[:8] != MAGIC:
        raise UserError(f"{path}: not a factorgen token file (bad magic)")
    n = int.from_bytes(buf[8:12], "little")
    if 12 + n > len(buf):
        raise UserError(f"{path}: truncated token file (header needs {n} bytes)")
    try:
        h = json.loads(buf[12 : 12 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path}: token file header is not valid JSON") from None
    if not isinstance(h, dict) or h.get("format") != 1:
        raise UserError(f"{path}: token file format {h.get('format') if isinstance(h, dict) else None} is not supported (this version reads 1)")
    is_pos = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0
    ok = (
        is_pos(h.get("gridH")) and is_pos(h.get("gridW")) and isinstance(h.get("subCodebookSizes"), list)
        and len(h["subCodebookSizes"]) >= 1 and all(is_pos(v) for v in h["subCodebookSizes"])
        and isinstance(h.get("classNames"), list) and len(h["classNames"]) >= 1
        and isinstance(h.get("count"), int) and h["count"] >= 0 and h.get("dtype") in ("uint16", "int32")
        and isinstance(h.get("tokenizerId"), str)
    )
    if not ok:
        raise UserError(f"{path}: token file header is missing or has invalid fields")
    T = h["gridH"] * h["gridW"]
    K = len(h["subCodebookSizes"])
    item = 2 if h["dtype"] == "uint16" else 4
    rec = 4 + T * K * item
    expected = 12 + n + h["count"] * rec
    if len(buf) != expected:
        what = "truncated" if len(buf) < expected else "has trailing bytes"
        raise UserError(f"{path}: token file {what} (expected {expected} bytes for {h['count']} records, found {len(buf)})")
    rec_dtype = np.dtype([("label", "<i4"), ("ids", "<u2" if item == 2 else "<i4", (K, T))])
    recs = np.frombuffer(buf, dtype=rec_dtype, count=h["count"], offset=12 + n)
    labels = recs["label"].astype(np.int64)
    tokens = np.ascontiguousarray(recs["ids"].astype(np.int64).transpose(0, 2, 1))  # [N, K, T] -> [N, T, K]
    C = len(h["classNames"])
    bad = np.nonzero((labels < 0) | (labels >= C))[0]
    if len(bad):
        raise UserError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, outside 0..{C - 1}")
    for k, V in enumerate(h["subCodebookSizes"]):
        col = tokens[:, :, k]
        badk = np.argwhere((col < 0) | (col >= V))
        if len(badk):
            r, t = badk[0]  # (factorgen names the first bad record in file order; this names the first per sub-codebook)
            raise UserError(f"{path}: record {r}, sub-codebook {k} has token id {col[r, t]}, outside 0..{V - 1}")
    return TokenSet(header=h, tokens=tokens, labels=labels)
