"""Parity of the twin against numbers factorgen computed (used by test/twin/*.test.ts).

``python -m factorgen_twin.parity generator --checkpoint DIR --dump DIR`` reads a dump folder written by the test (a
legacy-layout checkpoint folder of kind 'twin-parity' holding: tokens int32 [B, T, K], labels int32 [B], factorgen's
teacher-forced ``logits{k}`` [B, T, V_k], ``loss`` [1], the loss gradient ``grad/<param>`` of every parameter (no
label drop, no dropout), and the cached CFG decoding trace ``step{k}`` [T, B, V_k] at ``config.cfgScale``), computes the
same with the twin in float32 on the CPU, and prints one JSON object of differences.

``python -m factorgen_twin.parity roundtrip --checkpoint DIR --out DIR [--format 1|2]`` loads a generator checkpoint into
the twin's modules and saves it back through names.py (training state and EMA included).
"""
import argparse
import json
import sys

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .errors import UserError
from .load import EMA_PREFIX, load_generator, without_ema
from .names import from_twin, to_twin
from .sampler import forced_step_logits


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0


def generator_parity(checkpoint: str, dump: str) -> dict:
    torch.manual_seed(0)
    model, ck = load_generator(checkpoint)
    model.eval()
    d = load_checkpoint(dump, "twin-parity")
    tok = torch.from_numpy(d.tensors["tokens"].astype(np.int64))
    lab = torch.from_numpy(d.tensors["labels"].astype(np.int64))
    out: dict = {"logits": [], "logitScale": [], "argmaxFlips": [], "steps": [], "stepScale": []}
    model.zero_grad()
    loss, _, _ = model.loss(tok, lab)
    loss.backward()
    with torch.no_grad():
        logits = model(tok, lab)
    for k, l in enumerate(logits):
        ref = d.tensors[f"logits{k}"]
        out["logits"].append(_max_abs(l.numpy(), ref))
        out["logitScale"].append(float(np.max(np.abs(ref))))
        out["argmaxFlips"].append(int(np.sum(l.numpy().argmax(-1) != ref.argmax(-1))))
    out["loss"] = abs(float(loss) - float(d.tensors["loss"][0]))
    grads = {n: p.grad for n, p in model.named_parameters()}
    g_fg = from_twin(grads, ck.config)
    worst = ("", 0.0, 0.0)
    for name, g in g_fg.items():
        ref = d.tensors[f"grad/{name}"]
        scale = float(np.max(np.abs(ref)))
        diff = _max_abs(g, ref)
        if diff / max(scale, 1e-12) > worst[1] / max(worst[2], 1e-12):
            worst = (name, diff, scale)
    out["gradWorst"] = {"name": worst[0], "maxAbs": worst[1], "scale": worst[2]}
    out["gradCount"] = len(g_fg)
    scale = float(d.config["cfgScale"])
    trace = forced_step_logits(model, d.tensors["tokens"].astype(np.int64), d.tensors["labels"].tolist(), scale, True)
    for k in range(model.K):
        ref = d.tensors[f"step{k}"]
        mine = np.stack([trace[t][k] for t in range(model.T)])
        out["steps"].append(_max_abs(mine, ref))
        out["stepScale"].append(float(np.max(np.abs(ref))))
    return out


def roundtrip(checkpoint: str, out: str, fmt: int) -> None:
    """factorgen checkpoint -> twin modules (raw weights, EMA and AdamW moments each through names.py) -> saved."""
    ck = load_checkpoint(checkpoint, "generator")
    model, _ = load_generator(checkpoint, ema=False, ck=ck)
    tensors = from_twin(model.state_dict(), ck.config)
    ema = {k[len(EMA_PREFIX):]: v for k, v in ck.tensors.items() if k.startswith(EMA_PREFIX)}
    if ema:
        ema_model, _ = load_generator(checkpoint, ema=True, ck=ck)
        ema_back = from_twin(ema_model.state_dict(), ck.config)
        tensors.update({EMA_PREFIX + k: ema_back[k] for k in ema})
    m = v = None
    if ck.opt_m is not None:
        m = from_twin(to_twin(ck.opt_m, ck.config, checkpoint), ck.config)
        v = from_twin(to_twin(ck.opt_v, ck.config, checkpoint), ck.config)
    save_checkpoint(out, Checkpoint(kind=ck.kind, config=ck.config, step=ck.step, tensors=tensors, extra=ck.extra, rng=ck.rng,
                                    opt_m=m, opt_v=v, opt_step=ck.opt_step), fmt=fmt)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m factorgen_twin.parity")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generator")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--dump", required=True)
    t = sub.add_parser("tokenizer")
    t.add_argument("--checkpoint", required=True)
    t.add_argument("--dump", required=True)
    ts = sub.add_parser("tokenizer-step")
    ts.add_argument("--checkpoint", required=True)
    ts.add_argument("--dump", required=True)
    ts.add_argument("--teacher")
    sh = sub.add_parser("tokenizer-shapes")
    sh.add_argument("--config", required=True, help="tokenizer configs as JSON text (a list; prints a list of name -> shape)")
    r = sub.add_parser("roundtrip")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--format", type=int, choices=[1, 2], default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        if a.cmd == "generator":
            print(json.dumps(generator_parity(a.checkpoint, a.dump)))
        elif a.cmd == "tokenizer-shapes":
            from .tokenizer_train import init_tokenizer

            cfgs = json.loads(a.config)
            print(json.dumps([{k: list(v.shape) for k, v in init_tokenizer(c).items()} for c in (cfgs if isinstance(cfgs, list) else [cfgs])]))
        elif a.cmd == "tokenizer-step":
            print(json.dumps(tokenizer_step_parity(a.checkpoint, a.dump, a.teacher)))
        elif a.cmd == "tokenizer":
            print(json.dumps(tokenizer_parity(a.checkpoint, a.dump)))
        else:
            roundtrip(a.checkpoint, a.out, a.format)
    except (UserError, ValueError) as e:
        print(f"factorgen_twin: {e}", file=sys.stderr)
        return 2
    return 0



