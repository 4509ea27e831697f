import { Help, type Command, type Option } from 'commander';

/**
 * `--help` for people (issue 25): options in groups (model, losses, training, sampling, data, output, compute), defaults
 * printed as a user types them (`1024`, `1,2,2`, `0`, not `[1024]` or `"0"`), required flags marked, and an example
 * for every command. Flags and behaviour are unchanged: only the help text is.
 */

const GROUPS: Record<string, string[]> = {
  'Model:': [
    'generator', 'tokenizer', 'teacher', 'from', 'tokenizer-path', 'kind', 'quantizer', 'sub-codebooks', 'codebook-size', 'code-dim',
    'base-channels', 'channel-mult', 'blocks', 'attention', 'latent-channels', 'factorize', 'branch-blocks', 'quant-proj', 'attn-proj-attention', 'preset',
    'width', 'depth', 'heads', 'mlp-hidden', 'head-mode', 'head-layers', 'rope', 'class-rope', 'bits', 'variants', 'generation',
  ],
  'Losses:': [
    'beta', 'entropy-weight', 'entropy-temperature', 'disentangle-on', 'disentangle-weight', 'perceptual-weight', 'align-weight',
    'align-sub-codebook', 'align-target', 'align-target-weight', 'align-layers', 'align-heads', 'adversarial-weight', 'adversarial-start',
  ],
  'Training:': [
    'resume', 'steps', 'batch', 'lr', 'warmup', 'weight-decay', 'clip', 'seed', 'ema', 'flip', 'usage-window', 'restart-dead-every',
    'dropout', 'class-dropout', 'val-every', 'val-limit', 'budget', 'seeds',
  ],
  'Sampling:': ['classes', 'per-class', 'cfg', 'temperature', 'top-k', 'top-p', 'cache', 'force'],
  'Data:': ['dataset', 'data', 'size', 'channels', 'tokens', 'val', 'split', 'limit', 'train-limit', 'samples'],
  'Output:': ['out', 'to', 'overwrite', 'checkpoint-every', 'log-every', 'scale', 'grid', 'rows', 'cols', 'title', 'port', 'host'],
  'Compute:': ['backend', 'threads', 'jobs', 'verbose'],
};
const GROUP_OF = new Map(Object.entries(GROUPS).flatMap(([g, names]) => names.map((n) => [n, g] as const)));
const ORDER = Object.keys(GROUPS);

/** Flags whose group depends on the command: sampling's seed and batch are not training's. */
function groupFor(path: string, name: string): string | undefined {
  if (path === 'sample' && (name === 'seed' || name === 'batch')) return 'Sampling:';
  return GROUP_OF.get(name);
}

/** One example per command, by its path ("" = factorgen itself). Every flag here is real (test/cli/help.test.ts runs them through the parser). */
export const EXAMPLES: Record<string, string> = {
  '': 'factorgen sample --generator pretrained/generator --per-class 4 --out out/demo',
  info: 'factorgen info --backend webgpu',
  teacher: 'factorgen teacher train --out runs/teacher --steps 600 --batch 64',
  'teacher train': 'factorgen teacher train --out runs/teacher --steps 600 --batch 64',
  tokenizer: 'factorgen tokenizer encode --tokenizer pretrained/tokenizer --limit 5000 --out runs/quick/train.tokens',
  'tokenizer train': 'factorgen tokenizer train --out runs/tok --preset fqgan --teacher runs/teacher --codebook-size 256 --steps 3000 --batch 64',
  'tokenizer reconstruct': 'factorgen tokenizer reconstruct --tokenizer pretrained/tokenizer --out out/recon',
  'tokenizer encode': 'factorgen tokenizer encode --tokenizer pretrained/tokenizer --limit 5000 --out runs/quick/train.tokens',
  'tokenizer decode': 'factorgen tokenizer decode --tokens runs/quick/train.tokens --limit 16 --out out/decoded',
  generator: 'factorgen generator train --tokens runs/quick/train.tokens --out runs/quick/generator --steps 300 --width 64 --depth 2 --heads 4',
  'generator train':
    'factorgen generator train --tokens runs/quick/train.tokens --out runs/quick/generator --steps 300 --batch 32 --width 64 --depth 2 --heads 4 --lr 3e-3 --warmup 20 --dropout 0',
  sample: 'factorgen sample --generator runs/quick/generator --per-class 4 --out runs/quick/samples',
  eval: 'factorgen eval samples --samples runs/quick/samples',
  'eval samples': 'factorgen eval samples --samples runs/quick/samples',
  'eval recon': 'factorgen eval recon --tokenizer pretrained/tokenizer --limit 2000',
  'eval probe': 'factorgen eval probe --tokenizer pretrained/tokenizer --out out/probe',
  compare: 'factorgen compare --out reports/mine --budget smoke',
  export: 'factorgen export --from runs/quick/generator --to models/quick',
  serve: 'factorgen serve --generator pretrained/generator --port 8080',
  web: 'factorgen web build --generator pretrained/generator --out site',
  'web build': 'factorgen web build --generator pretrained/generator --out site',
  report: 'factorgen report runs/quick/generator --out report.html',
};

/** A default as a user would type it on the command line. */
export function typedDefault(v: unknown): string | null {
  if (v === undefined || typeof v === 'boolean') return null;
  if (Array.isArray(v)) return v.length ? v.join(',') : null;
  return String(v);
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Groups every command's options, marks `required` ones (call before their `mandatory` is cleared, see program.ts), and
 * adds the examples. Recurses into subcommands.
 */
export function styleHelp(cmd: Command, required = new Set<Option>()): void {
  const path = commandPath(cmd);
  for (const o of cmd.options) {
    if (o.mandatory) required.add(o);
    const group = groupFor(path, o.attributeName().replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
    if (group) o.helpGroup(group);
  }
  // Groups in a fixed order whatever order the command declared its options in. Only the help's view is reordered:
  // cmd.options keeps the declared order, which other code reads (the resume table lists contradictions in it).
  const rank = (heading: string) => {
    const i = ORDER.indexOf(heading);
    return i < 0 ? ORDER.length : i;
  };
  cmd.configureHelp({
    sortOptions: false,
    // commander lists groups in the order their first item appears in the unsorted list: hand it the list in group order.
    groupItems: <T extends Command | Option>(unsorted: T[], visible: T[], getGroup: (item: T) => string): Map<string, T[]> =>
      new Help().groupItems<T>(
        unsorted.map((item, i) => [item, i] as const).sort((a, b) => rank(getGroup(a[0])) - rank(getGroup(b[0])) || a[1] - b[1]).map(([item]) => item),
        visible,
        getGroup,
      ),
    optionDescription: (o: Option) => {
      const extra: string[] = [];
      if (required.has(o)) extra.push('required');
      if (o.argChoices) extra.push(`one of: ${o.argChoices.join(', ')}`);
      const d = o.negate ? null : o.defaultValueDescription ?? typedDefault(o.defaultValue);
      if (d !== null) extra.push(`default: ${d}`);
      return extra.length ? `${o.description} (${extra.join('; ')})` : o.description;
    },
  });
  const ex = EXAMPLES[path];
  if (ex) cmd.addHelpText('after', `\nExample:\n  $ ${ex}\n`);
  for (const sub of cmd.commands) styleHelp(sub, required);
}
