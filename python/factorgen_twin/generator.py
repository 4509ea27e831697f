"""The generator twin: factorgen's factorized AR generator (packages/generator/src: config, gpt, layers, head, model)
in PyTorch, the same computation op for op (up to float32 summation order).

Backbone: LlamaGen's c2i GPT (https://github.com/FoundationVision/LlamaGen, autoregressive/models/gpt.py) with
factorgen's differences: K sub-token embeddings concatenated and projected (``tok_proj``), RMSNorm eps 1e-6, rotary
embedding in the rotate-half layout with 2-D (row, column) or 1-D (raster) angles and, for the class token, the
identity rotation or cos = sin = 0 (config ``classRope``), separate dropout on embeddings and on each residual branch, no attention dropout.
Head: FQGAN's factorized AR head (FAR): a small causal transformer over the K slots [proj(h_t), emb_0(c_0), ...,
emb_{K-2}(c_{K-2})] with learned slot embeddings, or K independent linear heads ('parallel').

Attention is written out (matmul, additive -1e9 causal mask, softmax) so that it runs on PyTorch 1.13 and 2.x alike
(no scaled_dot_product_attention) and matches factorgen's op order.
Shapes: B batch, T = gridH*gridW positions, K sub-codebooks, C width, dh = C / heads.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

KV = Tuple[torch.Tensor, torch.Tensor]  # keys, values: [B, heads, t, dh]


def validate_config(cfg: dict) -> None:
    """Checks the fields the twin relies on (factorgen's validateGeneratorConfig is the full check); ValueError names one."""
    for f in ("gridH", "gridW", "numClasses", "width", "depth", "heads", "mlpHidden", "headLayers", "headWidth", "headHeads", "headMlpHidden"):
        if not (isinstance(cfg.get(f), int) and cfg[f] >= 1):
            raise ValueError(f"generator config: {f} must be a positive integer (got {cfg.get(f)!r})")
    if cfg.get("headMode") not in ("ar", "parallel"):
        raise ValueError(f"generator config: headMode must be 'ar' or 'parallel' (got {cfg.get('headMode')!r})")
    if cfg.get("rope") not in ("1d", "2d"):
        raise ValueError(f"generator config: rope must be '1d' or '2d' (got {cfg.get('rope')!r})")
    if cfg.get("classRope", "identity") not in ("identity", "zero"):
        raise ValueError(f"generator config: classRope must be 'identity' or 'zero' (got {cfg.get('classRope')!r})")
    if cfg["width"] % cfg["heads"] or cfg["headWidth"] % cfg["headHeads"]:
        raise ValueError("generator config: heads must divide width and headHeads must divide headWidth")


def rope_table(mode: str, grid_h: int, grid_w: int, head_dim: int, base: float = 10000.0,
               class_rope: str = "identity") -> Tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, head_dim] for the backbone's input sequence [class, x_0, ..., x_{T-2}] (factorgen's backboneRope).

    Position 0 (the class token) gets cos = 1, sin = 0 (``class_rope`` 'identity': q and k pass unrotated) or
    cos = sin = 0 ('zero': LlamaGen's precompute_freqs_cis_2d cls rows; q and k of the class token become 0); position p >= 1 holds x_{p-1} and turns by its raster index
    ('1d') or by its row (first head_dim/4 channel pairs) and column (the rest) ('2d'). Pair j of an axis with n pairs
    turns at base^(-j/n) per step. Rotate-half layout: row p is [cos(theta_p) | cos(theta_p)]. Angles in float64, then
    float32 (as factorgen's Float32Array tables).
    """
    length = grid_h * grid_w
    half = head_dim // 2
    axis_pairs = half // 2 if mode == "2d" else half
    ang = torch.zeros(length, half, dtype=torch.float64)
    m = torch.arange(half)
    j = m % axis_pairs if mode == "2d" else m
    freq = torch.pow(torch.tensor(base, dtype=torch.float64), (-2.0 * j.double()) / (2 * axis_pairs))
    for p in range(1, length):
        idx = p - 1
        if mode == "1d":
            coord = torch.full((half,), float(idx), dtype=torch.float64)
        else:
            coord = torch.where(m < axis_pairs, torch.tensor(float(idx // grid_w)), torch.tensor(float(idx % grid_w))).double()
        ang[p] = coord * freq
    cos, sin = torch.cos(ang), torch.sin(ang)
    if class_rope == "zero":
        cos[0], sin[0] = 0.0, 0.0
    return torch.cat([cos, cos], 1).float(), torch.cat([sin, sin], 1).float()


class Dropout(nn.Module):
    """Dropout whose masks can come from a keyed source (``keyed(x, p)``, installed by the trainer so that masks follow
    the global sample index under DDP); torch's own dropout otherwise. Identity in eval mode or at p = 0."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.keyed = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        return self.keyed(x, self.p) if self.keyed is not None else F.dropout(x, self.p, True)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """concat(-x2, x1) for x = concat(x1, x2) on the last axis."""
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * weight over the last axis (factorgen's rmsNorm, eps 1e-6)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, -1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    """Causal multi-head self-attention with a KV cache; q, k, v fused in ``wqkv`` (LlamaGen's layout: rows q, k, v)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, rope: Optional[Tuple[torch.Tensor, torch.Tensor]], past: Optional[KV]) -> Tuple[torch.Tensor, KV]:
        """x: [B, L, C] new positions, rope: cos/sin [L, dh] or None, past: cached k, v -> y [B, L, C], (k, v) of all positions."""
        B, L, C = x.shape
        dh = C // self.heads
        q, k, v = self.wqkv(x).view(B, L, 3, self.heads, dh).permute(2, 0, 3, 1, 4)  # 3 x [B, heads, L, dh]
        if rope is not None:
            cos, sin = rope
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        past_len = 0
        if past is not None:
            past_len = past[0].shape[2]
            k = torch.cat([past[0], k], 2)
            v = torch.cat([past[1], v], 2)
        scores = torch.matmul(q * (1.0 / math.sqrt(dh)), k.transpose(-1, -2))  # [B, heads, L, t+L]
        if L > 1:
            i = torch.arange(L, device=x.device)[:, None] + past_len
            j = torch.arange(past_len + L, device=x.device)[None, :]
            scores = scores + torch.where(j > i, torch.tensor(-1e9, device=x.device), torch.tensor(0.0, device=x.device)).to(scores.dtype)
        ctx = torch.matmul(torch.softmax(scores, -1), v)
        return self.wo(ctx.transpose(1, 2).reshape(B, L, C)), (k, v)


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x) (LlamaGen's names: w1 gate, w3 up, w2 down)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm block: h = x + drop(attn(norm(x))), y = h + drop(ffn(norm(h)))."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.attention_norm = RMSNorm(dim)
        self.attention = Attention(dim, heads)
        self.ffn_norm = RMSNorm(dim)
        self.feed_forward = FeedForward(dim, hidden)
        self.drop = Dropout(dropout)

    def forward(self, x, rope, past: Optional[KV]):
        a, kv = self.attention(self.attention_norm(x), rope, past)
        h = x + self.drop(a)
        return h + self.drop(self.feed_forward(self.ffn_norm(h))), kv


class LabelEmbedder(nn.Module):
    """Class embedding table [numClasses + 1, C]; row numClasses is the null class (LlamaGen's cls_embedding)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels).unsqueeze(1)


class Generator(nn.Module):
    """factorgen's generator. ``cfg`` is the checkpoint's config dict (GeneratorConfig) verbatim."""

    def __init__(self, cfg: dict):
        super().__init__()
        validate_config(cfg)
        self.cfg = dict(cfg)
        Vs = cfg["subCodebookSizes"]
        K, C = len(Vs), cfg["width"]
        e = C // K
        self.K, self.T = K, cfg["gridH"] * cfg["gridW"]
        self.tok_embeddings = nn.ModuleList([nn.Embedding(V, e) for V in Vs])
        self.tok_proj = nn.Linear(K * e, C, bias=False)
        self.cls_embedding = LabelEmbedder(cfg["numClasses"], C)
        self.tok_dropout = Dropout(cfg["dropout"])
        self.layers = nn.ModuleList([TransformerBlock(C, cfg["heads"], cfg["mlpHidden"], cfg["dropout"]) for _ in range(cfg["depth"])])
        self.norm = RMSNorm(C)
        self.head = FactorizedHead(cfg)
        cos, sin = rope_table(cfg["rope"], cfg["gridH"], cfg["gridW"], C // cfg["heads"], class_rope=cfg.get("classRope", "identity"))
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: int [R, L, K] -> [R, L, C] (concat of the K sub-token embeddings, projected)."""
        parts = [emb(tokens[..., k]) for k, emb in enumerate(self.tok_embeddings)]
        return self.tok_proj(torch.cat(parts, -1) if len(parts) > 1 else parts[0])

    def backbone(self, x: torch.Tensor, start: int, cache: Optional[List[KV]]) -> Tuple[torch.Tensor, List[KV]]:
        """The backbone on input positions start..start+L-1 of [class, x_0, ..., x_{T-2}]. x: [R, L, C] -> h [R, L, C], cache."""
        L = x.shape[1]
        rope = (self.rope_cos[start : start + L], self.rope_sin[start : start + L])
        y = self.tok_dropout(x)
        nxt = []
        for i, layer in enumerate(self.layers):
            y, kv = layer(y, rope, cache[i] if cache else None)
            nxt.append(kv)
        return self.norm(y), nxt

    def hidden(self, tokens: torch.Tensor, labels: torch.Tensor) -> List[torch.Tensor]:
        """Teacher-forced hidden states (factorgen's generatorHidden, labels already dropped as wanted).
        tokens: int [B, T, K], labels: int [B] in [0, numClasses] -> K tensors [B*T, d] feeding head.output[k]."""
        B = tokens.shape[0]
        x = self.cls_embedding(labels)
        if self.T > 1:
            x = torch.cat([x, self.embed_tokens(tokens[:, : self.T - 1])], 1)
        h, _ = self.backbone(x, 0, None)
        return self.head.teacher_forced_hidden(h.reshape(B * self.T, -1), tokens.reshape(B * self.T, self.K))

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> List[torch.Tensor]:
        """Teacher-forced logits: K tensors [B, T, V_k] (factorgen's generatorLogits)."""
        B = tokens.shape[0]
        return [self.head.output[k](x).view(B, self.T, -1) for k, x in enumerate(self.hidden(tokens, labels))]

    def loss(self, tokens: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor]]:
        """factorgen's generatorLoss: mean over k of the mean cross-entropy over B*T rows; also each sub-loss and accuracy
        (argmax = target; first index on ties, as torch.argmax). The twin's DDP trainer uses ``loss_sums`` instead."""
        targets = tokens.reshape(-1, self.K)
        subs, accs = [], []
        for k, x in enumerate(self.hidden(tokens, labels)):
            logits = self.head.output[k](x)
            subs.append(F.cross_entropy(logits, targets[:, k]))
            accs.append((logits.argmax(-1) == targets[:, k]).float().mean())
        return torch.stack(subs).mean(), subs, accs


