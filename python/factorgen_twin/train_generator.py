"""Trains factorgen's generator with the twin, on one process or under torchrun (DDP).

    PYTHONPATH=python /usr/bin/python3 -m factorgen_twin.train_generator --tokens FILE --out DIR [flags]
    PYTHONPATH=python torchrun --nproc_per_node 2 --redirects 2 --tee 1 -m factorgen_twin.train_generator ...

The recipe is factorgen's (packages/generator/src/trainer.ts; defaults from packages/generator/src/presets.json's cli preset, the CLI's):
batches ``batchIndices(n, batch, step, seed)`` over alea epoch permutations, class-label dropout from
``Rng(f"{seed}/generator-step{step}")`` one draw per sample in batch order, loss = mean over sub-codebooks of the mean
cross-entropy, gradients clipped to global norm ``clip`` (scale clip / (norm + 1e-6)), AdamW (bias-corrected,
eps outside the square root, decoupled weight decay on tensors of rank >= 2), linear warmup then cosine to
lr * minLrRatio, optional EMA of the weights (new runs warm its decay up as min(d, (1 + n) / (10 + n)) at step n and
record ``emaWarmup: true`` in their train settings; a resumed run keeps its record, absent = the plain average, as
factorgen's emaOptionsOf). ``--batch`` is the global batch: each of W processes takes the
contiguous slice [rank * batch/W, (rank+1) * batch/W) of it, and every random mask (label drop, dropout) is drawn for
the whole global batch and sliced, so W processes at batch B/W compute what one process at batch B does (up to float
summation order). Dropout masks come from torch generators, not factorgen's hash, so only their rate matches.

The run folder is factorgen's: ``DIR/checkpoint`` (config.json + model.safetensors + optimizer.safetensors, or the
legacy layout with ``--format 1``) and ``DIR/metrics.jsonl``; ``--resume`` continues from ``DIR/checkpoint``, written
by factorgen or by the twin. Backend: gloo on CPU, nccl on CUDA (bf16 autocast there unless --no-autocast).
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .errors import UserError, run_cli
from .generator import Dropout, Generator
from .load import EMA_PREFIX, without_ema
from .names import from_twin, to_twin
from .rng import Rng, batch_indices
from .tokens import read_token_file

# the generator package's presets.json (its "cli" preset): the one file that holds factorgen's generator defaults
DEFAULTS = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "packages", "generator", "src", "presets.json")))["cli"]


def warmup_cosine(step: int, lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """factorgen's warmupCosine: linear warmup for ``warmup`` steps, then cosine from lr to lr * min_ratio at ``total``."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def drop_class_labels(labels: np.ndarray, num_classes: int, p: float, seed: str, step: int) -> np.ndarray:
    """factorgen's dropClassLabels with the step's Rng: label i -> null class when the i-th draw < p (global batch)."""
    out = labels.copy()
    if p <= 0:
        return out
    rng = Rng(f"{seed}/generator-step{step}")
    for i in range(len(out)):
        if rng.next() < p:
            out[i] = num_classes
    return out


class GlobalDropout:
    """Dropout masks keyed by (seed, step, call) and drawn for the whole global batch, of which this rank keeps its rows;
    so a rank's masks do not depend on how the global batch is split. Installed on the model's dropout modules."""

    def __init__(self, seed: str, rank: int, world: int):
        self.seed, self.rank, self.world = seed, rank, world
        self.step, self.calls = 0, 0

    def start(self, step: int) -> None:
        self.step, self.calls = step, 0

    def __call__(self, x: torch.Tensor, p: float) -> torch.Tensor:
        self.calls += 1
        key = hashlib.sha256(f"{self.seed}/dropout/{self.step}/{self.calls}".encode()).digest()
        g = torch.Generator(device=x.device)
        g.manual_seed(int.from_bytes(key[:8], "little") & ((1 << 63) - 1))
        rows = x.shape[0]
        u = torch.rand((rows * self.world,) + tuple(x.shape[1:]), generator=g, device=x.device)[self.rank * rows : (self.rank + 1) * rows]
        return x * ((u >= p).to(x.dtype) / (1 - p))


def install_dropout(model: torch.nn.Module, fn: GlobalDropout) -> None:
    """Routes every dropout of ``model`` through ``fn``."""
    for m in model.modules():
        if isinstance(m, Dropout):
            m.keyed = fn


