"""The tokenizer twin's training pass: factorgen's tokenizerForward with every loss (packages/tokenizer/src: model.ts,
codebook.ts, fq.ts, vq.ts, disentangle.ts, perceptual.ts, align.ts, alignHead.ts, teacher.ts, discriminator.ts), in
PyTorch on NCHW images.

Terms, each already times its config weight (model.ts): recon = mean((recon - x)^2); codebook = sum_k
mean((sg(z_k) - q_k)^2); commitment = beta sum_k mean((z_k - sg(q_k))^2) (mean over k instead of the sum when
quantizer.lossOverK is 'mean', UniTok); entropy = entropyWeight sum_k [mean_n H(p_n) - H(mean_n p_n)] with p_n =
softmax(cos(z_n, c) / T) (T = cosineEntropyTemperature); disentangle (FQGAN) = weight x mean over equal-dim pairs of
mean cos^2; perceptual = weight x featureDistance(teacher(x), teacher(recon)); align = the older symmetric InfoNCE
(align.ts) plus FQGAN's one-directional InfoNCE per alignment target (alignHead.ts); the trainer adds the PatchGAN
hinge term (adversarial) from its start step.

Global batch under torchrun: the batch mean of the code distribution (entropy) and the InfoNCE logits (alignment)
couple the samples of a batch, so they are computed over the global batch: column sums of p are all-reduced and the
alignment predictions and teacher embeddings all-gathered. Every rank then holds the same global term; its backward
passes each rank the gradient of its own rows times the world size, which DDP's gradient average turns back into the
one-process gradient (the per-sample means of the other terms need nothing: a rank's local mean is W times its share).
"""
import contextlib
import math
import os
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .checkpoint import load_checkpoint
from .tokenizer import P, Tokenizer, conv, dense, gelu_tanh, group_norm, l2n, swish, to_torch


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherRows(torch.autograd.Function):
    """All ranks' rows concatenated in rank order (the global batch); backward: this rank's rows of the gradient times W."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rows, ctx.rank, ctx.world = x.shape[0], rank, world
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows] * ctx.world


class _AllReduceSum(torch.autograd.Function):
    """The sum over ranks; backward: the (replicated) gradient times W (see the module docstring)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        y = x.clone()
        dist.all_reduce(y)
        ctx.world = dist.get_world_size()
        return y

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g * ctx.world


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """[b, ...] on each of W ranks -> [W b, ...] (the global batch, rank 0's rows first); x itself on one process."""
    return _GatherRows.apply(x) if _world() > 1 else x


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x) if _world() > 1 else x


@torch.no_grad()
def gather_plain(x: torch.Tensor) -> torch.Tensor:
    """All ranks' rows in rank order, without gradient (indices, codes for dead-code restarts)."""
    if _world() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(_world())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, 0)


class _StraightThrough(torch.autograd.Function):
    """factorgen's straightThrough: the value is exactly q (decoding tokens reproduces the pass), the gradient goes to z."""

    @staticmethod
    def forward(ctx, z, q):  # type: ignore[override]
        return q.clone()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g, None


def layer_norm(p: P, name: str, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], p[f"{name}/gamma"], p[f"{name}/beta"], eps)


class Teacher:
    """factorgen's embedded teacher (teacher.ts teacherForward), frozen: stage i = conv (stride 2 for i > 0) - GN - swish -
    conv - GN - swish; embedding = dense(mean over positions). Loaded from a `factorgen teacher train` run."""

    def __init__(self, cfg: dict, tensors: Dict[str, np.ndarray], device):
        self.cfg = cfg
        self.embed_dim = cfg["embedDim"]
        self.p = {k: v.to(device) for k, v in to_torch(tensors).items()}

    @staticmethod
    def load(folder: str, device) -> "Teacher":
        """A `factorgen teacher train` run folder (its checkpoint/) or the checkpoint folder itself, as factorgen takes."""
        if not os.path.exists(os.path.join(folder, "config.json")) and os.path.exists(os.path.join(folder, "checkpoint", "config.json")):
            folder = os.path.join(folder, "checkpoint")
        ck = load_checkpoint(folder, "teacher", with_optimizer=False)
        return Teacher(ck.config, ck.tensors, device)

    def run(self, x: torch.Tensor):
        """x NCHW -> (embedding [B, E] without gradient, feature maps NCHW that keep the gradient path to x)."""
        g, h, feats = self.cfg["normGroups"], x, []
        for i in range(len(self.cfg["widths"])):
            h = swish(group_norm(self.p, f"teacher/s{i}/norm1", conv(self.p, f"teacher/s{i}/conv1", h, 2 if i > 0 else 1), g))
            h = swish(group_norm(self.p, f"teacher/s{i}/norm2", conv(self.p, f"teacher/s{i}/conv2", h), g))
            feats.append(h)
        emb = dense(self.p, "teacher/embed", h.mean((2, 3)))
        return emb.detach(), feats


