"""The one mapping between factorgen's tensor names/layouts and the generator twin's state_dict (documented in
python/README.md, "Name mapping"; keep the two in step).

factorgen stores dense kernels [in, out] (tfjs), PyTorch's nn.Linear holds [out, in]: every dense kernel is
transposed. Attention q, k, v ([C, C] each) become one LlamaGen-style ``wqkv`` [3C, C] (rows q, then k, then v).
Embedding tables, norm weights, biases and the slot embeddings keep their layout. AdamW moments convert exactly like
the parameters they belong to (Adam is elementwise), and EMA weights (``ema/<name>``) like the weights.
"""
import re
from typing import Dict, List, Tuple

import numpy as np
import torch

# (factorgen pattern, twin pattern, transposed) for the one-to-one tensors; {i} a block, {k} a sub-codebook.
_BLOCK = [
    ("norm1", "attention_norm.weight", False),
    ("attn/out", "attention.wo.weight", True),
    ("norm2", "ffn_norm.weight", False),
    ("mlp/gate", "feed_forward.w1.weight", True),
    ("mlp/up", "feed_forward.w3.weight", True),
    ("mlp/down", "feed_forward.w2.weight", True),
]
RULES: List[Tuple[str, str, bool]] = (
    [
        ("gpt/tok{k}", "tok_embeddings.{k}.weight", False),
        ("gpt/inProj", "tok_proj.weight", True),
        ("gpt/cls", "cls_embedding.embedding_table.weight", False),
    ]
    + [(f"gpt/block{{i}}/{a}", f"layers.{{i}}.{b}", t) for a, b, t in _BLOCK]
    + [
        ("gpt/normOut", "norm.weight", False),
        ("head/inProj", "head.in_proj.weight", True),
        ("head/emb{k}", "head.sub_embeddings.{k}.weight", False),
        ("head/slotPos", "head.slot_pos", False),
    ]
    + [(f"head/block{{i}}/{a}", f"head.layers.{{i}}.{b}", t) for a, b, t in _BLOCK]
    + [
        ("head/normOut", "head.norm.weight", False),
        ("head/out{k}/w", "head.output.{k}.weight", True),
        ("head/out{k}/b", "head.output.{k}.bias", False),
    ]
)
# The fused one: gpt/block{i}/attn/{q,k,v} <-> layers.{i}.attention.wqkv.weight (and the same under head/ and head.).
QKV = [("gpt/block{i}/attn/", "layers.{i}.attention.wqkv.weight"), ("head/block{i}/attn/", "head.layers.{i}.attention.wqkv.weight")]


def _regex(pattern: str) -> "re.Pattern[str]":
    return re.compile("^" + re.escape(pattern).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{k\}", r"(?P<k>\d+)") + "$")


_COMPILED = [(_regex(a), b, t) for a, b, t in RULES]
_QKV = [(_regex(a + "q"), a, b) for a, b in QKV]


def factorgen_names(cfg: dict) -> List[str]:
    """Every parameter name of a generator with config ``cfg``, in factorgen's creation order (createBackboneParams, then
    createHeadParams)."""
    K = len(cfg["subCodebookSizes"])
    blk = lambda p: [f"{p}/norm1", f"{p}/attn/q", f"{p}/attn/k", f"{p}/attn/v", f"{p}/attn/out", f"{p}/norm2", f"{p}/mlp/gate", f"{p}/mlp/up", f"{p}/mlp/down"]
    names = [f"gpt/tok{k}" for k in range(K)] + ["gpt/inProj", "gpt/cls"]
    for i in range(cfg["depth"]):
        names += blk(f"gpt/block{i}")
    names.append("gpt/normOut")
    if cfg["headMode"] == "parallel":
        for k in range(K):
            names += [f"head/out{k}/w", f"head/out{k}/b"]
        return names
    if cfg["headWidth"] != cfg["width"]:
        names.append("head/inProj")
    names += [f"head/emb{k}" for k in range(K - 1)] + ["head/slotPos"]
    for i in range(cfg["headLayers"]):
        names += blk(f"head/block{i}")
    names.append("head/normOut")
    for k in range(K):
        names += [f"head/out{k}/w", f"head/out{k}/b"]
    return names


def _fill(pattern: str, m: "re.Match[str]") -> str:
    d = m.groupdict()
    return pattern.replace("{i}", d.get("i") or "").replace("{k}", d.get("k") or "")


def to_twin(tensors: Dict[str, np.ndarray], cfg: dict, where: str) -> Dict[str, torch.Tensor]:
    """factorgen tensors (names as in ``factorgen_names(cfg)``, tfjs layouts) -> the twin's state_dict.
    Raises ValueError naming ``where`` and the first missing or unexpected tensor."""
    expected = factorgen_names(cfg)
    missing = [n for n in expected if n not in tensors]
    extra = [n for n in tensors if n not in set(expected)]
    if missing or extra:
        raise ValueError(f"{where}: " + (f"missing tensor {missing[0]}" if missing else f"unexpected tensor {extra[0]}") + " for this generator config")
    out: Dict[str, torch.Tensor] = {}
    for name in expected:
        a = tensors[name]
        for rx, a_pat, b_pat in _QKV:
            m = rx.match(name)
            if m:
                base = _fill(a_pat, m)
                w = np.concatenate([tensors[base + "q"].T, tensors[base + "k"].T, tensors[base + "v"].T], 0)
                out[_fill(b_pat, m)] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        if name.endswith(("/attn/q", "/attn/k", "/attn/v")):
            continue
        for rx, twin, transposed in _COMPILED:
            m = rx.match(name)
            if m:
                out[_fill(twin, m)] = torch.from_numpy(np.ascontiguousarray(a.T if transposed else a, dtype=np.float32))
                break
        else:
            raise ValueError(f"{where}: no twin name for tensor {name}")
    return out


def from_twin(state: Dict[str, torch.Tensor], cfg: dict) -> Dict[str, np.ndarray]:
    """The twin's state_dict -> factorgen tensors (tfjs layouts, float32) in factorgen's creation order."""
    out: Dict[str, np.ndarray] = {}
    for name in factorgen_names(cfg):
        done = False
        for a_pat, b_pat in QKV:
            for j, s in enumerate("qkv"):
                m = _regex(a_pat + s).match(name)
                if m:
                    w = state[_fill(b_pat, m)].detach().cpu().float().numpy()
                    C = w.shape[1]
                    out[name] = np.ascontiguousarray(w[j * C : (j + 1) * C].T)
                    done = True
        if done:
            continue
        for rx, twin, transposed in _COMPILED:
            m = rx.match(name)
            if m:
                a = state[_fill(twin, m)].detach().cpu().float().numpy()
                out[name] = np.ascontiguousarray(a.T if transposed else a)
                break
        else:
            raise ValueError(f"no twin name for tensor {name}")
    return out


def markdown_table() -> str:
    """The mapping as a markdown table (python/README.md embeds its output)."""
    rows = ["| factorgen tensor (tfjs layout) | twin state_dict key (PyTorch layout) | conversion |", "|---|---|---|"]
    for a_pat, b_pat in QKV:
        rows.append(f"| `{a_pat}q`, `{a_pat}k`, `{a_pat}v` [C, C] each | `{b_pat}` [3C, C] | transpose each, stack rows q, k, v |")
    for a, b, t in RULES:
        rows.append(f"| `{a}` | `{b}` | {'transpose ([in, out] -> [out, in])' if t else 'as is'} |")
    return "\n".join(rows)