def init_generator(model: Generator, seed: str) -> None:
    """Fresh weights as factorgen draws them in distribution (not in value): N(0, 0.02) matrices and embeddings, residual
    output projections (wo, w2) N(0, 0.02 / sqrt(2 * depth)) with depth the stack's own, output layers and biases zero,
    norms one, slot embeddings N(0, 0.02)."""
    g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(f"{seed}/generator".encode()).digest()[:8], "little") & ((1 << 63) - 1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("attention_norm.weight") or name.endswith("ffn_norm.weight"):
                p.fill_(1.0)
            elif name.startswith("head.output."):
                p.zero_()
            else:
                std = 0.02
                if name.endswith("attention.wo.weight") or name.endswith("feed_forward.w2.weight"):
                    depth = model.cfg["headLayers"] if name.startswith("head.") else model.cfg["depth"]
                    std = 0.02 / math.sqrt(2 * depth)
                p.copy_(torch.randn(p.shape, generator=g) * std)


class AdamW:
    """factorgen's adamwStep (packages/nn/src/optim.ts) on the twin's parameters; moments by twin parameter name."""

    def __init__(self, params: Dict[str, torch.nn.Parameter], beta1: float, beta2: float, eps: float, weight_decay: float):
        self.params, self.b1, self.b2, self.eps, self.wd = params, beta1, beta2, eps, weight_decay
        self.step = 0
        self.m: Dict[str, torch.Tensor] = {}
        self.v: Dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, lr: float) -> None:
        self.step += 1
        bc1 = 1 - self.b1 ** self.step
        bc2 = 1 - self.b2 ** self.step
        for name, p in self.params.items():
            g = p.grad
            if g is None:
                continue
            m = self.m[name] * self.b1 + g * (1 - self.b1) if name in self.m else g * (1 - self.b1)
            v = self.v[name] * self.b2 + (g * g) * (1 - self.b2) if name in self.v else (g * g) * (1 - self.b2)
            self.m[name], self.v[name] = m, v
            upd = (m / bc1) / (torch.sqrt(v / bc2) + self.eps)
            nxt = p - upd * lr
            if self.wd > 0 and p.dim() >= 2:
                nxt = nxt - p * (lr * self.wd)
            p.copy_(nxt)


