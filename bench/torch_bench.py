#!/usr/bin/python3
"""PyTorch (CPU) reference for bench/models.ts: the same architectures, batches and timing protocol.

Mirrors, layer for layer and parameter for parameter:
  tokenizer  the PyTorch twin (python/factorgen_twin/tokenizer.py, tokenizer_train.py) of
             packages/tokenizer/src/{arch/encoder,arch/decoder,arch/layers,quant/fq,quant/codebook,losses/disentangle,model}.ts with
             presetFashion('fq', 2, 256, baseChannels 24), factorize 'projection', perceptual and adversarial losses off;
             training step = the twin's training pass + backward + clip_grad_norm_(1.0) + AdamW(0.9, 0.95, eps 1e-8, no
             decay), reading back every loss term and counting the indices in the usage window (as trainTokenizer does).
  generator  the PyTorch twin (python/factorgen_twin/generator.py) of packages/generator/src/{layers,gpt,head,model}.ts:
             Llama-style blocks (RMSNorm eps 1e-6, bias-free q/k/v fused in one matrix as LlamaGen's wqkv, bias-free
             out, 2-D RoPE in the rotate-half layout, causal softmax attention, SwiGLU), class token, factorized AR head over the K sub-tokens of a position; dropout 0.1 and class dropout 0.1 in training.
  sampling   packages/generator/src/sampler.ts: classifier-free guidance over [cond; null] rows, temperature 1,
             with a KV cache (backbone and head) or recomputing the prefix every step.

Layout is PyTorch's native NCHW for the convolutions (ours is NHWC); the per-sample attention loop of the TS encoder is
a batched bmm here; the TS rotate-half matmul is torch.cat here: same math, each side's idiomatic form.

Usage: /usr/bin/python3 bench/torch_bench.py [--quick] [--threads 1,2] [--omp-passive] [--workloads a,b]
(one JSON object on stdout). Workloads: the four above, and the issue-10 table rows (ISSUE below).
Each (thread count, workload) runs in its own process so that each peak RSS is that workload's alone.
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn

# Both models are the twin's (python/factorgen_twin).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
from factorgen_twin.generator import Generator as TwinGenerator  # noqa: E402
from factorgen_twin.tokenizer import Tokenizer as TwinTokenizer, to_torch as twin_to_torch  # noqa: E402
from factorgen_twin.tokenizer_train import init_tokenizer, training_forward  # noqa: E402
from factorgen_twin.train_generator import init_generator  # noqa: E402
from factorgen_twin.train_tokenizer import CodeHistogram  # noqa: E402

WORKLOADS = ['tokenizerTrain', 'generatorTrain', 'sampleCached', 'sampleUncached']
BATCH = {'tokenizer': 32, 'generator': 32, 'sample': 20, 'cfgScale': 2.0}
TRAIN = {'tokenizerLr': 2e-3, 'generatorLr': 1e-3, 'warmup': 100, 'totalSteps': 2000, 'clip': 1.0}


def plan_for(workload, quick):
    """Same warm-up / timed call counts as planFor() in bench/models.ts for the wasm backend; the issue's rows as
    bench/table.ts (8 steps, the first two not timed; --quick 4)."""
    if workload in ISSUE:
        return {'warmup': 2, 'runs': 2 if quick else 6}
    if quick:
        return {'warmup': 1, 'runs': 1 if workload == 'sampleUncached' else 2}
    return {'warmup': 2, 'runs': 2 if workload == 'sampleUncached' else 3 if workload == 'sampleCached' else 10}


def warmup_cosine(step, lr, warmup, total, min_ratio=0.1):
    """packages/nn/src/optim.ts warmupCosine."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


# ----------------------------------------------------------------------------------------------------------- tokenizer
TOKENIZER = {
    'imageSize': 28, 'channels': 1, 'baseChannels': 24, 'channelMult': [1, 2, 2], 'blocksPerLevel': 1,
    'attention': True, 'normGroups': 8, 'latentChannels': 32, 'subCodebooks': [(256, 8), (256, 8)],
    'beta': 0.25, 'entropyWeight': 0.1, 'entropyTemperature': 0.01, 'disentangleWeight': 0.1,
}


