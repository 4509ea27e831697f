"""The twin's CFG sampler with KV caches (factorgen's packages/generator/src/sampler.ts: decode, chooseToken).

Rows are [cond (B); null class (B)] when cfg_scale != 1; each picked token is written to both halves. Guided logits are
combined and drawn on the host in float64 with factorgen's Rng (alea), in the order position, sub-codebook, image, so
given the same logits the twin draws the same tokens as factorgen.
"""
from typing import Callable, List, Optional

import numpy as np
import torch

from .generator import Generator
from .rng import Rng


def cfg_combine(cond: np.ndarray, uncond: np.ndarray, scale: float) -> np.ndarray:
    """uncond + scale * (cond - uncond) in float64, +-inf clamped to +-max float (scale 1: an exact copy of cond)."""
    if scale == 1:
        return cond.astype(np.float64)
    g = uncond.astype(np.float64) + scale * (cond.astype(np.float64) - uncond.astype(np.float64))
    return np.clip(g, -np.finfo(np.float64).max, np.finfo(np.float64).max)


def _softmax64(l: np.ndarray) -> np.ndarray:
    mx = np.max(l)
    p = np.where(l == -np.inf, 0.0, np.exp(l - mx))
    return p / p.sum()


def choose_token(logits: np.ndarray, temperature: float, top_k: int, top_p: float, rng: Rng) -> int:
    """factorgen's chooseToken: top-k (ties kept), temperature on (l - max), top-p (1e-9 slack), one rng.next() draw.
    temperature <= 0 is greedy (first argmax, no draw)."""
    if np.isnan(logits).any():
        raise ValueError("sample: the generator produced a NaN logit (its weights hold NaN or Infinity)")
    best = int(np.argmax(logits))
    if temperature <= 0:
        return best
    l = logits.astype(np.float64).copy()
    if 0 < top_k < len(l):
        kth = np.sort(l)[len(l) - top_k]
        l[~(l >= kth)] = -np.inf
    mx = min(l[best], np.finfo(np.float64).max)
    fin = l != -np.inf
    l[fin] = (np.minimum(l[fin], np.finfo(np.float64).max) - mx) / temperature
    if top_p < 1:
        probs = _softmax64(l)
        order = sorted(range(len(l)), key=lambda i: -probs[i])  # stable, as JS sort
        mass, last_kept = 0.0, l[order[0]]
        for i, o in enumerate(order):
            if i > 0 and not (mass < top_p - 1e-9):
                break
            last_kept = l[o]
            mass += probs[o]
        l[~(l >= last_kept)] = -np.inf
    probs = _softmax64(l)
    u = rng.next()
    acc, last = 0.0, 0
    for i, p in enumerate(probs):
        if p == 0:
            continue
        acc += p
        last = i
        if u < acc:
            return i
    return last


Picker = Callable[[int, int, np.ndarray], np.ndarray]


@torch.no_grad()
def decode(model: Generator, labels: List[int], cfg_scale: float, use_cache: bool, pick: Picker) -> np.ndarray:
    """The decoding loop: returns tokens int64 [B, T, K]. pick(t, k, guided [B, V_k] float64) -> [B] chosen ids."""
    model.eval()
    dev = next(model.parameters()).device
    T, K, B = model.T, model.K, len(labels)
    guided = cfg_scale != 1
    R = 2 * B if guided else B
    row_labels = torch.tensor(list(labels) + ([model.cfg["numClasses"]] * B if guided else []), device=dev)
    out = np.zeros((B, T, K), dtype=np.int64)
    rows = lambda a: torch.from_numpy(np.concatenate([a, a], 0) if guided else a).to(dev)
    head = model.head
    cache = None
    for t in range(T):
        if not use_cache:
            x = model.cls_embedding(row_labels)
            if t > 0:
                x = torch.cat([x, model.embed_tokens(rows(out[:, :t]))], 1)
            h = model.backbone(x, 0, None)[0][:, t]
        else:
            x = model.cls_embedding(row_labels) if t == 0 else model.embed_tokens(rows(out[:, t - 1 : t]))
            hh, cache = model.backbone(x, t, cache)
            h = hh[:, 0]
        hcache = None
        for k in range(K):
            if head.mode == "parallel":
                logits = head.output[k](h)
            elif not use_cache:
                y, _ = head.transformer(head.slots(0, h, rows(out[:, t, :k]) if k > 0 else None), None)
                logits = head.output[k](y[:, k])
            else:
                x = head.slots(0, h, None) if k == 0 else head.slots(k, None, rows(out[:, t, k - 1 : k]))
                y, hcache = head.transformer(x, hcache)
                logits = head.output[k](y[:, 0])
            all_ = logits.float().cpu().numpy()
            g = cfg_combine(all_[:B], all_[B:], cfg_scale) if guided else all_.astype(np.float64)
            out[:, t, k] = pick(t, k, g)
    return out


def sample(model: Generator, labels: List[int], cfg_scale: float = 1.0, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0, rng: Optional[Rng] = None, use_cache: bool = True) -> np.ndarray:
    """Samples B token grids -> int64 [B, T, K]; labels in [0, numClasses] (numClasses = unconditional)."""
    rng = rng or Rng("0")

    def pick(t, k, g):
        return np.array([choose_token(g[b], temperature, top_k, top_p, rng) for b in range(g.shape[0])])

    return decode(model, labels, cfg_scale, use_cache, pick)


def forced_step_logits(model: Generator, tokens: np.ndarray, labels: List[int], cfg_scale: float, use_cache: bool) -> List[List[np.ndarray]]:
    """Feeds ``tokens`` [B, T, K] through the decoding loop; trace[t][k] = guided logits [B, V_k] (factorgen's forcedStepLogits)."""
    trace: List[List[np.ndarray]] = [[None] * model.K for _ in range(model.T)]

    def pick(t, k, g):
        trace[t][k] = g
        return tokens[:, t, k]

    decode(model, labels, cfg_scale, use_cache, pick)
    return trace
