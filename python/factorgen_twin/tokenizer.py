"""The tokenizer twin, inference path: factorgen's encoder, quantizers and decoder (packages/tokenizer/src: layers,
groupNorm, encoder, decoder, codebook, fq, vq, attnProj, model) in PyTorch, NCHW.

Parameters keep factorgen's names (``encoder/down0/res0/conv1/w``...); the only conversion is the layout (see
``to_torch``): conv kernels [kh, kw, in, out] -> [out, in, kh, kw], dense and 1x1 kernels [in, out] -> [out, in].
Covered: VQGAN-style encoder/decoder (GroupNorm eps 1e-6, swish, single-head mid attention, stride-2 convs padded
bottom/right as TensorFlow's 'same', nearest x2 upsampling), the 'projection' and FQGAN 'branch' factorizations, the
fq and vq cosine quantizers (L2-normalized projections and codebooks, argmax of the cosine, first index on ties) with
linear or UniTok attention projections ('attn'). Training (its losses, the teacher, the alignment heads and the
PatchGAN discriminator) is tokenizer_train.py's.
"""
import math
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint

P = Dict[str, torch.Tensor]


def from_torch(tensors: P) -> Dict[str, np.ndarray]:
    """The inverse of ``to_torch``: OIHW -> HWIO, 2-D ``.../w`` [out, in] -> [in, out]; float32 numpy in factorgen's layout."""
    out: Dict[str, np.ndarray] = {}
    for n, t in tensors.items():
        t = t.detach().float().cpu()
        if t.dim() == 4:
            t = t.permute(2, 3, 1, 0)
        elif t.dim() == 2 and n.endswith("/w"):
            t = t.t()
        out[n] = np.ascontiguousarray(t.numpy(), dtype=np.float32)
    return out


def to_torch(tensors: Dict[str, np.ndarray]) -> P:
    """factorgen tokenizer tensors -> PyTorch layouts: 4-D conv kernels HWIO -> OIHW, 2-D ``.../w`` [in, out] -> [out, in];
    codebooks, norms and biases as they are."""
    out: P = {}
    for n, a in tensors.items():
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        if t.dim() == 4:
            t = t.permute(3, 2, 0, 1).contiguous()
        elif t.dim() == 2 and n.endswith("/w"):
            t = t.t().contiguous()
        out[n] = t
    return out


def conv(p: P, name: str, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """3x3 (or kxk) conv with TensorFlow 'same' padding: for stride 2 the odd pad goes bottom/right."""
    w = p[f"{name}/w"]
    k = w.shape[-1]
    H, W = x.shape[-2:]
    pads = []
    for n in (W, H):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), w, p[f"{name}/b"], stride)


def dense(p: P, name: str, x: torch.Tensor) -> torch.Tensor:
    """Dense over the last axis (x [..., in])."""
    return F.linear(x, p[f"{name}/w"], p[f"{name}/b"])


def dense_nchw(p: P, name: str, x: torch.Tensor) -> torch.Tensor:
    """1x1 conv on NCHW through the dense weights."""
    return dense(p, name, x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def group_norm(p: P, name: str, x: torch.Tensor, groups: int) -> torch.Tensor:
    """GroupNorm over (H, W, C/G) per sample and group, eps 1e-6, then gamma/beta."""
    return F.group_norm(x, groups, p[f"{name}/gamma"], p[f"{name}/beta"], 1e-6)


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def res_block(p: P, name: str, x: torch.Tensor, g: int) -> torch.Tensor:
    h = conv(p, f"{name}/conv1", swish(group_norm(p, f"{name}/norm1", x, g)))
    h = conv(p, f"{name}/conv2", swish(group_norm(p, f"{name}/norm2", h, g)))
    skip = dense_nchw(p, f"{name}/skip", x) if f"{name}/skip/w" in p else x
    return skip + h


def attn_block(p: P, name: str, x: torch.Tensor, g: int) -> torch.Tensor:
    """Single-head self-attention over the H*W positions, residual."""
    B, C, H, W = x.shape
    h = group_norm(p, f"{name}/norm", x, g).permute(0, 2, 3, 1).reshape(B, H * W, C)
    q, k, v = (dense(p, f"{name}/{n}", h) for n in "qkv")
    att = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * (1 / math.sqrt(C)), -1)
    o = dense(p, f"{name}/out", torch.matmul(att, v))
    return x + o.reshape(B, H, W, C).permute(0, 3, 1, 2)