def feature_distance(a: List[torch.Tensor], b: List[torch.Tensor]) -> torch.Tensor:
    """perceptual.ts featureDistance: per map, mean over (B, h, w) of the squared distance of the unit channel vectors; mean over maps."""
    per = [torch.sum((l2n(fa.permute(0, 2, 3, 1)) - l2n(fb.permute(0, 2, 3, 1))) ** 2, -1).mean() for fa, fb in zip(a, b)]
    return torch.stack(per).mean()


def entropy_global(z: torch.Tensor, codes: torch.Tensor, temperature: float) -> torch.Tensor:
    """codebook.ts entropyLoss over the global batch: mean_n H(p_n) (this rank's rows) - H(mean_n p_n) (all ranks' rows,
    log(avg + 1e-5)). z [n, d], codes [V, d] normalized."""
    logp = torch.log_softmax(torch.matmul(z, codes.t()) / temperature, -1)
    p = torch.exp(logp)
    sample_h = -(p * logp).sum(1).mean()
    n_global = z.shape[0] * _world()
    avg = all_reduce_sum(p.sum(0)) / n_global
    return sample_h - (-(avg * torch.log(avg + 1e-5)).sum())


def info_nce_symmetric(pred: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """align.ts infoNCE (CLIP style, both directions), over the rows given."""
    logits = torch.matmul(l2n(pred), l2n(teacher.detach()).t()) / temperature
    B = pred.shape[0]
    eye = torch.eye(B, device=pred.device)
    row = -(torch.log_softmax(logits, 1) * eye).sum() / B
    col = -(torch.log_softmax(logits.t(), 1) * eye).sum() / B
    return (row + col) * 0.5


def info_nce_fqgan(pred: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """alignHead.ts fqganInfoNCE: M = exp(p t^T), -mean_i log(M_ii / sum_j M_ij)."""
    m = torch.exp(torch.matmul(l2n(pred), l2n(teacher.detach()).t()))
    diag = torch.diagonal(m)
    return -torch.log(diag / m.sum(1)).mean()


def align_target_predict(p: P, t: dict, i: int, code: torch.Tensor) -> torch.Tensor:
    """alignHead.ts alignTargetPredict: code [B, h, w, d] -> the class token's output [B, teacherDim]."""
    pre = f"align/t{i}"
    B, h, w, _ = code.shape
    W = t["teacherDim"]
    x = dense(p, f"{pre}/up2", torch.relu(dense(p, f"{pre}/up1", code))).reshape(B, h * w, W)
    cls = p[f"{pre}/cls"].reshape(1, 1, W).expand(B, 1, W)
    x = layer_norm(p, f"{pre}/ln_pre", torch.cat([cls, x], 1) + p[f"{pre}/pos"])
    heads = t["heads"]
    dh = W // heads
    L = x.shape[1]
    for l in range(t["layers"]):
        b = f"{pre}/block{l}"
        a = layer_norm(p, f"{b}/ln1", x)
        q, k, v = (dense(p, f"{b}/{n}", a).reshape(B, L, heads, dh).transpose(1, 2) for n in "qkv")
        att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1 / math.sqrt(dh)), -1)
        x = x + dense(p, f"{b}/out", torch.matmul(att, v).transpose(1, 2).reshape(B, L, W))
        x = x + dense(p, f"{b}/proj", gelu_tanh(dense(p, f"{b}/fc", layer_norm(p, f"{b}/ln2", x))))
    return layer_norm(p, f"{pre}/ln_post", x)[:, 0]


def disentangle(codes: List[torch.Tensor], weight: float) -> torch.Tensor:
    """disentangle.ts: weight x mean over pairs of equal dims of mean(cos^2)."""
    terms = []
    for i in range(len(codes)):
        for j in range(i + 1, len(codes)):
            if codes[i].shape[-1] == codes[j].shape[-1]:
                terms.append(((l2n(codes[i]) * l2n(codes[j])).sum(-1) ** 2).mean())
    if weight == 0 or not terms:
        return codes[0].new_zeros(())
    return torch.stack(terms).mean() * weight