def clip_grads(params: List[torch.nn.Parameter], max_norm: float) -> float:
    """factorgen's clipByGlobalNorm: scale by max_norm / (norm + 1e-6) when norm > max_norm. Returns the pre-clip norm."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.sqrt(sum(torch.sum(g * g) for g in grads))
    if max_norm > 0 and float(norm) > max_norm:
        scale = max_norm / (float(norm) + 1e-6)
        for g in grads:
            g.mul_(scale)
    return float(norm)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``factorgen_twin: <flag>: <cause>``) and exit 2, as factorgen's CLI."""

    def error(self, message: str):  # type: ignore[override]
        print(f"factorgen_twin: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv=None) -> argparse.Namespace:
    d = DEFAULTS
    p = OneLineParser(prog="python -m factorgen_twin.train_generator", description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", required=True, help="training token file (from `factorgen tokenizer encode`)")
    p.add_argument("--out", required=True, help="run folder: checkpoint/ and metrics.jsonl go here")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint (factorgen's or the twin's)")
    p.add_argument("--overwrite", action="store_true", help="a new run replaces an earlier run's checkpoint and metrics in --out")
    for flag, typ in [("steps", int), ("batch", int), ("lr", float), ("warmup", int), ("weight-decay", float), ("clip", float),
                      ("seed", str), ("checkpoint-every", int), ("log-every", int), ("ema", float), ("width", int), ("depth", int),
                      ("heads", int), ("head-layers", int), ("dropout", float), ("class-dropout", float)]:
        key = "".join(w if i == 0 else w.capitalize() for i, w in enumerate(flag.split("-")))
        # default None: filled by resolve_flags (from the run on --resume, else from packages/generator/src/presets.json)
        p.add_argument(f"--{flag}", type=typ, default=None, help=f"default {d[key]}")
    p.add_argument("--val", help="held-out token file for the validation loss")
    p.add_argument("--val-every", type=int, default=None, help=f"validation loss every n steps (0 = at the end only; default {d['valEvery']})")
    p.add_argument("--val-limit", type=int, default=None, help=f"score at most n held-out sequences (default {d['valLimit']})")
    p.add_argument("--mlp-hidden", type=int, default=None, help="SwiGLU hidden size (default 3 x width)")
    p.add_argument("--head-mode", choices=["ar", "parallel"], default=None, help=f"default {d['headMode']}")
    p.add_argument("--rope", choices=["1d", "2d"], default=None, help=f"default {d['rope']}")
    p.add_argument("--class-rope", choices=["identity", "zero"], default=None,
                   help=f"the class token's rotary embedding: identity (unrotated) or zero (cos = sin = 0); default {d['classRope']}")
    p.add_argument("--format", type=int, choices=[1, 2], default=2, help="checkpoint layout: 2 safetensors (default), 1 legacy")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--no-autocast", action="store_true", help="train in float32 on CUDA too (default: bf16 autocast there)")
    return p.parse_args(argv)


def _train(*keys):
    def get(ck: Checkpoint):
        v = (ck.extra or {}).get("train") if isinstance(ck.extra, dict) else None
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v
    return get


def _cfg(key):
    return lambda ck: ck.config.get(key)


# flag -> (argparse attribute, where the run records it, may it change on resume), as factorgen's generatorResumeTable
RESUME_TABLE = {
    "--steps": ("steps", _train("steps"), True),
    "--checkpoint-every": ("checkpoint_every", _train("checkpointEvery"), True),
    "--log-every": ("log_every", _train("logEvery"), True),
    "--val-every": ("val_every", _train("valEvery"), True),
    "--val-limit": ("val_limit", _train("valLimit"), True),
    "--batch": ("batch", _train("batch"), False),
    "--lr": ("lr", _train("lr"), False),
    "--warmup": ("warmup", _train("warmup"), False),
    "--weight-decay": ("weight_decay", _train("adamw", "weightDecay"), False),
    "--clip": ("clip", _train("clip"), False),
    "--seed": ("seed", _train("seed"), False),
    "--width": ("width", _cfg("width"), False),
    "--depth": ("depth", _cfg("depth"), False),
    "--heads": ("heads", _cfg("heads"), False),
    "--mlp-hidden": ("mlp_hidden", _cfg("mlpHidden"), False),
    "--head-mode": ("head_mode", _cfg("headMode"), False),
    "--head-layers": ("head_layers", _cfg("headLayers"), False),
    "--dropout": ("dropout", _cfg("dropout"), False),
    "--class-dropout": ("class_dropout", _cfg("classDropout"), False),
    "--rope": ("rope", _cfg("rope"), False),
    # runs from before the field used the identity
    "--class-rope": ("class_rope", lambda ck: ck.config.get("classRope", "identity"), False),
    "--ema": ("ema", lambda ck: (_train("ema")(ck) or 0), False),
}
_DEFAULT_KEY = {"steps": "steps", "checkpoint_every": "checkpointEvery", "log_every": "logEvery", "val_every": "valEvery",
                "val_limit": "valLimit", "batch": "batch", "lr": "lr", "warmup": "warmup", "weight_decay": "weightDecay",
                "clip": "clip", "seed": "seed", "width": "width", "depth": "depth", "heads": "heads", "head_mode": "headMode",
                "head_layers": "headLayers", "dropout": "dropout", "class_dropout": "classDropout", "rope": "rope", "class_rope": "classRope",
                "ema": "ema"}


def _show(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else v if isinstance(v, str) else json.dumps(v)


def resolve_flags(a: argparse.Namespace, resumed: Optional[Checkpoint]) -> None:
    """Fills the flags left out: on --resume from the run (factorgen's fillFlagsOnResume: a given flag contradicting the
    run is refused, except those that may change), else from packages/generator/src/presets.json."""
    if resumed is not None:
        bad = []
        for flag, (attr, stored_of, may_change) in RESUME_TABLE.items():
            stored = stored_of(resumed)
            if stored is None:
                continue
            given = getattr(a, attr)
            if given is None:
                setattr(a, attr, stored)
            elif not may_change and given != stored:
                bad.append(f"{flag} {_show(given)} (trained with {_show(stored)})")
        if bad:
            fail(f"--resume: {', '.join(bad)} {'contradicts' if len(bad) == 1 else 'contradict'} the run in {a.out}; "
                 "a resumed run keeps its settings: leave these flags out, or start a new run in another folder")
    for attr, key in _DEFAULT_KEY.items():
        if getattr(a, attr) is None:
            setattr(a, attr, DEFAULTS[key])
    if resumed is not None and a.steps <= resumed.step:
        fail(f"--steps {a.steps}: the run in {a.out} is already at step {resumed.step}; give --steps > {resumed.step} to continue")


def ema_warmup_of(resumed: Optional[Checkpoint]) -> bool:
    """factorgen's emaOptionsOf(...).warmup: a new run warms up; a resumed run as its train settings record
    (``extra.train.emaWarmup``), absent (runs from before the field) = False, the plain average."""
    if resumed is None:
        return True
    return _train("emaWarmup")(resumed) is True


def ema_decay_at(decay: float, n: int, warmup: bool) -> float:
    """factorgen's emaDecayAt: the decay of update n (0-based, n = the optimizer step just taken minus one), with
    warm-up min(decay, (1 + n) / (10 + n)) (TensorFlow's ExponentialMovingAverage num_updates), else decay."""
    return min(decay, (1 + n) / (10 + n)) if warmup else decay


def fail(msg: str) -> None:
    raise UserError(msg)


def main(argv=None) -> int:
    return run_cli(train, parse_args(argv))


def end_processes(world: int) -> None:
    """Ends a run's processes after training: under DDP (world > 1) a barrier, then os._exit(0) on every rank, so no
    destructor runs. PyTorch 1.13's gloo can deadlock tearing down a DDP Reducer's process group (seen in a test run:
    rank 1 stuck in ~ProcessGroupGloo, a gloo thread waiting for the GIL the main thread held, after rank 0 had
    finished); the checkpoint and metrics are written and the streams flushed before."""
    if world == 1:
        return
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def process_env(device_flag: str):
    """This process's place under torchrun: (world size, rank, local rank, use_cuda, device); one process without
    torchrun's environment. device_flag 'auto' takes CUDA when torch sees it, else 'cuda' or 'cpu' as given."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device_flag == "auto" else device_flag == "cuda"
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return world, rank, local_rank, use_cuda, device


def train(a: argparse.Namespace) -> int:
    world, rank, local_rank, use_cuda, device = process_env(a.device)
    try:
        tokens = read_token_file(a.tokens)
    except UserError as e:
        raise UserError(f"--tokens {e}") from None
    h = tokens.header
    if h["count"] < 1:
        fail(f"--tokens {a.tokens}: the token file holds no sequences")
    ck_dir = os.path.join(a.out, "checkpoint")
    metrics_path = os.path.join(a.out, "metrics.jsonl")
    resumed: Optional[Checkpoint] = None
    if a.resume:
        resumed = load_checkpoint(ck_dir, "generator")
    resolve_flags(a, resumed)
    for flag in ("steps", "batch", "checkpoint_every", "log_every"):
        if getattr(a, flag) < 1:
            fail(f"--{flag.replace('_', '-')} {getattr(a, flag)}: must be a positive integer")
    if a.batch % world:
        fail(f"--batch {a.batch}: must be a multiple of the {world} processes (it is the global batch)")
    if resumed is not None:
        cfg = resumed.config
    else:
        if os.path.exists(os.path.join(ck_dir, "config.json")) and not a.overwrite:
            fail(f"--out {a.out}: already holds a generator run; use --resume to continue it or --overwrite to replace it")
        if a.width % a.heads:
            fail(f"--heads {a.heads}: must divide --width {a.width}")
        hidden = a.mlp_hidden or DEFAULTS["mlpHiddenPerWidth"] * a.width
        cfg = {
            "gridH": h["gridH"], "gridW": h["gridW"], "subCodebookSizes": h["subCodebookSizes"], "numClasses": len(h["classNames"]),
            "width": a.width, "depth": a.depth, "heads": a.heads, "mlpHidden": hidden, "headMode": a.head_mode,
            "headLayers": a.head_layers, "headWidth": a.width, "headHeads": a.heads, "headMlpHidden": hidden,
            "dropout": a.dropout, "rope": a.rope, "classDropout": a.class_dropout, "classRope": a.class_rope,
        }
    if (h["gridH"], h["gridW"], list(h["subCodebookSizes"]), len(h["classNames"])) != (cfg["gridH"], cfg["gridW"], list(cfg["subCodebookSizes"]), cfg["numClasses"]):
        fail(
            f"--tokens {a.tokens}: token file has grid {h['gridH']}x{h['gridW']}, sub-codebooks [{','.join(map(str, h['subCodebookSizes']))}], "
            f"{len(h['classNames'])} classes; the generator expects {cfg['gridH']}x{cfg['gridW']}, "
            f"[{','.join(map(str, cfg['subCodebookSizes']))}], {cfg['numClasses']} classes"
        )
    val = None
    if a.val:
        try:
            val = read_token_file(a.val)
        except UserError as e:
            raise UserError(f"--val {e}") from None
        vh = val.header
        if (vh["gridH"], vh["gridW"], list(vh["subCodebookSizes"]), len(vh["classNames"])) != (cfg["gridH"], cfg["gridW"], list(cfg["subCodebookSizes"]), cfg["numClasses"]):
            fail(f"--val: token file has grid {vh['gridH']}x{vh['gridW']}, sub-codebooks [{','.join(map(str, vh['subCodebookSizes']))}], "
                 f"{len(vh['classNames'])} classes; the generator expects {cfg['gridH']}x{cfg['gridW']}, "
                 f"[{','.join(map(str, cfg['subCodebookSizes']))}], {cfg['numClasses']} classes")
        if vh["tokenizerId"] != h["tokenizerId"]:
            fail(f"--val: written by tokenizer {vh['tokenizerId']}, --tokens by {h['tokenizerId']}")
    if resumed is not None and isinstance(resumed.extra, dict):
        prev_id = resumed.extra.get("tokenizerId")
        if prev_id and prev_id != h["tokenizerId"]:
            fail(f"--tokens {a.tokens}: written by tokenizer {h['tokenizerId']}, the run was trained on {prev_id}")

    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = Generator(cfg)
    step0 = 0
    if resumed is not None:
        model.load_state_dict(to_twin(without_ema(resumed.tensors), cfg, ck_dir))
        step0 = resumed.step
    else:
        init_generator(model, a.seed)
    model.to(device)
    names = dict(model.named_parameters())
    opt = AdamW(names, DEFAULTS["adamw"]["beta1"], DEFAULTS["adamw"]["beta2"], DEFAULTS["adamw"]["eps"], a.weight_decay)
    if resumed is not None and resumed.opt_m is not None:
        opt.step = int(resumed.opt_step or 0)
        opt.m = {k: v.to(device) for k, v in to_twin(resumed.opt_m, cfg, ck_dir).items()}
        opt.v = {k: v.to(device) for k, v in to_twin(resumed.opt_v, cfg, ck_dir).items()}
    ema: Optional[Dict[str, torch.Tensor]] = None
    ema_warmup = ema_warmup_of(resumed)
    if a.ema > 0:
        saved = [k for k in (resumed.tensors if resumed else {}) if k.startswith(EMA_PREFIX)]
        if resumed is not None and step0 > 0:
            if not saved:
                fail(f"--ema {a.ema}: {ck_dir} holds no EMA of these weights (trained without --ema); resume without it or start a new run")
            ema = {k: v.to(device) for k, v in to_twin({k[len(EMA_PREFIX):]: resumed.tensors[k] for k in saved}, cfg, ck_dir).items()}
        else:
            ema = {k: p.detach().clone() for k, p in names.items()}
    elif resumed is not None and any(k.startswith(EMA_PREFIX) for k in resumed.tensors):
        fail(f"--ema: {ck_dir} was trained with an EMA of its weights; resume with --ema <its decay> or start a new run")

    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None) if world > 1 else model
    drop = GlobalDropout(a.seed, rank, world)
    install_dropout(model, drop)
    train_cfg = {
        "steps": a.steps, "batch": a.batch, "lr": a.lr, "warmup": a.warmup, "minLrRatio": DEFAULTS["minLrRatio"], "clip": a.clip,
        "adamw": {**DEFAULTS["adamw"], "weightDecay": a.weight_decay}, "seed": a.seed, "checkpointEvery": a.checkpoint_every,
        "logEvery": a.log_every, "valEvery": a.val_every, "valLimit": a.val_limit, "ema": a.ema, "emaWarmup": ema_warmup,
    }
    extra = {"train": train_cfg, "tokens": a.tokens, "tokenizerId": h["tokenizerId"], "tokenizerPath": h["tokenizerPath"],
             "classNames": h["classNames"], "twin": {"processes": world, "device": device.type, "torch": torch.__version__}}

    def save(step: int) -> None:
        if rank != 0:
            return
        tensors = from_twin(model.state_dict(), cfg)
        if ema is not None:
            tensors.update({EMA_PREFIX + k: v for k, v in from_twin(ema, cfg).items()})
        m = from_twin(opt.m, cfg) if opt.m else None
        v = from_twin(opt.v, cfg) if opt.v else None
        save_checkpoint(ck_dir, Checkpoint(kind="generator", config=cfg, step=step, tensors=tensors, extra=extra,
                                           opt_m=m, opt_v=v, opt_step=opt.step), fmt=a.format)

    B = a.batch // world
    T = cfg["gridH"] * cfg["gridW"]
    autocast = use_cuda and not a.no_autocast
    if rank == 0:
        os.makedirs(a.out, exist_ok=True)
        if not a.resume and os.path.exists(metrics_path):
            os.remove(metrics_path)
    model.train()
    t0 = time.time()
    for s in range(step0, a.steps):
        idx = batch_indices(h["count"], a.batch, s, a.seed)
        labels = drop_class_labels(tokens.labels[idx], cfg["numClasses"], cfg["classDropout"], a.seed, s)
        mine = slice(rank * B, (rank + 1) * B)
        tok = torch.from_numpy(tokens.tokens[idx][mine]).to(device)
        lab = torch.from_numpy(labels[mine]).to(device)
        drop.start(s)
        lr = warmup_cosine(s, a.lr, a.warmup, a.steps, DEFAULTS["minLrRatio"])
        for p in names.values():
            p.grad = None
        if autocast:  # (torch 1.13 probes CUDA even for a disabled autocast: enter it only on CUDA)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, subs, accs = loss_of(ddp, model, tok, lab)
        else:
            loss, subs, accs = loss_of(ddp, model, tok, lab)
        loss.backward()  # DDP averages the gradients over the processes: the global batch's mean loss
        grad_norm = clip_grads(list(names.values()), a.clip)
        opt.update(lr)
        if ema is not None:
            d = ema_decay_at(a.ema, s, ema_warmup)
            with torch.no_grad():
                for k, e in ema.items():
                    e.copy_(e * d + names[k].detach() * (1 - d))
        done = s + 1
        logged = done % a.log_every == 0 or done == a.steps
        if logged:
            vals = torch.stack([loss.detach().float()] + [x.detach().float() for x in subs + accs])
            if world > 1:
                dist.all_reduce(vals)
                vals /= world
            if not math.isfinite(float(vals[0])):
                kept = f"{ck_dir} is kept" if os.path.exists(ck_dir) else "no checkpoint was written yet"
                fail(f"training diverged: loss is {float(vals[0])} at step {done}; stopped, {kept}")
            if rank == 0:
                el = time.time() - t0
                rec = {"step": done, "loss": float(vals[0]), "lr": lr, "gradNorm": grad_norm}
                K = len(subs)
                rec.update({f"acc{k}": float(vals[1 + K + k]) for k in range(K)})
                rec.update({f"loss{k}": float(vals[1 + k]) for k in range(K)})
                if val is not None and ((a.val_every > 0 and done % a.val_every == 0) or done == a.steps):
                    rec["valLoss"] = evaluate_loss(model, val, a.batch, a.val_limit, device)
                rec.update({"tokensPerSec": (done - step0) * a.batch * T / max(el, 1e-9), "seconds": el, "processes": world})
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), file=sys.stderr)
        if done % a.checkpoint_every == 0 or done == a.steps:
            save(done)
    if rank == 0:
        print(json.dumps({"checkpoint": ck_dir, "steps": a.steps, "processes": world}))
    end_processes(world)
    return 0


@torch.no_grad()
def evaluate_loss(model: Generator, val, batch: int, limit: int, device) -> float:
    """factorgen's evaluateLoss: mean loss of the first ``limit`` held-out sequences, no dropout or label drop (rank 0)."""
    was = model.training
    model.eval()
    n = min(limit, val.header["count"])
    total = 0.0
    for i in range(0, n, batch):
        b = min(batch, n - i)
        tok = torch.from_numpy(val.tokens[i : i + b]).to(device)
        lab = torch.from_numpy(val.labels[i : i + b]).to(device)
        total += float(model.loss(tok, lab)[0]) * b
    model.train(was)
    return total / max(1, n)


def loss_of(ddp, model: Generator, tok: torch.Tensor, lab: torch.Tensor):
    """The generator loss through the DDP wrapper (so its gradient hooks fire): forward returns the K logits."""
    logits = ddp(tok, lab)
    targets = tok.reshape(-1, model.K)
    subs, accs = [], []
    for k, l in enumerate(logits):
        l2 = l.reshape(-1, l.shape[-1]).float()
        subs.append(torch.nn.functional.cross_entropy(l2, targets[:, k]))
        accs.append((l2.argmax(-1) == targets[:, k]).float().mean())
    return torch.stack(subs).mean(), subs, accs


if __name__ == "__main__":
    sys.exit(main())