def layer_norm(p: P, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], p[f"{name}/gamma"], p[f"{name}/beta"], eps)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def attn_projection(p: P, name: str, x: torch.Tensor, out_dim: int, causal: bool) -> torch.Tensor:
    """UniTok's AttnProjection (factorgen's attnProj.ts). x: [B, N, in] (raster order) -> [B, N, out]. causal: position i
    attends to 0..i in raster order (UniTok's first CausalAttention), else to all (its PlainAttention), as the config says (Tokenizer.causal)."""
    B, N, in_dim = x.shape
    heads = max(in_dim, out_dim) // min(in_dim, out_dim)
    wide = max(in_dim, out_dim)
    hd = wide // heads
    a = layer_norm(p, f"{name}/norm1", x, 1e-5)
    dev = x.device  # (CUDA training: the masks on the activations' device)
    bias = p[f"{name}/qkv/b"] * torch.cat([torch.ones(wide, device=dev), torch.zeros(wide, device=dev), torch.ones(wide, device=dev)])
    qkv = F.linear(a, p[f"{name}/qkv/w"], bias).view(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1 / math.sqrt(hd))
    if causal:
        scores = scores + torch.triu(torch.full((N, N), -1e9, device=dev), 1)
    att = torch.matmul(torch.softmax(scores, -1), v)
    merged = att.mean(1) if in_dim > out_dim else att.transpose(1, 2).reshape(B, N, out_dim)
    y = dense(p, f"{name}/proj", layer_norm(p, f"{name}/norm3", x, 1e-5)) + dense(p, f"{name}/attn_proj", merged)
    m = layer_norm(p, f"{name}/mlp/norm", layer_norm(p, f"{name}/norm2", y, 1e-5), 1e-6)
    return y + dense(p, f"{name}/mlp/w2", gelu_tanh(dense(p, f"{name}/mlp/w0", m)) * dense(p, f"{name}/mlp/w1", m))