class FactorizedHead(nn.Module):
    """FQGAN's FAR head ('ar') or K independent linear heads ('parallel'); ``output[k]`` maps to sub-codebook k's logits."""

    def __init__(self, cfg: dict):
        super().__init__()
        Vs = cfg["subCodebookSizes"]
        K = len(Vs)
        self.mode = cfg["headMode"]
        self.K = K
        if self.mode == "parallel":
            self.output = nn.ModuleList([nn.Linear(cfg["width"], V) for V in Vs])
            return
        hw = cfg["headWidth"]
        self.in_proj = nn.Linear(cfg["width"], hw, bias=False) if hw != cfg["width"] else None
        self.sub_embeddings = nn.ModuleList([nn.Embedding(Vs[k], hw) for k in range(K - 1)])
        self.slot_pos = nn.Parameter(torch.zeros(K, hw))
        self.drop = Dropout(cfg["dropout"])
        self.layers = nn.ModuleList(
            [TransformerBlock(hw, cfg["headHeads"], cfg["headMlpHidden"], cfg["dropout"]) for _ in range(cfg["headLayers"])]
        )
        self.norm = RMSNorm(hw)
        self.output = nn.ModuleList([nn.Linear(hw, V) for V in Vs])

    def slots(self, start: int, h: Optional[torch.Tensor], sub: Optional[torch.Tensor]) -> torch.Tensor:
        """Inputs of slots start..start+L-1 (factorgen's headSlots). h: [N, width] (slot 0, iff start = 0); sub: int [N, n],
        column i feeding slot max(start, 1) + i. -> [N, L, headWidth] with the slot embeddings added."""
        parts = []
        if start == 0:
            parts.append((self.in_proj(h) if self.in_proj is not None else h).unsqueeze(1))
        if sub is not None:
            first = max(start, 1)
            for i in range(sub.shape[1]):
                parts.append(self.sub_embeddings[first + i - 1](sub[:, i]).unsqueeze(1))
        x = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        return x + self.slot_pos[start : start + x.shape[1]]

    def transformer(self, x: torch.Tensor, cache: Optional[List[KV]]) -> Tuple[torch.Tensor, List[KV]]:
        """The head's blocks and final norm (no rotary embedding). x: [N, L, hw] -> normed [N, L, hw], cache."""
        y = self.drop(x)
        nxt = []
        for i, layer in enumerate(self.layers):
            y, kv = layer(y, None, cache[i] if cache else None)
            nxt.append(kv)
        return self.norm(y), nxt

    def teacher_forced_hidden(self, h: torch.Tensor, tokens: torch.Tensor) -> List[torch.Tensor]:
        """h: [N, width], tokens: int [N, K] (targets; the first K-1 feed the slots) -> K tensors [N, d]."""
        if self.mode == "parallel":
            return [h] * self.K
        y, _ = self.transformer(self.slots(0, h, tokens[:, : self.K - 1] if self.K > 1 else None), None)
        return [y[:, k] for k in range(self.K)]