def twin_config(c):
    """The bench's tokenizer as factorgen's TokenizerConfig (bench/models.ts benchTokenizerConfig: presetFashion('fq', 2,
    256, baseChannels 24) with factorize 'projection', no teacher, no discriminator; the issue rows as table.ts's flags
    make it): entropy at 0.01 on cosine logits = 0.02 on -||z-c||^2, disentanglement on the quantized codes."""
    return {
        'imageSize': c['imageSize'], 'channels': c['channels'], 'baseChannels': c['baseChannels'], 'channelMult': c['channelMult'],
        'blocksPerLevel': c['blocksPerLevel'], 'attention': c['attention'], 'normGroups': c['normGroups'],
        'latentChannels': c['latentChannels'], 'factorize': 'projection', 'perceptualWeight': 0,
        'quantizer': {'kind': 'fq', 'subCodebooks': [{'size': V, 'dim': d} for V, d in c['subCodebooks']], 'beta': c['beta'],
                      'entropyWeight': c['entropyWeight'], 'entropyTemperature': 2 * c['entropyTemperature'], 'entropyLogits': 'sq-dist',
                      'disentangleWeight': c['disentangleWeight'], 'disentangleOn': 'quantized'},
    }


class FQTokenizer(nn.Module):
    """The twin's tokenizer (python/factorgen_twin: tokenizer.py's encoder and decoder, tokenizer_train.py's training
    pass with factorgen's losses; checked against factorgen by test/twin/trainTokenizer.test.ts), factorgen's names and
    shapes (init_tokenizer), as one module for the optimizer."""

    def __init__(self, c):
        super().__init__()
        cfg = twin_config(c)
        self.params = nn.ParameterDict({k: nn.Parameter(v) for k, v in twin_to_torch(init_tokenizer(cfg)).items()})
        self.tok = TwinTokenizer(cfg, {})
        self.hist = CodeHistogram([s['size'] for s in cfg['quantizer']['subCodebooks']], 50)

    def forward(self, x):
        self.tok.p = dict(self.params.items())
        _recon, idx, _z, losses, total = training_forward(self.tok, x, None, [])
        return total, losses, idx


# ----------------------------------------------------------------------------------------------------------- generator
GENERATOR = {
    'gridH': 7, 'gridW': 7, 'subCodebookSizes': [256, 256], 'numClasses': 10, 'width': 128, 'depth': 4, 'heads': 4,
    'mlpHidden': 384, 'headMode': 'ar', 'headLayers': 1, 'headWidth': 128, 'headHeads': 4, 'headMlpHidden': 384,
    'dropout': 0.1, 'classDropout': 0.1, 'rope': '2d',
}


class Generator(TwinGenerator):
    """The twin's generator (python/factorgen_twin/generator.py: factorgen's architecture, checked against it by
    test/twin/generatorParity.test.ts) with factorgen's initialization and the training step's label dropout."""

    def __init__(self, c):
        super().__init__(c)
        self.c = self.cfg
        init_generator(self, '0')

    def loss(self, tokens, labels):
        """tokens: [B, T, K] long, labels: [B] -> mean sub-token cross-entropy, sub-losses, sub-accuracies."""
        c = self.c
        if self.training and c['classDropout'] > 0:
            labels = torch.where(torch.rand(labels.shape[0]) < c['classDropout'], torch.full_like(labels, c['numClasses']), labels)
        return super().loss(tokens, labels)


@torch.no_grad()
def sample(gen, labels, cfg_scale, use_cache, rng, temperature=1.0):
    """sampler.ts decode() on the twin's modules: rows [cond (B); null (B)], guided logits, one categorical draw per row
    and sub-token (torch.multinomial here; factorgen and the twin's own sampler draw on the host)."""
    c = gen.c
    T, K, B = c['gridH'] * c['gridW'], len(c['subCodebookSizes']), labels.shape[0]
    rows = torch.cat((labels, torch.full_like(labels, c['numClasses'])))
    out = torch.zeros(B, T, K, dtype=torch.long)
    head = gen.head
    cache = None
    for t in range(T):
        if use_cache:
            x = gen.cls_embedding(rows) if t == 0 else gen.embed_tokens(out[:, t - 1:t].repeat(2, 1, 1))
            h, cache = gen.backbone(x, t, cache)
            h = h[:, 0]
        else:
            x = gen.cls_embedding(rows)
            if t > 0:
                x = torch.cat((x, gen.embed_tokens(out[:, :t].repeat(2, 1, 1))), 1)
            h = gen.backbone(x, 0, None)[0][:, t]
        head_cache = None
        for k in range(K):
            if use_cache:
                slots = head.slots(0, h, None) if k == 0 else head.slots(k, None, out[:, t, k - 1:k].repeat(2, 1))
                y, head_cache = head.transformer(slots, head_cache)
                logits = head.output[k](y[:, 0])
            else:
                y, _ = head.transformer(head.slots(0, h, out[:, t, :k].repeat(2, 1) if k > 0 else None), None)
                logits = head.output[k](y[:, k])
            guided = logits[B:] + cfg_scale * (logits[:B] - logits[B:])
            out[:, t, k] = torch.multinomial(torch.softmax(guided / temperature, -1), 1, generator=rng)[:, 0]
    return out