def l2n(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(torch.sum(x * x, -1, keepdim=True) + 1e-12)


class Tokenizer:
    """factorgen tokenizer (inference): encode(images) -> indices, decode(indices) -> images, with the intermediate
    normalized codes (for counting near-ties). Images NCHW in [-1, 1]."""

    def __init__(self, cfg: dict, tensors: Dict[str, np.ndarray]):
        self.cfg = cfg
        self.p = to_torch(tensors)
        self.K = len(cfg["quantizer"]["subCodebooks"])
        self.branched = cfg.get("factorize") == "branch"
        if cfg.get("version", 1) == 1:
            # factorgen's migrateTokenizerConfig: version 1 had UniTok's projection as the flag quantProj "attn", and
            # attn configs written before attnProjAttention attended causally
            self.attn = cfg.get("quantProj") == "attn"
            self.causal = cfg.get("attnProjAttention") != "bidirectional"
        elif cfg.get("version") == 2:
            self.attn = cfg["quantizer"]["kind"] == "unitok"
            self.causal = cfg["quantizer"].get("attention") == "causal"
        else:
            raise ValueError(f"tokenizer config: version {cfg.get('version')!r} is not 1 or 2")

    @staticmethod
    def load(folder: str) -> "Tokenizer":
        ck = load_checkpoint(folder, "tokenizer", with_optimizer=False)
        return Tokenizer(ck.config, ck.tensors)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        c, p, g = self.cfg, self.p, self.cfg["normGroups"]
        h = conv(p, "encoder/conv_in", x)
        for level in range(len(c["channelMult"])):
            for i in range(c["blocksPerLevel"]):
                h = res_block(p, f"encoder/down{level}/res{i}", h, g)
            if level < len(c["channelMult"]) - 1:
                h = conv(p, f"encoder/down{level}/down/conv", h, 2)
        h = res_block(p, "encoder/mid/res0", h, g)
        if c["attention"]:
            h = attn_block(p, "encoder/mid/attn", h, g)
        return res_block(p, "encoder/mid/res1", h, g)

    def latents(self, x: torch.Tensor) -> List[torch.Tensor]:
        """One shared latent ('projection') or one per sub-codebook branch ('branch'), NCHW."""
        c, p, g = self.cfg, self.p, self.cfg["normGroups"]
        t = self.trunk(x)
        if not self.branched:
            return [conv(p, "encoder/conv_out", swish(group_norm(p, "encoder/norm_out", t, g)))]
        out = []
        for k in range(self.K):
            b, h = f"encoder/branch{k}", t
            for i in range(c.get("branchBlocks", 1)):
                h = res_block(p, f"{b}/res{i}", h, g)
                if c["attention"]:
                    h = attn_block(p, f"{b}/attn{i}", h, g)
            out.append(conv(p, f"{b}/conv_out", swish(group_norm(p, f"{b}/norm_out", h, g))))
        return out

    def codes(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The K normalized pre-quantization codes z_k [B, h, w, d_k]."""
        subs = self.cfg["quantizer"]["subCodebooks"]
        lat = [l.permute(0, 2, 3, 1) for l in self.latents(x)]
        if not self.attn:
            return [l2n(dense(self.p, f"quant/k{k}/proj", lat[0] if len(lat) == 1 else lat[k])) for k in range(self.K)]
        B, H, W, C = lat[0].shape
        if self.branched:
            return [l2n(attn_projection(self.p, f"quant/k{k}/attn_pre", lat[k].reshape(B, H * W, C), s["dim"], self.causal).view(B, H, W, -1)) for k, s in enumerate(subs)]
        full = attn_projection(self.p, "quant/attn_pre", lat[0].reshape(B, H * W, C), sum(s["dim"] for s in subs), self.causal).view(B, H, W, -1)
        return [l2n(c) for c in torch.split(full, [s["dim"] for s in subs], -1)]

    def similarities(self, z: List[torch.Tensor]) -> List[torch.Tensor]:
        """cos(z_k, c_v) for every code: K tensors [B, h, w, V_k]."""
        return [torch.matmul(zk, l2n(self.p[f"quant/k{k}/codebook"]).t()) for k, zk in enumerate(z)]

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """images [B, C, H, W] -> indices int64 [B, h, w, K] (argmax of the cosine, first index on ties)."""
        return torch.stack([s.argmax(-1) for s in self.similarities(self.codes(x))], -1)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """indices [B, h, w, K] -> images [B, C, H, W] clamped to [-1, 1] (factorgen's decodeTokens)."""
        rows = [l2n(self.p[f"quant/k{k}/codebook"])[indices[..., k]] for k in range(self.K)]
        return self.decode_codes(torch.cat(rows, -1)).clamp(-1, 1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The K sub-codes concatenated, [B, h, w, sum d_k] -> unclamped images [B, C, H, W] (quant/post or the
        attention projection, then the decoder): what training's reconstruction loss compares."""
        c, p, g = self.cfg, self.p, self.cfg["normGroups"]
        B, H, W, D = codes.shape
        if self.attn:
            z = attn_projection(p, "quant/attn_post", codes.reshape(B, H * W, D), c["latentChannels"], self.causal).view(B, H, W, -1)
        else:
            z = dense(p, "quant/post", codes)
        h = conv(p, "decoder/conv_in", z.permute(0, 3, 1, 2))
        h = res_block(p, "decoder/mid/res0", h, g)
        if c["attention"]:
            h = attn_block(p, "decoder/mid/attn", h, g)
        h = res_block(p, "decoder/mid/res1", h, g)
        for level in range(len(c["channelMult"]) - 1, -1, -1):
            for i in range(c["blocksPerLevel"]):
                h = res_block(p, f"decoder/up{level}/res{i}", h, g)
            if level > 0:
                h = conv(p, f"decoder/up{level}/up/conv", F.interpolate(h, scale_factor=2, mode="nearest"))
        return conv(p, "decoder/conv_out", swish(group_norm(p, "decoder/norm_out", h, g)))
