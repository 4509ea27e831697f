"""factorgen checkpoint folders, both layouts (see docs/scaling-out.md, "Checkpoint folder").

format 2 (what factorgen and the twin write by default, and what pretrained/ holds):
    config.json           {format: 2, kind, config, step, rng?, extra?}
    model.safetensors     every parameter, named and shaped exactly as factorgen names them (tfjs layouts: dense
                          kernels [in, out], conv kernels [h, w, in, out]), float32
    optimizer.safetensors AdamW moments ``m/<param>`` and ``v/<param>``, ``__metadata__ = {"step": "N"}`` (optional)
format 1 (legacy; read, and written on request (``--format 1``) for factorgen versions before format 2):
    config.json           as above plus ``weights: {file: "weights.bin", bytes, entries: [{name, shape, dtype, offset,
                          length}]}`` and optionally ``optimizer: {file: "optimizer.bin", step, bytes, m: [...], v: [...]}``
    weights.bin, optimizer.bin   the tensors back to back, little-endian float32/int32

Tensors are numpy arrays in factorgen's names and layouts; converting to the twin's modules is names.py's job.
Saving is atomic like factorgen's: a sibling temp folder is written and fsynced, then renamed over the target.
"""
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .errors import UserError
from .safetensors import read_safetensors, write_safetensors

FORMAT_LEGACY = 1
FORMAT_SAFETENSORS = 2
_LEGACY_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}


@dataclass
class Checkpoint:
    """One checkpoint: kind ('generator' | 'tokenizer' | ...), the model config, step, tensors by factorgen name."""

    kind: str
    config: dict
    step: int
    tensors: Dict[str, np.ndarray]
    extra: Optional[dict] = None
    rng: Optional[dict] = None
    # AdamW moments by parameter name, and the optimizer's step (None when the folder holds no training state)
    opt_m: Optional[Dict[str, np.ndarray]] = None
    opt_v: Optional[Dict[str, np.ndarray]] = None
    opt_step: Optional[int] = None
    fmt: int = FORMAT_SAFETENSORS
    meta: dict = field(default_factory=dict)


def _cut(buf: bytes, shown: str, index: dict, lists, where: str) -> list:
    if len(buf) != index["bytes"]:
        what = "truncated" if len(buf) < index["bytes"] else "wrong size"
        raise UserError(f"{shown}: {what}: expected {index['bytes']} bytes, found {len(buf)}")
    out = []
    for entries in lists:
        d = {}
        for e in entries:
            dt = _LEGACY_DTYPES.get(e.get("dtype"))
            if dt is None:
                raise UserError(f"{where}: entry {e.get('name')!r} has unsupported dtype {json.dumps(e.get('dtype'))}")
            n = int(np.prod(e["shape"], dtype=np.int64))
            if e["length"] != n * 4 or e["offset"] + e["length"] > len(buf):
                raise UserError(f"{where}: entry {e['name']!r} has an invalid offset/length")
            d[e["name"]] = np.frombuffer(buf, dtype=dt, count=n, offset=e["offset"]).reshape(e["shape"]).copy()
        out.append(d)
    return out


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None


def load_checkpoint(folder: str, expect_kind: Optional[str] = None, with_optimizer: bool = True) -> Checkpoint:
    """Reads a checkpoint folder of either layout. Raises UserError (one line naming the file) on any problem."""
    cfg_path = os.path.join(folder, "config.json")
    if os.path.isfile(folder):
        raise UserError(f"{folder}: not a checkpoint folder (it is a file)")
    try:
        with open(cfg_path, "r", encoding="utf-8") as f:
            j = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{cfg_path}: missing (not a factorgen checkpoint folder)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{cfg_path}: invalid JSON ({e.msg})") from None
    if not isinstance(j, dict):
        raise UserError(f"{cfg_path}: not a JSON object")
    fmt = j.get("format")
    if fmt not in (FORMAT_LEGACY, FORMAT_SAFETENSORS):
        raise UserError(f"{cfg_path}: unknown format {json.dumps(fmt)} (this version reads 1 and 2)")
    kind = j.get("kind")
    if not isinstance(kind, str) or not kind:
        raise UserError(f"{cfg_path}: missing \"kind\"")
    if expect_kind is not None and kind != expect_kind:
        raise UserError(f"{folder}: expected a {expect_kind} checkpoint, found a {kind} checkpoint")
    if not isinstance(j.get("config"), dict):
        raise UserError(f"{cfg_path}: missing \"config\" object")
    step = j.get("step")
    if not isinstance(step, int) or step < 0:
        raise UserError(f"{cfg_path}: missing or invalid \"step\"")
    ck = Checkpoint(kind=kind, config=j["config"], step=step, tensors={}, extra=j.get("extra"), rng=j.get("rng"), fmt=fmt)
    if fmt == FORMAT_LEGACY:
        w = j.get("weights")
        if not isinstance(w, dict) or w.get("file") != "weights.bin" or not isinstance(w.get("entries"), list):
            raise UserError(f"{cfg_path}: weights index must name file \"weights.bin\" and list its entries")
        (ck.tensors,) = _cut(_read_bytes(os.path.join(folder, "weights.bin")), os.path.join(folder, "weights.bin"), w, [w["entries"]], cfg_path)
        o = j.get("optimizer")
        if with_optimizer and isinstance(o, dict):
            p = os.path.join(folder, "optimizer.bin")
            ck.opt_m, ck.opt_v = _cut(_read_bytes(p), p, o, [o["m"], o["v"]], cfg_path)
            ck.opt_step = int(o["step"])
        return ck
    ck.tensors, ck.meta = read_safetensors(os.path.join(folder, "model.safetensors"))
    opt_path = os.path.join(folder, "optimizer.safetensors")
    if with_optimizer and os.path.exists(opt_path):
        t, meta = read_safetensors(opt_path)
        step_s = meta.get("step", "")
        if not step_s.isdigit():
            raise UserError(f"{opt_path}: __metadata__ has no valid \"step\"")
        ck.opt_step = int(step_s)
        ck.opt_m = {k[2:]: v for k, v in t.items() if k.startswith("m/")}
        ck.opt_v = {k[2:]: v for k, v in t.items() if k.startswith("v/")}
        bad = [k for k in t if not (k.startswith("m/") or k.startswith("v/"))]
        if bad or set(ck.opt_m) != set(ck.opt_v):
            raise UserError(f"{opt_path}: tensors must be m/<param> and v/<param> pairs (found {bad[:1] or 'unpaired names'})")
    return ck


