import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { smallGenerator7x7 } from '@factorgen/generator';
import { applyPreset, registerTokenizer, tokenizerConfigFromFlags } from '@factorgen/cli/commands/tokenizer';
import { registerGenerator } from '@factorgen/cli/commands/generator';

/** Parses `tokenizer train ...args` with the real option definitions and returns the flags as the action sees them. */
function parse(args: string[]): ReturnType<typeof applyPreset> {
  const program = new Command().exitOverride();
  registerTokenizer(program);
  const train = program.commands.find((c) => c.name() === 'tokenizer')!.commands.find((c) => c.name() === 'train')!;
  let got: ReturnType<typeof applyPreset> | null = null;
  train.action((flags, cmd: Command) => {
    got = applyPreset(flags, (k) => cmd.getOptionValueSource(k) !== 'cli');
  });
  program.parse(['node', 'factorgen', 'tokenizer', 'train', '--out', '/tmp/x', ...args]);
  return got!;
}

describe('--preset fqgan', () => {
  it("sets FQGAN's choices for the flags not given, keeps the ones given, and builds a valid config", () => {
    const f = parse(['--preset', 'fqgan', '--teacher', 'runs/teacher', '--steps', '3000', '--entropy-weight', '0.05']);
    expect(f).toMatchObject({
      quantizer: 'fq', subCodebooks: 2, factorize: 'branch', disentangleWeight: 0.1, disentangleOn: 'quantized', entropyWeight: 0.05,
      entropyTemperature: 0.01, perceptualWeight: 1, alignTarget: ['1:runs/teacher'], alignTargetWeight: 0.5, adversarialWeight: 0.5,
      adversarialStart: 300, ema: 0.995, restartDeadEvery: 0,
    });
    // FQGAN restarts no codes; given on the command line, the flag still wins
    expect(parse(['--preset', 'fqgan', '--teacher', 'runs/teacher', '--restart-dead-every', '50']).restartDeadEvery).toBe(50);
    const cfg = tokenizerConfigFromFlags(f, 28, 1, 128, [128]);
    expect(cfg.alignTargets).toEqual([{ subCodebook: 1, teacher: 0, teacherDim: 128, weight: 0.5, layers: 1, heads: 4 }]);
    expect(cfg.quantizer).toMatchObject({ entropyWeight: 0.05, entropyTemperature: 0.01, entropyLogits: 'sq-dist', disentangleOn: 'quantized' });
    expect(cfg.adversarial).toMatchObject({ weight: 0.5, startStep: 300 });
    expect(cfg.factorize).toBe('branch');
  });

  it('FQGAN-Triple: two --align-target flags replace the default target and give K = 3 unless --sub-codebooks is given', () => {
    const f = parse(['--preset', 'fqgan', '--teacher', 'runs/cls', '--align-target', '1:runs/cls', '--align-target', '2:runs/rot']);
    expect(f).toMatchObject({ subCodebooks: 3, alignTarget: ['1:runs/cls', '2:runs/rot'] });
    const cfg = tokenizerConfigFromFlags(f, 28, 1, 128, [128, 64]);
    expect(cfg.quantizer.subCodebooks.length).toBe(3);
    expect(cfg.alignTargets!.map((t) => [t.subCodebook, t.teacher, t.teacherDim])).toEqual([[1, 0, 128], [2, 1, 64]]);
    expect(parse(['--preset', 'fqgan', '--teacher', 'a', '--align-target', '0:a', '--align-target', '1:b']).subCodebooks).toBe(2);
    expect(() => parse(['--preset', 'fqgan', '--teacher', 'a', '--sub-codebooks', '2', '--align-target', '2:b']).subCodebooks).not.toThrow();
    expect(() => tokenizerConfigFromFlags(parse(['--preset', 'fqgan', '--teacher', 'a', '--sub-codebooks', '2', '--align-target', '2:b']), 28, 1, 128, [128])).toThrow(
      '--align-target 2:b: sub-codebook 2 does not exist (K = 2)',
    );
  });

  it('without --teacher it fails with one line; without the preset nothing changes', () => {
    expect(() => parse(['--preset', 'fqgan'])).toThrow('--preset fqgan: needs --teacher DIR (its features give the perceptual loss, its embedding the alignment target)');
    const plain = parse([]);
    expect(plain).toMatchObject({ entropyWeight: 0.1, entropyTemperature: 0.02, ema: 0, alignTarget: [], adversarialWeight: 0, restartDeadEvery: 100 });
    expect(tokenizerConfigFromFlags(plain, 28, 1).factorize).toBe('branch');
  });
});

describe('--quant-proj attn (UniTok)', () => {
  it('a new config attends bidirectionally unless --attn-proj-attention causal; linear configs carry no attention field', () => {
    expect(tokenizerConfigFromFlags(parse(['--quant-proj', 'attn']), 28, 1).quantizer).toMatchObject({ kind: 'unitok', attention: 'bidirectional' });
    expect(tokenizerConfigFromFlags(parse(['--quant-proj', 'attn', '--attn-proj-attention', 'causal']), 28, 1).quantizer).toMatchObject({ kind: 'unitok', attention: 'causal' });
    expect(tokenizerConfigFromFlags(parse([]), 28, 1).quantizer.kind).toBe('fq');
    expect(tokenizerConfigFromFlags(parse([]), 28, 1).quantizer.attention).toBeUndefined();
  });

  it("averages the quantizer losses over K as UniTok; fq with linear projections sums them as FQGAN", () => {
    expect(tokenizerConfigFromFlags(parse(['--quant-proj', 'attn']), 28, 1).quantizer.lossOverK).toBe('mean');
    expect(tokenizerConfigFromFlags(parse([]), 28, 1).quantizer.lossOverK).toBe('sum');
  });
});

describe('generator train defaults (issue 23, chosen by short paired runs)', () => {
  it('weight decay 0.05 (LlamaGen, FAR), 3 head layers (FAR-L), the class token unrotated', () => {
    const program = new Command().exitOverride();
    registerGenerator(program);
    const train = program.commands.find((c) => c.name() === 'generator')!.commands.find((c) => c.name() === 'train')!;
    let got: Record<string, unknown> | null = null;
    train.action((flags: Record<string, unknown>) => {
      got = flags;
    });
    program.parse(['node', 'factorgen', 'generator', 'train', '--out', '/tmp/x', '--tokens', 't']);
    expect(got).toMatchObject({ weightDecay: 0.05, headLayers: 3, classRope: 'identity' });
    expect(smallGenerator7x7).toMatchObject({ headLayers: 3, classRope: 'identity' });
  });
});