def tokenizer_parity(checkpoint: str, dump: str) -> dict:
    """Against a dump with images [B, H, W, C], factorgen's indices [B, h, w, K] and its decodeTokens of them
    ``recon`` [B, H, W, C]: index agreement, each flip's cosine margin (how near a tie it was in the twin), and the
    reconstruction difference when both decode factorgen's indices."""
    from .tokenizer import Tokenizer

    tok = Tokenizer.load(checkpoint)
    d = load_checkpoint(dump, "twin-parity")
    x = torch.from_numpy(d.tensors["images"]).permute(0, 3, 1, 2).contiguous()
    ref_idx = torch.from_numpy(d.tensors["indices"].astype(np.int64))
    with torch.no_grad():
        sims = tok.similarities(tok.codes(x))
    idx = torch.stack([s.argmax(-1) for s in sims], -1)
    flips = (idx != ref_idx)
    margins = []
    for k, s in enumerate(sims):
        f = flips[..., k]
        if f.any():
            mine = s.gather(-1, idx[..., k : k + 1])[..., 0][f]
            theirs = s.gather(-1, ref_idx[..., k : k + 1])[..., 0][f]
            margins += (mine - theirs).tolist()
    recon = tok.decode(ref_idx).permute(0, 2, 3, 1).numpy()
    return {
        "positions": int(idx.numel()),
        "flips": int(flips.sum()),
        "maxFlipMargin": max(margins) if margins else 0.0,
        "recon": _max_abs(recon, d.tensors["recon"]),
        "reconScale": float(np.max(np.abs(d.tensors["recon"]))),
    }


def tokenizer_step_parity(checkpoint: str, dump: str, teacher_dir) -> dict:
    """One training step's loss terms and gradients against factorgen's: the dump holds ``images`` [B, H, W, C],
    factorgen's ``indices`` [B, h, w, K], ``loss/<term>`` (weighted terms, ``adversarial`` when the discriminator's
    term is on) and ``grad/<param>`` of the total in factorgen's layouts. The twin runs the same pass (float32, CPU) on
    the checkpoint's raw weights; teacher_dir serves the perceptual loss and every alignment target.
    Returns per-term |difference| and value, index flips, and per-gradient max |difference| / max |factorgen's|."""
    from .tokenizer import Tokenizer, from_torch, to_torch
    from .tokenizer_train import Teacher, discriminator, g_loss_hinge, training_forward

    ck = load_checkpoint(checkpoint, "tokenizer", with_optimizer=False)
    d = load_checkpoint(dump, "twin-parity")
    raw = {k: v for k, v in ck.tensors.items() if not k.startswith(EMA_PREFIX) and not k.startswith("state/")}
    params = {k: t.requires_grad_(True) for k, t in to_torch(raw).items()}
    tok = Tokenizer(ck.config, {})
    tok.p = params
    teacher = Teacher.load(teacher_dir, "cpu") if teacher_dir else None
    x = torch.from_numpy(d.tensors["images"]).permute(0, 3, 1, 2).contiguous()
    recon, idx, _z, losses, total = training_forward(tok, x, teacher, [teacher] if teacher else [])
    if "loss/adversarial" in d.tensors:
        adv = ck.config["adversarial"]
        losses["adversarial"] = g_loss_hinge(discriminator({k: v.detach() for k, v in params.items() if k.startswith("disc/")}, adv, recon)) * adv["weight"]
        total = total + losses["adversarial"]
    total.backward()
    terms = {k: {"twin": float(v), "factorgen": float(d.tensors[f"loss/{k}"][0]), "diff": abs(float(v) - float(d.tensors[f"loss/{k}"][0]))}
             for k, v in losses.items()}
    grads = from_torch({k: p.grad for k, p in params.items() if p.grad is not None})
    ref = {k[len("grad/"):]: v for k, v in d.tensors.items() if k.startswith("grad/")}
    # A gradient that is zero in exact arithmetic (the attention key bias: softmax ignores a per-query constant) is
    # rounding noise on both sides; each tensor's difference is measured against the larger of its own largest
    # entry and 1e-3 of the largest entry of any gradient.
    top = max(float(np.max(np.abs(g))) for g in ref.values())
    worst, worst_name, rows = 0.0, "", {}
    for k, g in ref.items():
        mine = grads.get(k, np.zeros_like(g))
        scale = max(float(np.max(np.abs(g))), 1e-3 * top)
        r = _max_abs(mine, g) / scale
        rows[k] = [r, _max_abs(mine, g), float(np.max(np.abs(g)))]
        if r > worst:
            worst, worst_name = r, k
    return {"terms": terms, "flips": int((idx.numpy() != d.tensors["indices"]).sum()), "positions": int(idx.numel()),
            "grads": len(ref), "twinGrads": len(grads), "missing": sorted(set(ref) - set(grads)), "extra": sorted(set(grads) - set(ref)),
            "worstGrad": worst, "worstGradName": worst_name, "gradScale": top,
            "gradRel": dict(sorted(rows.items(), key=lambda kv: -kv[1][0])[:6])}


if __name__ == "__main__":
    sys.exit(main())
