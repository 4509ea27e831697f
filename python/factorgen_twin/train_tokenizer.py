"""Continues a factorgen tokenizer run with the twin, on one process or under torchrun (DDP).

    PYTHONPATH=python /usr/bin/python3 -m factorgen_twin.train_tokenizer --out RUN --resume --steps N [flags]
    PYTHONPATH=python torchrun --nproc_per_node 2 --redirects 2 --tee 1 -m factorgen_twin.train_tokenizer --out RUN --resume ...

A run starts in factorgen (`factorgen tokenizer train --out RUN --steps 1 ...`: its flags fix the model config,
its seed the initial weights and every hyper-parameter); the twin continues it from RUN/checkpoint with the recipe
recorded there (extra.train: batch, lr, warmup, minLrRatio, clip, AdamW, seed, flip, usage window, dead-code
restarts, EMA) and writes a checkpoint factorgen loads, resumes, encodes and decodes with. Only --steps,
--checkpoint-every and --log-every may change, as on factorgen's --resume.

The recipe is factorgen's trainTokenizer (packages/pipelines/src/trainTokenizer.ts): batch ``batchIndices(n, batch,
step, seed)`` with ``flipMask``, pixels / 127.5 - 1; the losses of tokenizer_train.py, plus the PatchGAN generator
hinge term from adversarial.startStep; gradients clipped to global norm ``clip``, AdamW, warmup then cosine; the EMA
of the tokenizer's weights (warm-up and restart following as the run records); then the discriminator's step on the
real images and this step's reconstructions (its own AdamW); then the code-usage window gets the step's indices, and
every restartDeadEvery steps codes unused over the window are moved onto codes of this batch drawn by
``Rng(f"{seed}/tokenizer-step{step}")``. ``--batch`` is the run's global batch: each of W processes takes the
contiguous slice [rank * batch/W, (rank+1) * batch/W); the entropy and alignment terms are computed over the whole
global batch, and usage counts and restarts see every process's codes, so W processes compute what one does.

Backend: gloo on CPU, nccl on CUDA (the encoder and decoder in bf16 autocast there unless --no-autocast; the
quantizer and its losses stay float32: cosines of 1e-2 temperature do not survive bf16).
"""
import argparse
import json
import os
import sys
import time
from collections import deque
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .datasets import flip_mask, gather_images, load_dataset
from .errors import UserError, run_cli
from .load import EMA_PREFIX
from .rng import Rng, batch_indices
from .tokenizer import Tokenizer, from_torch, to_torch
from .tokenizer_train import Teacher, d_loss_hinge, discriminator, g_loss_hinge, gather_plain, training_forward
from .train_generator import AdamW, OneLineParser, clip_grads, ema_decay_at, end_processes, process_env, warmup_cosine

DISC_PREFIX = "disc/"
STATE_PREFIX = "state/"
USAGE = {"counts": STATE_PREFIX + "usageCounts", "window": STATE_PREFIX + "usageWindow", "windowSizes": STATE_PREFIX + "usageWindowSizes"}