def training_forward(tok: Tokenizer, x: torch.Tensor, teacher: Optional[Teacher], teachers: List[Teacher], autocast: bool = False):
    """model.ts tokenizerForward for one rank's images x [b, C, H, W] in [-1, 1]. Returns (recon NCHW unclamped, indices
    int64 [b, h, w, K], normalized codes z_k [b, h, w, d_k], loss terms dict (weighted), total). autocast (CUDA only):
    the encoder and decoder in bf16; the quantizer and every loss in float32 (cosines at temperature 1e-2 and argmax
    near-ties do not survive bf16)."""
    cfg, p = tok.cfg, tok.p
    q = cfg["quantizer"]
    temp = None
    if q["entropyWeight"] > 0:
        temp = q["entropyTemperature"] / 2 if q.get("entropyLogits") == "sq-dist" else q["entropyTemperature"]

    def ac(on: bool):
        # torch 1.13 probes CUDA even for a disabled autocast: enter one only on CUDA
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on) if x.is_cuda else contextlib.nullcontext()

    with ac(autocast):
        z = tok.codes(x)  # K normalized [b, h, w, d_k]
    with ac(False):
        z = [zk.float() for zk in z]
        zqs, idx, cb, cm, ent = [], [], [], [], []
        for k, zk in enumerate(z):
            b, h, w, d = zk.shape
            flat = zk.reshape(-1, d)
            cn = l2n(p[f"quant/k{k}/codebook"])
            with torch.no_grad():
                ik = torch.argmax(torch.matmul(flat, cn.t()), -1)
            row = cn[ik]
            cb.append(((flat.detach() - row) ** 2).mean())
            cm.append(((flat - row.detach()) ** 2).mean())
            ent.append(entropy_global(flat, cn, temp) if temp is not None else flat.new_zeros(()))
            zqs.append(_StraightThrough.apply(flat, row).reshape(b, h, w, d))
            idx.append(ik.reshape(b, h, w))
    with ac(autocast):
        recon = tok.decode_codes(torch.cat(zqs, -1))
    with ac(False):
        return _losses(tok, x, recon.float(), z, zqs, idx, cb, cm, ent, teacher, teachers)


def _losses(tok: Tokenizer, x, recon, z, zqs, idx, cb, cm, ent, teacher, teachers):
    cfg, p = tok.cfg, tok.p
    q = cfg["quantizer"]
    over_k = (lambda t: t / len(z)) if q.get("lossOverK", "sum") == "mean" else (lambda t: t)
    losses = {
        "recon": ((recon - x) ** 2).mean(),
        "codebook": over_k(torch.stack(cb).sum()),
        "commitment": over_k(torch.stack(cm).sum()) * q["beta"],
        "entropy": over_k(torch.stack(ent).sum()) * q["entropyWeight"],
        "disentangle": disentangle(zqs if q.get("disentangleOn") == "quantized" else z, q.get("disentangleWeight", 0)),
        "perceptual": x.new_zeros(()),
        "align": x.new_zeros(()),
    }
    teacher = teacher or (teachers[0] if teachers else None)
    runs: Dict[int, tuple] = {}

    def run_on_x(t: Teacher):
        if id(t) not in runs:
            runs[id(t)] = t.run(x)
        return runs[id(t)]

    align_terms = []
    a = cfg.get("align")
    want_align = a is not None and a["weight"] > 0
    if teacher is not None and (cfg["perceptualWeight"] > 0 or want_align):
        emb, feats = run_on_x(teacher)
        if cfg["perceptualWeight"] > 0:
            losses["perceptual"] = feature_distance([f.detach() for f in feats], teacher.run(recon)[1]) * cfg["perceptualWeight"]
        if want_align:
            code = zqs[a["subCodebook"]]
            pred = dense(p, "align/fc2", swish(dense(p, "align/fc1", code))).mean((1, 2))
            align_terms.append(info_nce_symmetric(gather_rows(pred), gather_plain(emb), a["temperature"]) * a["weight"])
    for i, t in enumerate(cfg.get("alignTargets") or []):
        if t["teacher"] >= len(teachers) or t["weight"] == 0:
            continue
        emb = run_on_x(teachers[t["teacher"]])[0]
        pred = align_target_predict(p, t, i, zqs[t["subCodebook"]])
        align_terms.append(info_nce_fqgan(gather_rows(pred), gather_plain(emb)) * t["weight"])
    if align_terms:
        losses["align"] = torch.stack(align_terms).sum()
    total = torch.stack(list(losses.values())).sum()
    return recon, torch.stack(idx, -1), z, losses, total


def discriminator(p: P, acfg: dict, x: torch.Tensor) -> torch.Tensor:
    """discriminator.ts: `layers` 4x4 stride-2 convs with leaky ReLU 0.2, then a 3x3 conv to one logit per patch (NCHW)."""
    h = x
    for i in range(acfg["layers"]):
        h = F.leaky_relu(conv(p, f"disc/conv{i}", h, 2), 0.2)
    return conv(p, "disc/out", h)


def d_loss_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return (torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()) * 0.5