def _legacy_pack(tensors: Dict[str, np.ndarray], start: int):
    entries, chunks, off = [], [], start
    for name, a in tensors.items():
        dtype = "int32" if a.dtype.kind in "iu" else "float32"
        raw = np.ascontiguousarray(a, dtype=_LEGACY_DTYPES[dtype]).tobytes()
        entries.append({"name": name, "shape": list(a.shape), "dtype": dtype, "offset": off, "length": len(raw)})
        chunks.append(raw)
        off += len(raw)
    return entries, chunks, off


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(folder: str, ck: Checkpoint, fmt: int = FORMAT_SAFETENSORS) -> None:
    """Writes ``ck`` as a checkpoint folder (replacing an earlier checkpoint there atomically).

    fmt 2 writes config.json + model.safetensors (+ optimizer.safetensors); fmt 1 the legacy config.json index +
    weights.bin (+ optimizer.bin). Refuses (UserError) to replace a folder that is not a checkpoint.
    """
    target = os.path.abspath(folder)
    if os.path.exists(target) and not (os.path.isdir(target) and (not os.listdir(target) or os.path.exists(os.path.join(target, "config.json")))):
        raise UserError(f"{folder}: exists and is not a checkpoint folder (refusing to replace it)")
    tmp = f"{target}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    j = {"format": fmt, "kind": ck.kind, "config": ck.config, "step": int(ck.step)}
    if ck.rng is not None:
        j["rng"] = ck.rng
    if ck.extra is not None:
        j["extra"] = ck.extra
    has_opt = ck.opt_m is not None and ck.opt_v is not None
    if has_opt:
        unknown = [n for n in ck.opt_m if n not in ck.tensors]
        if unknown:
            raise ValueError(f"checkpoint: optimizer state for unknown parameter {unknown[0]}")
    try:
        if fmt == FORMAT_SAFETENSORS:
            write_safetensors(os.path.join(tmp, "model.safetensors"), {k: np.asarray(v) for k, v in ck.tensors.items()})
            if has_opt:
                moments = {f"m/{k}": v for k, v in ck.opt_m.items()}
                moments.update({f"v/{k}": ck.opt_v[k] for k in ck.opt_m})
                write_safetensors(os.path.join(tmp, "optimizer.safetensors"), moments, {"step": str(int(ck.opt_step or 0))})
        elif fmt == FORMAT_LEGACY:
            entries, chunks, end = _legacy_pack(ck.tensors, 0)
            _write(os.path.join(tmp, "weights.bin"), b"".join(chunks))
            j["weights"] = {"file": "weights.bin", "bytes": end, "entries": entries}
            if has_opt:
                m_e, m_c, m_end = _legacy_pack(ck.opt_m, 0)
                v_e, v_c, v_end = _legacy_pack({k: ck.opt_v[k] for k in ck.opt_m}, m_end)
                _write(os.path.join(tmp, "optimizer.bin"), b"".join(m_c + v_c))
                j["optimizer"] = {"file": "optimizer.bin", "step": int(ck.opt_step or 0), "bytes": v_end, "m": m_e, "v": v_e}
        else:
            raise ValueError(f"checkpoint: unknown format {fmt}")
        _write(os.path.join(tmp, "config.json"), (json.dumps(j, indent=1) + "\n").encode("utf-8"))
        old = None
        if os.path.exists(target):
            old = f"{target}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
        os.rename(tmp, target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{folder}: could not save checkpoint ({e.strerror or e})") from None