class CodeHistogram:
    """usage.ts CodeHistogram: per-code counts of the last ``window`` batches (indices flat, sub-codebook fastest)."""

    def __init__(self, sizes: List[int], window: int):
        self.sizes, self.window = list(sizes), window
        self.offsets = np.cumsum([0] + self.sizes[:-1]).astype(np.int64)
        self.total = int(sum(sizes))
        self.counts = np.zeros(self.total, np.int64)
        self.batches: deque = deque()

    def _count(self, flat: np.ndarray, sign: int) -> None:
        ids = (flat.reshape(-1, len(self.sizes)).astype(np.int64) + self.offsets).ravel()
        self.counts += sign * np.bincount(ids, minlength=self.total)

    def add(self, flat: np.ndarray) -> None:
        self._count(flat, 1)
        if self.window > 0:
            self.batches.append(flat.astype(np.int32).copy())
            if len(self.batches) > self.window:
                self._count(self.batches.popleft(), -1)

    def _split(self) -> List[np.ndarray]:
        return [self.counts[o : o + v] for o, v in zip(self.offsets, self.sizes)]

    def usage(self) -> List[float]:
        return [float((c > 0).mean()) for c in self._split()]

    def perplexity(self) -> List[float]:
        out = []
        for c in self._split():
            t = c.sum()
            if t == 0:
                out.append(0.0)
                continue
            q = c[c > 0] / t
            out.append(float(np.exp(-(q * np.log(q)).sum())))
        return out

    def unused(self, k: int) -> List[int]:
        return [int(i) for i in np.nonzero(self._split()[k] == 0)[0]]

    def export_state(self) -> Dict[str, np.ndarray]:
        w = list(self.batches)
        return {"counts": self.counts.astype(np.int32), "window": np.concatenate(w).astype(np.int32) if w else np.zeros(0, np.int32),
                "windowSizes": np.array([len(b) for b in w], np.int32)}

    def import_state(self, counts: np.ndarray, window: np.ndarray, sizes: np.ndarray) -> bool:
        """usage.ts importState: False when the state does not fit these sizes; a smaller window keeps the newest batches."""
        K = len(self.sizes)
        if len(counts) != self.total or int(sizes.sum()) != len(window) or any(int(n) % K for n in sizes):
            return False
        if len(window) and np.any((window.reshape(-1, K) < 0) | (window.reshape(-1, K) >= np.array(self.sizes))):
            return False
        self.counts = counts.astype(np.int64).copy()
        self.batches.clear()
        o = 0
        for n in sizes:
            self.batches.append(window[o : o + int(n)].astype(np.int32).copy())
            o += int(n)
        while len(self.batches) > self.window:
            self._count(self.batches.popleft(), -1)
        return True