def g_loss_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def init_tokenizer(cfg: dict, seed: str = "0") -> Dict[str, np.ndarray]:
    """Fresh encoder, quantizer and decoder weights named and shaped as factorgen's createTokenizer(cfg, seed,
    {alignHeads: false}) makes them (tfjs layouts), drawn as it draws them in distribution, not in value: kernels
    uniform in +-1/sqrt(fan-in), biases and norm shifts 0, norm scales 1, codebooks N(0, 1). For the bench and shape
    checks; a training run starts in factorgen (its seed fixes the values)."""
    import hashlib

    g = np.random.default_rng(int.from_bytes(hashlib.sha256(f"{seed}/tokenizer".encode()).digest()[:8], "little"))
    out: Dict[str, np.ndarray] = {}

    def lin(name, cin, cout):
        out[f"{name}/w"] = g.uniform(-1, 1, (cin, cout)).astype(np.float32) / np.float32(math.sqrt(cin))
        out[f"{name}/b"] = np.zeros(cout, np.float32)

    def cv(name, cin, cout, k=3):
        out[f"{name}/w"] = g.uniform(-1, 1, (k, k, cin, cout)).astype(np.float32) / np.float32(math.sqrt(k * k * cin))
        out[f"{name}/b"] = np.zeros(cout, np.float32)

    def norm(name, c):
        out[f"{name}/gamma"] = np.ones(c, np.float32)
        out[f"{name}/beta"] = np.zeros(c, np.float32)

    def res(name, cin, cout):
        norm(f"{name}/norm1", cin)
        cv(f"{name}/conv1", cin, cout)
        norm(f"{name}/norm2", cout)
        cv(f"{name}/conv2", cout, cout)
        if cin != cout:
            lin(f"{name}/skip", cin, cout)

    def attn(name, c):
        norm(f"{name}/norm", c)
        for n in ("q", "k", "v", "out"):
            lin(f"{name}/{n}", c, c)

    def attn_proj(name, i, o):
        wide = max(i, o)
        norm(f"{name}/norm1", i)
        norm(f"{name}/norm3", i)
        norm(f"{name}/norm2", o)
        lin(f"{name}/qkv", i, 3 * wide)
        lin(f"{name}/attn_proj", o, o)
        lin(f"{name}/proj", i, o)
        norm(f"{name}/mlp/norm", o)
        lin(f"{name}/mlp/w0", o, 2 * o)
        lin(f"{name}/mlp/w1", o, 2 * o)
        lin(f"{name}/mlp/w2", 2 * o, o)

    base, mult, lat = cfg["baseChannels"], cfg["channelMult"], cfg["latentChannels"]
    subs = cfg["quantizer"]["subCodebooks"]
    branched = cfg.get("factorize") == "branch"
    cin = base
    cv("encoder/conv_in", cfg["channels"], cin)
    for level, m in enumerate(mult):
        for i in range(cfg["blocksPerLevel"]):
            res(f"encoder/down{level}/res{i}", cin, base * m)
            cin = base * m
        if level < len(mult) - 1:
            cv(f"encoder/down{level}/down/conv", cin, cin)
    res("encoder/mid/res0", cin, cin)
    if cfg["attention"]:
        attn("encoder/mid/attn", cin)
    res("encoder/mid/res1", cin, cin)
    if not branched:
        norm("encoder/norm_out", cin)
        cv("encoder/conv_out", cin, lat)
    else:
        for k in range(len(subs)):
            for i in range(cfg.get("branchBlocks", 1)):
                res(f"encoder/branch{k}/res{i}", cin, cin)
                if cfg["attention"]:
                    attn(f"encoder/branch{k}/attn{i}", cin)
            norm(f"encoder/branch{k}/norm_out", cin)
            cv(f"encoder/branch{k}/conv_out", cin, lat)
    use_attn = cfg.get("quantProj") == "attn"
    for k, s in enumerate(subs):
        if not use_attn:
            lin(f"quant/k{k}/proj", lat, s["dim"])
        out[f"quant/k{k}/codebook"] = g.standard_normal((s["size"], s["dim"])).astype(np.float32)
    D = sum(s["dim"] for s in subs)
    if not use_attn:
        lin("quant/post", D, lat)
    else:
        if branched:
            for k, s in enumerate(subs):
                attn_proj(f"quant/k{k}/attn_pre", lat, s["dim"])
        else:
            attn_proj("quant/attn_pre", lat, D)
        attn_proj("quant/attn_post", D, lat)
    cin = base * mult[-1]
    cv("decoder/conv_in", lat, cin)
    res("decoder/mid/res0", cin, cin)
    if cfg["attention"]:
        attn("decoder/mid/attn", cin)
    res("decoder/mid/res1", cin, cin)
    for level in range(len(mult) - 1, -1, -1):
        for i in range(cfg["blocksPerLevel"]):
            res(f"decoder/up{level}/res{i}", cin, base * mult[level])
            cin = base * mult[level]
        if level > 0:
            cv(f"decoder/up{level}/up/conv", cin, cin)
    norm("decoder/norm_out", cin)
    cv("decoder/conv_out", cin, cfg["channels"])
    return out