# ---------------------------------------------------------------------------------------------- the issue's table rows
# The CLI runs of bench/table.ts (issue 10), same architectures: `tokenizer train --batch 64 --base-channels 32
# --channel-mult 1,2,2 --blocks 1 --no-attention --latent-channels 64 --sub-codebooks 2 --codebook-size 1024 --code-dim 8
# --factorize projection [--entropy-weight 0]` (entropy on -||z-c||^2 / 0.02 = cosine / 0.01 up to a constant, as here;
# disentanglement on the quantized codes) and `generator train --width 256 --depth 6 --heads 8 --head-layers 2
# --mlp-hidden 704` on 2 x 256 codes over 7x7 (the shipped tokenizer's), batch 64 and 32, and width 192.
ISSUE_TOKENIZER = {**TOKENIZER, 'baseChannels': 32, 'attention': False, 'latentChannels': 64,
                   'subCodebooks': [(1024, 8), (1024, 8)], 'disentangleOn': 'quantized'}


def issue_generator(width):
    return {**GENERATOR, 'width': width, 'depth': 6, 'heads': 8, 'mlpHidden': 704, 'headLayers': 2, 'headWidth': width,
            'headHeads': 8, 'headMlpHidden': 704}


ISSUE = {
    'tokenizerEntropy': ('tokenizer', ISSUE_TOKENIZER, 64),
    'tokenizerNoEntropy': ('tokenizer', {**ISSUE_TOKENIZER, 'entropyWeight': 0.0}, 64),
    'generator256b64': ('generator', issue_generator(256), 64),
    'generator256b32': ('generator', issue_generator(256), 32),
    'generator192b64': ('generator', issue_generator(192), 64),
}


# ----------------------------------------------------------------------------------------------------------- running
def count(model):
    return sum(p.numel() for p in model.parameters())