class _Params(torch.nn.Module):
    """A name -> tensor dict as a module (so DDP can wrap it); ``fn(params_dict, *args)`` is its forward."""

    def __init__(self, tensors: Dict[str, torch.Tensor], fn):
        super().__init__()
        self.params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in tensors.items()})
        self.fn = fn

    def named(self) -> Dict[str, torch.nn.Parameter]:
        return dict(self.params.items())

    def forward(self, *args):
        return self.fn(self.named(), *args)


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m factorgen_twin.train_tokenizer", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the factorgen tokenizer run folder: checkpoint/ and metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (required: a run starts in factorgen, see --help)")
    p.add_argument("--steps", type=int, required=True, help="train until this step (> the run's step)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="default: the run's")
    p.add_argument("--log-every", type=int, default=None, help="default: the run's")
    p.add_argument("--dataset", choices=["fashion-mnist", "emoji"], default=None, help="default: the run's")
    p.add_argument("--data", help="dataset folder (default: the committed copy under data/)")
    p.add_argument("--teacher", help="the run's --teacher (a `factorgen teacher train` run): perceptual and alignment losses")
    p.add_argument("--align-target", action="append", default=[], help="the run's --align-target k:DIR flags, in order")
    p.add_argument("--format", type=int, choices=[1, 2], default=2, help="checkpoint layout: 2 safetensors (default), 1 legacy")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--no-autocast", action="store_true", help="train in float32 on CUDA too (default: bf16 autocast for the encoder and decoder there)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return run_cli(train, parse_args(argv))


def _teachers(a: argparse.Namespace, cfg: dict, device):
    """(--teacher, [--align-target teachers in order]) loaded once per folder, checked against the config as factorgen's
    trainTokenizer checks them."""
    cache: Dict[str, Teacher] = {}

    def load(d: str, flag: str) -> Teacher:
        key = os.path.abspath(d)
        if key not in cache:
            try:
                cache[key] = Teacher.load(d, device)
            except UserError as e:
                raise UserError(f"{flag} {e}") from None
        return cache[key]

    teacher = load(a.teacher, "--teacher") if a.teacher else None
    teachers = []
    for spec in a.align_target:
        k, _, d = spec.partition(":")
        if not k.isdigit() or not d:
            raise UserError(f"--align-target {spec}: expected <sub-codebook>:<teacher folder>, e.g. 1:runs/teacher")
        teachers.append(load(d, "--align-target"))
    needs = cfg["perceptualWeight"] > 0 or (cfg.get("align") or {}).get("weight", 0) > 0
    if needs and teacher is None and not teachers:
        raise UserError("--teacher: the perceptual or alignment loss is on but no teacher was given")
    for t in cfg.get("alignTargets") or []:
        if t["teacher"] >= len(teachers):
            raise UserError(f"--align-target: sub-codebook {t['subCodebook']} is aligned to teacher {t['teacher']}, but {len(teachers)} teacher(s) were given")
        if teachers[t["teacher"]].embed_dim != t["teacherDim"]:
            raise UserError(f"--align-target: teacher {t['teacher']} has {teachers[t['teacher']].embed_dim}-d embeddings, the checkpoint's head expects {t['teacherDim']}")
    return teacher, teachers


def train(a: argparse.Namespace) -> int:
    """Continues the run in a.out to a.steps (see the module docstring); raises UserError (one line) on a run it cannot
    continue as factorgen would. Rank 0 writes metrics.jsonl and the checkpoint."""
    world, rank, local_rank, use_cuda, device = process_env(a.device)
    ck_dir = os.path.join(a.out, "checkpoint")
    if not a.resume:
        raise UserError(f"--resume: the twin continues a tokenizer run that factorgen started (its flags fix the model and recipe): "
                        f"run `factorgen tokenizer train --out {a.out} --steps 1 ...`, then this command with --resume")
    ck = load_checkpoint(ck_dir, "tokenizer")
    extra = ck.extra if isinstance(ck.extra, dict) else {}
    if isinstance(extra.get("exported"), dict):
        raise UserError(f"--resume: {ck_dir} holds an exported tokenizer (no optimizer state, discriminator, code-usage window or alignment heads); only the run's own checkpoint resumes")
    tc = dict(extra.get("train") or {})
    if "batch" not in tc:
        raise UserError(f"--resume: {ck_dir} records no training settings (extra.train)")
    if a.steps <= ck.step:
        raise UserError(f"--steps {a.steps}: the run in {a.out} is already at step {ck.step}; give --steps > {ck.step} to continue")
    tc["steps"] = a.steps
    for flag, key in (("checkpoint_every", "checkpointEvery"), ("log_every", "logEvery")):
        v = getattr(a, flag)
        if v is not None:
            if v < 1:
                raise UserError(f"--{flag.replace('_', '-')} {v}: must be a positive integer")
            tc[key] = v
    # a run recorded before these fields: the plain average, no restart following (nn/ema.ts emaOptionsOf)
    tc["emaWarmup"] = tc.get("emaWarmup") is True
    tc["emaFollowRestarts"] = tc.get("emaFollowRestarts") is True
    batch, seed = tc["batch"], tc["seed"]
    if batch % world:
        raise UserError(f"--batch {batch}: the run's batch must be a multiple of the {world} processes (it is the global batch)")
    cfg = ck.config
    recorded = str(extra.get("dataset", "fashion-mnist/train")).split("/")[0]
    ds = load_dataset(a.dataset or recorded, a.data, "train")
    H, W, C = ds.images.shape[1:]
    if (H, W, C) != (cfg["imageSize"], cfg["imageSize"], cfg["channels"]):
        raise UserError(f"--dataset {ds.name}: images are {H}x{W}x{C}, the tokenizer expects {cfg['imageSize']}x{cfg['imageSize']}x{cfg['channels']}")
    teacher, teachers = _teachers(a, cfg, device)
    autocast = use_cuda and not a.no_autocast

    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    raw = {k: v for k, v in ck.tensors.items() if not k.startswith(EMA_PREFIX) and not k.startswith(STATE_PREFIX)}
    torch_t = {k: v.to(device) for k, v in to_torch(raw).items()}
    tok = Tokenizer(cfg, {})
    adv = cfg.get("adversarial") if (cfg.get("adversarial") or {}).get("weight", 0) > 0 else None

    def tok_forward(params, x):
        tok.p = params
        return training_forward(tok, x, teacher, teachers, autocast)

    tok_mod = _Params({k: v for k, v in torch_t.items() if not k.startswith(DISC_PREFIX)}, tok_forward)
    disc_mod = _Params({k: v for k, v in torch_t.items() if k.startswith(DISC_PREFIX)}, lambda p, real, fake: d_loss_hinge(discriminator(p, adv, real), discriminator(p, adv, fake)))
    names, disc_names = tok_mod.named(), disc_mod.named()
    tok.p = names
    if adv and not disc_names:
        raise UserError(f"{ck_dir}: the config has an adversarial loss but the checkpoint holds no discriminator ('disc/')")
    aw = tc["adamw"]
    opt = AdamW(names, aw["beta1"], aw["beta2"], aw["eps"], aw["weightDecay"])
    dopt = AdamW(disc_names, aw["beta1"], aw["beta2"], aw["eps"], aw["weightDecay"])
    if ck.opt_m is not None:
        m, v = to_torch(ck.opt_m), to_torch(ck.opt_v)
        opt.step = int(ck.opt_step or 0)
        dopt.step = int(extra.get("discStep", 0))
        for o, keep in ((opt, lambda n: not n.startswith(DISC_PREFIX)), (dopt, lambda n: n.startswith(DISC_PREFIX))):
            o.m = {k: t.to(device) for k, t in m.items() if keep(k)}
            o.v = {k: t.to(device) for k, t in v.items() if keep(k)}
    ema: Optional[Dict[str, torch.Tensor]] = None
    decay = float(tc.get("ema") or 0)
    saved = [k for k in ck.tensors if k.startswith(EMA_PREFIX)]
    if decay == 0 and saved:
        raise UserError(f"--ema: {ck_dir} was trained with an EMA of its weights; resume with --ema <its decay> or start a new run")
    if decay > 0:
        if ck.step > 0:
            if any(EMA_PREFIX + k not in ck.tensors for k in names):
                raise UserError(f"--ema {decay}: {ck_dir} holds no EMA of these weights (trained without --ema); resume without it or start a new run")
            ema = {k: t.to(device) for k, t in to_torch({k: ck.tensors[EMA_PREFIX + k] for k in names}).items()}
        else:
            ema = {k: p.detach().clone() for k, p in names.items()}
    sizes = [s["size"] for s in cfg["quantizer"]["subCodebooks"]]
    hist = CodeHistogram(sizes, tc["usageWindow"])
    if all(USAGE[n] in ck.tensors for n in USAGE):
        st = [ck.tensors[USAGE[n]] for n in ("counts", "window", "windowSizes")]
        if not all(t.dtype == np.int32 for t in st) or not hist.import_state(*st):
            raise UserError(f"{ck_dir}: the saved code-usage window does not fit the codebook sizes [{','.join(map(str, sizes))}]")

    wrap = (lambda mod: torch.nn.parallel.DistributedDataParallel(mod, device_ids=[local_rank] if use_cuda else None, find_unused_parameters=True)) if world > 1 else (lambda mod: mod)
    tok_ddp = wrap(tok_mod)
    disc_ddp = wrap(disc_mod) if adv else None
    metrics_path = os.path.join(a.out, "metrics.jsonl")
    out_extra = {**extra, "train": tc, "dataset": ds.name, "twin": {"processes": world, "device": device.type, "torch": torch.__version__}}

    def save(step: int) -> None:
        if rank != 0:
            return
        tensors = {**from_torch(names), **from_torch(disc_names)}
        st = hist.export_state()
        tensors.update({USAGE[n]: st[n] for n in USAGE})
        if ema is not None:
            tensors.update({EMA_PREFIX + k: v for k, v in from_torch(ema).items()})
        out_extra["discStep"] = dopt.step
        m = {**from_torch(opt.m), **from_torch(dopt.m)} if (opt.m or dopt.m) else None
        v = {**from_torch(opt.v), **from_torch(dopt.v)} if (opt.v or dopt.v) else None
        save_checkpoint(ck_dir, Checkpoint(kind="tokenizer", config=cfg, step=step, tensors=tensors, extra=out_extra, rng=ck.rng,
                                           opt_m=m, opt_v=v, opt_step=opt.step), fmt=a.format)

    Bl = batch // world
    mine = slice(rank * Bl, (rank + 1) * Bl)
    step0 = ck.step
    tok_mod.train()
    t0 = time.time()
    for s in range(step0, a.steps):
        idx = batch_indices(ds.images.shape[0], batch, s, seed)
        xg = gather_images(ds, idx, flip_mask(batch, s, seed, bool(tc.get("flip"))))
        x = torch.from_numpy(np.ascontiguousarray(xg[mine].transpose(0, 3, 1, 2))).to(device)
        lr = warmup_cosine(s, tc["lr"], tc["warmup"], a.steps, tc["minLrRatio"])
        rng = Rng(f"{seed}/tokenizer-step{s}")
        adv_on = adv is not None and s >= adv["startStep"]
        for p in list(names.values()) + list(disc_names.values()):
            p.grad = None
        recon, indices, z, losses, total = tok_ddp(x)
        if adv_on:
            frozen = {k: p.detach() for k, p in disc_names.items()}
            losses["adversarial"] = g_loss_hinge(discriminator(frozen, adv, recon)) * adv["weight"]
            total = total + losses["adversarial"]
        total.backward()  # DDP averages the gradients over the processes: the global batch's gradient
        grad_norm = clip_grads(list(names.values()), tc["clip"])
        opt.update(lr)
        if ema is not None:
            d = ema_decay_at(decay, s, tc["emaWarmup"])
            with torch.no_grad():
                for k, e in ema.items():
                    e.copy_(e * d + names[k].detach() * (1 - d))
        rec: Dict[str, float] = {}
        if adv_on:
            dl = disc_ddp(x, recon.detach().float())
            dl.backward()
            clip_grads(list(disc_names.values()), tc["clip"])
            dopt.update(lr)
            rec["discriminator"] = float(dl.detach())
        flat = gather_plain(indices).cpu().numpy().reshape(-1)
        hist.add(flat)
        every = tc.get("restartDeadEvery", 0)
        if every > 0 and (s + 1) % every == 0:
            rec["restarted"] = restart_dead_codes(names, hist, [gather_plain(zk.detach().float()) for zk in z], rng, ema if tc["emaFollowRestarts"] else None)
        done = s + 1
        if done % tc["logEvery"] == 0 or done == a.steps:
            keys = ["loss"] + list(losses) + (["discriminator"] if adv_on else [])
            vals = torch.stack([total.detach().float()] + [losses[k].detach().float() for k in losses] + ([torch.tensor(rec["discriminator"], device=device)] if adv_on else []))
            if world > 1:
                dist.all_reduce(vals)
                vals /= world
            if not all(np.isfinite(vals.cpu().numpy())):
                kept = f"{ck_dir} is kept"
                raise UserError(f"training diverged: loss is {float(vals[0])} at step {done}; stopped, {kept}")
            if rank == 0:
                el = time.time() - t0
                out = {"step": done, "loss": float(vals[0]), "lr": lr, "gradNorm": grad_norm}
                out.update({k: float(v) for k, v in zip(keys[1:], vals[1:])})
                if "restarted" in rec:
                    out["restarted"] = rec["restarted"]
                out.update({f"usage{k}": u for k, u in enumerate(hist.usage())})
                out.update({f"perplexity{k}": u for k, u in enumerate(hist.perplexity())})
                out.update({"imagesPerSec": (done - step0) * batch / max(el, 1e-9), "seconds": el, "processes": world})
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(out) + "\n")
                print(json.dumps(out), file=sys.stderr)
        if done % tc["checkpointEvery"] == 0 or done == a.steps:
            save(done)
    if rank == 0:
        print(json.dumps({"checkpoint": ck_dir, "steps": a.steps, "processes": world, "usage": hist.usage(), "perplexity": hist.perplexity()}))
    end_processes(world)
    return 0


@torch.no_grad()
def restart_dead_codes(params: Dict[str, torch.nn.Parameter], hist: CodeHistogram, codes: List[torch.Tensor], rng: Rng,
                       ema: Optional[Dict[str, torch.Tensor]]) -> int:
    """deadCodes.ts restartDeadCodes: each code of sub-codebook k unused over the window takes the global batch's code
    number rng.int(n) (z_k rows in batch order); the EMA copies the rows when the run follows restarts."""
    restarted = 0
    for k, zk in enumerate(codes):
        dead = hist.unused(k)
        if not dead:
            continue
        name = f"quant/k{k}/codebook"
        cb = params[name]
        src = zk.reshape(-1, cb.shape[1])
        n = src.shape[0]
        for code in dead:
            cb[code] = src[rng.int(n)]
        if ema is not None:
            ema[name][dead] = cb[dead]
        restarted += len(dead)
    return restarted


if __name__ == "__main__":
    sys.exit(main())