def prepare(workload):
    """(params, batch, unit, items per call, call(i)) for one workload."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    kind, c, B = ISSUE.get(workload, (None, None, None))
    if workload == 'tokenizerTrain' or kind == 'tokenizer':
        if kind is None:
            c, B = TOKENIZER, BATCH['tokenizer']
        model = FQTokenizer(c).train()
        batches = [torch.rand(B, c['channels'], c['imageSize'], c['imageSize'], generator=g) * 2 - 1 for _ in range(4)]
        opt = torch.optim.AdamW(model.parameters(), lr=TRAIN['tokenizerLr'], betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)

        def call(s):
            for grp in opt.param_groups:
                grp['lr'] = warmup_cosine(s, TRAIN['tokenizerLr'], TRAIN['warmup'], TRAIN['totalSteps'])
            opt.zero_grad(set_to_none=True)
            total, losses, idx = model(batches[s % len(batches)])
            total.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN['clip'])
            opt.step()
            total.item(), norm.item(), [v.item() for v in losses.values()]
            model.hist.add(idx.numpy().reshape(-1))  # the code-usage window, as trainTokenizer counts it

        return count(model), B, 'images', B, call
    c = GENERATOR if kind is None else c
    T, K = c['gridH'] * c['gridW'], len(c['subCodebookSizes'])
    if workload == 'generatorTrain' or kind == 'generator':
        B = BATCH['generator'] if kind is None else B
        model = Generator(c).train()
        batches = [(torch.stack([torch.randint(V, (B, T), generator=g) for V in c['subCodebookSizes']], -1),
                    torch.randint(c['numClasses'], (B,), generator=g)) for _ in range(4)]
        opt = torch.optim.AdamW(model.parameters(), lr=TRAIN['generatorLr'], betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)

        def call(s):
            for grp in opt.param_groups:
                grp['lr'] = warmup_cosine(s, TRAIN['generatorLr'], TRAIN['warmup'], TRAIN['totalSteps'])
            opt.zero_grad(set_to_none=True)
            tokens, labels = batches[s % len(batches)]
            loss, subs, accs = model.loss(tokens, labels)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN['clip'])
            opt.step()
            loss.item(), norm.item(), [v.item() for v in subs + accs]

        return count(model), B, 'tokens', B * T, call
    B = BATCH['sample']
    model = Generator(c).eval()
    labels = torch.arange(B) % c['numClasses']
    use_cache = workload == 'sampleCached'
    return count(model), B, 'images', B, lambda s: sample(model, labels, BATCH['cfgScale'], use_cache, g)


def run_workload(workload, threads, quick):
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    plan = plan_for(workload, quick)
    params, batch, unit, items, call = prepare(workload)
    rss_start = rss_now()
    i = 0
    for _ in range(plan['warmup']):
        call(i)
        i += 1
    wall, cpu = [], []
    for _ in range(plan['runs']):
        c0, w0 = time.process_time(), time.perf_counter()
        call(i)
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        i += 1
    total, cpu_total = sum(wall), sum(cpu)
    srt = sorted(wall)
    return {
        'workload': workload, 'backend': 'pytorch', 'detail': f'torch {torch.__version__} cpu',
        'threads': torch.get_num_threads(), 'blas': blas_library(), 'params': params, 'batch': batch, 'unit': unit, 'itemsPerCall': items,
        'warmup': plan['warmup'], 'runs': plan['runs'],
        'msPerCall': {'mean': round(total / plan['runs'], 2), 'median': round(srt[len(srt) // 2], 2), 'min': round(srt[0], 2)},
        'itemsPerSecond': round(items * plan['runs'] / (total / 1000), 3),
        'cpuMsPerCall': round(cpu_total / plan['runs'], 2),
        'itemsPerCpuSecond': round(items * plan['runs'] / (cpu_total / 1000), 3),
        'rssMiB': {'start': rss_start, 'end': rss_now(),
                   'peak': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
        'seconds': round(time.perf_counter() - t0, 1),
    }


def blas_library():
    """The BLAS shared library this process loaded (Debian's reference libblas is ~20x slower than OpenBLAS on matMul)."""
    with open('/proc/self/maps') as f:
        libs = sorted({l.split()[-1] for l in f if 'blas' in l.split()[-1].rsplit('/', 1)[-1]})
    return libs[0] if libs else 'none found'


def rss_now():
    with open('/proc/self/statm') as f:
        return round(int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='smoke run: 1 warm-up and 1-2 timed calls')
    ap.add_argument('--threads', default='1,2', help='comma list of torch.set_num_threads values (default 1,2)')
    ap.add_argument('--workloads', default=','.join(WORKLOADS))
    ap.add_argument('--omp-passive', action='store_true',
                    help='OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning. On a busy machine the '
                         'default spinning makes 2 threads ~10x slower than 1; on an idle one leave it off (the default)')
    ap.add_argument('--worker', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(run_workload(a.worker, int(a.threads), a.quick)), flush=True)
        return
    runs = {}
    for n in [int(t) for t in a.threads.split(',')]:
        per = {}
        for w in a.workloads.split(','):
            print(f'torch: {n} thread(s) {w}', file=sys.stderr, flush=True)
            cmd = [sys.executable, os.path.abspath(__file__), '--worker', w, '--threads', str(n)] + (['--quick'] if a.quick else [])
            # OpenBLAS keeps its own thread pool: pin it (and OpenMP) to the same count as torch.set_num_threads.
            env = {**os.environ, 'OMP_NUM_THREADS': str(n), 'OPENBLAS_NUM_THREADS': str(n), 'MKL_NUM_THREADS': str(n)}
            if a.omp_passive:
                env['OMP_WAIT_POLICY'] = 'PASSIVE'
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = p.stdout.strip().splitlines()
            if p.returncode == 0 and lines and lines[-1].startswith('{'):
                per[w] = json.loads(lines[-1])
                r = per[w]
                print(f"  {r['itemsPerSecond']} {r['unit']}/s, {r['msPerCall']['mean']} ms/call, peak {r['rssMiB']['peak']} MiB",
                      file=sys.stderr, flush=True)
            else:
                per[w] = {'error': f'exit {p.returncode}: ' + (p.stderr.strip().splitlines() or [''])[-1][:300]}
                print(f"  failed: {per[w]['error']}", file=sys.stderr, flush=True)
        runs[str(n)] = per
    blas = blas_library()
    params = {'tokenizer': count(FQTokenizer(TOKENIZER)), 'generator': count(Generator(GENERATOR))}
    for w, (kind, c, _) in ISSUE.items():
        if w in a.workloads.split(','):
            params[w] = count(FQTokenizer(c) if kind == 'tokenizer' else Generator(c))
    print(json.dumps({
        'kind': 'pytorch', 'torch': torch.__version__, 'python': sys.version.split()[0], 'cpus': os.cpu_count(),
        'defaultThreads': torch.get_num_threads(), 'blas': blas,
        'referenceBlas': '/blas/libblas' in blas, 'ompWaitPolicy': 'PASSIVE' if a.omp_passive else os.environ.get('OMP_WAIT_POLICY', 'default'),
        'quick': a.quick, 'params': params, 'loadavg': [round(x, 2) for x in os.getloadavg()],
        'runs': runs,
    }))


if __name__ == '__main__':
    main()
