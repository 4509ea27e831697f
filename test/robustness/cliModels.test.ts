/**
 * Bad token files, bad checkpoints and bad flags through the real CLI: one stderr line (after the backend line)
 * naming the file or flag and the cause, a non-zero exit code, and the good checkpoints are left as they were.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadTokenizer } from '@factorgen/pipelines';
import { readTokenFile } from '@factorgen/io';
import { loadGenerator } from '@factorgen/pipelines';
import { errorLines, makeImageFolder, makePipeline, makeTokenFile, makeTokenizer, runCliProcess } from './fixtures';

let root: string;
let tok1: string; // checkpoint folders
let tok2: string;
let gen: string;
let genRun: string;
let t1: string; // token files
let t2: string;
let id1: string;
let id2: string;
let snapshot: Map<string, Buffer>;

/** Every file under the good checkpoints, to check that no failing command touched them. */
const filesOf = (...dirs: string[]) =>
  new Map(dirs.flatMap((d) => fs.readdirSync(d).map((f) => [path.join(d, f), fs.readFileSync(path.join(d, f))] as const)));

/** A copy of checkpoint folder `from` at root/<name>/checkpoint with `edit` applied; returns the run folder. */
function brokenCopy(from: string, name: string, edit: (ckDir: string) => void): string {
  const run = path.join(root, name);
  fs.cpSync(from, path.join(run, 'checkpoint'), { recursive: true });
  edit(path.join(run, 'checkpoint'));
  return run;
}
const editJson = (file: string, f: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  f(j);
  fs.writeFileSync(file, JSON.stringify(j));
};
const truncate = (file: string, keep: number) => fs.truncateSync(file, keep);

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-climodels-'));
  await initBackend('cpu');
  ({ tokDir: tok1, tokensFile: t1, genRun, genDir: gen } = await makePipeline(root, { tokenizer: 'tok1', tokens: 't1.tokens', seed: 'one' }));
  id1 = readTokenFile(t1).header.tokenizerId;
  tok2 = await makeTokenizer(path.join(root, 'tok2'), 'two');
  t2 = path.join(root, 't2.tokens');
  id2 = (await makeTokenFile(tok2, t2)).header.tokenizerId;
  snapshot = filesOf(tok1, tok2, gen);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

type Case = { args: string[]; line: string | RegExp; code: number };

/** Runs all cases concurrently; each must print exactly the backend line (when it got that far) and one error line. */
async function expectAll(cases: Case[]): Promise<void> {
  const results = await Promise.all(cases.map((c) => runCliProcess([...c.args, '--backend', 'wasm'])));
  results.forEach((r, i) => {
    const c = cases[i];
    const lines = errorLines(r.stderr);
    const where = `factorgen ${c.args.join(' ')}\n${r.stderr}`;
    expect(lines, where).toHaveLength(1);
    if (typeof c.line === 'string') expect(lines[0], where).toBe(c.line);
    else expect(lines[0], where).toMatch(c.line);
    expect(r.code, where).toBe(c.code);
  });
}

describe('token files', () => {
  it('another tokenizer, truncated, ids or labels out of range, bad magic, another tokenizer on resume: exit 2', async () => {
    const raw = fs.readFileSync(t1);
    const start = 12 + raw.readUInt32LE(8); // first record: int32 label, then sub-codebook 0's uint16 ids
    const truncated = path.join(root, 'truncated.tokens');
    fs.writeFileSync(truncated, raw.subarray(0, raw.length - 10));
    const outOfRange = path.join(root, 'range.tokens');
    const bad = Buffer.from(raw);
    bad.writeUInt16LE(16, start + 4 + 2 * 5); // record 0, sub-codebook 0, position 5: id 16 of a 16-code codebook
    fs.writeFileSync(outOfRange, bad);
    const badLabel = path.join(root, 'label.tokens');
    const bl = Buffer.from(raw);
    bl.writeInt32LE(7, start); // 3 classes
    fs.writeFileSync(badLabel, bl);
    const magic = path.join(root, 'magic.tokens');
    fs.writeFileSync(magic, Buffer.concat([Buffer.from('FGTOKEN9'), raw.subarray(8)]));
    const size = raw.length;
    const genFlags = ['--width', '16', '--depth', '1', '--heads', '2', '--batch', '4', '--steps', '1'];
    const tokDir2 = path.dirname(tok2);

    await expectAll([
      { args: ['tokenizer', 'decode', '--tokens', t1, '--tokenizer', tokDir2, '--out', path.join(root, 'dec1')], code: 2,
        line: `factorgen: --tokens ${t1}: written by tokenizer ${id1}, but ${tokDir2} is ${id2}` },
      { args: ['sample', '--generator', genRun, '--tokenizer', tokDir2, '--per-class', '1', '--out', path.join(root, 's1')], code: 2,
        line: `factorgen: --tokenizer ${tokDir2}: tokenizer ${id2} is not the one the generator was trained with (${id1})` },
      { args: ['tokenizer', 'decode', '--tokens', truncated, '--out', path.join(root, 'dec2')], code: 2,
        line: `factorgen: --tokens ${truncated}: token file truncated (expected ${size} bytes for 12 records, found ${size - 10})` },
      { args: ['tokenizer', 'decode', '--tokens', outOfRange, '--out', path.join(root, 'dec3')], code: 2,
        line: `factorgen: --tokens ${outOfRange}: record 0, sub-codebook 0 has token id 16, outside 0..15` },
      { args: ['generator', 'train', '--tokens', badLabel, '--out', path.join(root, 'g2'), ...genFlags], code: 2,
        line: `factorgen: --tokens ${badLabel}: record 0 has label 7, outside 0..2` },
      { args: ['tokenizer', 'decode', '--tokens', magic, '--out', path.join(root, 'dec4')], code: 2,
        line: `factorgen: --tokens ${magic}: not a factorgen token file (bad magic)` },
      { args: ['generator', 'train', '--resume', '--tokens', t2, '--out', genRun, ...genFlags, '--steps', '50'], code: 2,
        line: `factorgen: --tokens ${t2}: written by tokenizer ${id2}, the run was trained on ${id1}` },
    ]);
    for (const d of ['dec1', 'dec2', 'dec3', 'dec4', 's1', 'g2']) expect(fs.existsSync(path.join(root, d)), d).toBe(false);
  });
});

describe('checkpoints', () => {
  it('truncated, shapes not matching the config, newer format, wrong kind, missing tokenizer: exit 2', async () => {
    // The safetensors header's length (the first 8 bytes, little-endian; these headers are far below 2^32).
    const headerLength = (file: string) => fs.readFileSync(file).readUInt32LE(0);
    const truncWeights = brokenCopy(tok1, 'ck-trunc', (d) => truncate(path.join(d, 'model.safetensors'), 20));
    const wheader = headerLength(path.join(tok1, 'model.safetensors'));
    const shapes = brokenCopy(tok1, 'ck-shapes', (d) => editJson(path.join(d, 'config.json'), (j) => ((j.config as { baseChannels: number }).baseChannels = 16)));
    const newer = brokenCopy(tok1, 'ck-newer', (d) => editJson(path.join(d, 'config.json'), (j) => (j.format = 3)));
    const genTrunc = brokenCopy(gen, 'gen-trunc', (d) => truncate(path.join(d, 'model.safetensors'), 100));
    const gheader = headerLength(path.join(gen, 'model.safetensors'));
    const optTrunc = brokenCopy(gen, 'gen-opt', (d) => truncate(path.join(d, 'optimizer.safetensors'), 64));
    const oheader = headerLength(path.join(gen, 'optimizer.safetensors'));
    // The legacy format (weights.bin) is still read, with its own checks.
    const legacy = path.join(root, 'gen-legacy');
    const exported = await runCliProcess(['export', '--from', gen, '--to', legacy, '--format', 'factorgen']);
    expect(exported.code, exported.stderr).toBe(0);
    const legacyTrunc = brokenCopy(legacy, 'gen-legacy-trunc', (d) => truncate(path.join(d, 'weights.bin'), 100));
    const lbytes = fs.statSync(path.join(legacy, 'weights.bin')).size;
    const lostTok = brokenCopy(gen, 'gen-lost', (d) =>
      editJson(path.join(d, 'config.json'), (j) => ((j.extra as { tokenizerPath: string }).tokenizerPath = path.join(root, 'gone'))),
    );
    const ck = (run: string) => path.join(run, 'checkpoint');

    await expectAll([
      { args: ['tokenizer', 'reconstruct', '--tokenizer', truncWeights], code: 2,
        line: `factorgen: --tokenizer ${truncWeights}: checkpoint/model.safetensors: header of ${wheader} bytes is longer than the file (20 bytes)` },
      { args: ['tokenizer', 'reconstruct', '--tokenizer', shapes], code: 2,
        line: new RegExp(`^factorgen: --tokenizer ${shapes}: checkpoint: checkpoint does not match the model: encoder/conv_in/w: checkpoint \\[3,3,1,8\\] vs model \\[3,3,1,16\\]; .* and \\d+ more$`) },
      { args: ['tokenizer', 'reconstruct', '--tokenizer', newer], code: 2,
        line: `factorgen: --tokenizer ${newer}: checkpoint/config.json: was written by a newer factorgen (format 3, this version reads 1 and 2)` },
      { args: ['tokenizer', 'reconstruct', '--tokenizer', genRun], code: 2,
        line: `factorgen: --tokenizer ${genRun}: checkpoint: expected a tokenizer checkpoint, found a generator checkpoint` },
      { args: ['sample', '--generator', genTrunc, '--per-class', '1', '--out', path.join(root, 's2')], code: 2,
        line: `factorgen: --generator ${genTrunc}: checkpoint/model.safetensors: header of ${gheader} bytes is longer than the file (100 bytes)` },
      { args: ['sample', '--generator', legacyTrunc, '--per-class', '1', '--out', path.join(root, 's4')], code: 2,
        line: `factorgen: --generator ${legacyTrunc}: checkpoint/weights.bin: truncated: expected ${lbytes} bytes, found 100` },
      { args: ['generator', 'train', '--resume', '--tokens', t1, '--out', optTrunc, '--width', '16', '--depth', '1', '--heads', '2', '--steps', '50'], code: 2,
        line: `factorgen: --out ${optTrunc}: checkpoint/optimizer.safetensors: header of ${oheader} bytes is longer than the file (64 bytes)` },
      { args: ['sample', '--generator', lostTok, '--per-class', '1', '--out', path.join(root, 's3')], code: 2,
        line: `factorgen: --tokenizer: not given, and the tokenizer recorded in ${path.join(ck(lostTok), 'config.json')} (${path.join(root, 'gone')}) was not found, nor ${path.join(root, 'tokenizer')}; pass --tokenizer DIR` },
    ]);
    // The failed resume left its (broken) checkpoint as it was: nothing was written over it.
    expect(fs.statSync(path.join(ck(optTrunc), 'optimizer.safetensors')).size).toBe(64);
  });

  it('a hostile model.safetensors (header over the file or 100 MB, not JSON, duplicate names, unknown dtype, size mismatch, offsets out of range or overlapping): one line, exit 2', async () => {
    /** A copy of tok1 whose model.safetensors is the 8-byte length of `header`, `header` and `data` (`length` overrides the length). */
    const hostile = (name: string, header: string, data = 8, length?: number) =>
      brokenCopy(tok1, name, (d) => {
        const h = Buffer.from(header);
        const len = Buffer.alloc(8);
        len.writeUInt32LE(length ?? h.length, 0);
        fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.concat([len, h, Buffer.alloc(data)]));
      });
    const T = (name: string, dtype: string, shape: string, begin: number, end: number) =>
      `"${name}":{"dtype":"${dtype}","shape":${shape},"data_offsets":[${begin},${end}]}`;
    const cases: [string, string][] = [
      [hostile('h-long', '{}', 0, 4000), 'header of 4000 bytes is longer than the file (10 bytes)'],
      [hostile('h-huge', '{}', 0, 100_000_001), 'header of 100000001 bytes is over the 100 MB limit (not a safetensors file?)'],
      [hostile('h-json', '{"a":', 0), 'header is not valid JSON'],
      [hostile('h-dup', `{${T('w', 'F32', '[1]', 0, 4)},${T('w', 'F32', '[1]', 4, 8)}}`), 'tensor "w" appears twice in the header'],
      [hostile('h-dtype', `{${T('w', 'Q4', '[2]', 0, 8)}}`), 'tensor "w" has unknown dtype "Q4"'],
      [hostile('h-size', `{${T('w', 'F32', '[3]', 0, 8)}}`), 'tensor "w" has shape [3] of F32, 12 bytes, but data_offsets [0,8] hold 8'],
      [hostile('h-range', `{${T('w', 'F32', '[4]', 0, 16)}}`), 'tensor "w" has data_offsets [0,16] out of range (the data is 8 bytes)'],
      [hostile('h-overlap', `{${T('a', 'F32', '[2]', 0, 8)},${T('b', 'F32', '[1]', 4, 8)}}`), 'tensors "a" (bytes 0..8) and "b" (bytes 4..8) overlap'],
    ];
    await expectAll(cases.map(([run, cause]) => ({
      args: ['tokenizer', 'reconstruct', '--tokenizer', run], code: 2,
      line: `factorgen: --tokenizer ${run}: checkpoint/model.safetensors: ${cause}`,
    })));
  });
});

describe('flags', () => {
  // Commander's parsers are unit-tested one by one in test/cli/ui.test.ts; here a few go through the real CLI.
  it('unknown class names and indices, --per-class 0, negative / zero / NaN numbers, invalid combinations', async () => {
    // each run its own --out: two commands on one folder are refused by its lock
    let outs = 0;
    const sampleTo = () => ['sample', '--generator', genRun, '--out', path.join(root, `s4-${outs++}`)];
    const images = path.join(root, 'images');
    await makeImageFolder(images, { a: 2, b: 2 });
    const tokTrain = ['tokenizer', 'train', '--dataset', 'folder', '--data', images, '--size', '8', '--channels', '1', '--out', path.join(root, 'tt')];
    const invalid = (flag: string, value: string, expected: string) =>
      `error: option '${flag}' argument '${value}' is invalid. ${expected}`;
    await expectAll([
      { args: [...sampleTo(), '--classes', 'bar-zero,cat'], code: 2,
        line: 'factorgen: --classes: unknown class "cat" (indices 0..2 or names: bar-zero, bar-one, bar-two)' },
      { args: [...sampleTo(), '--classes', '3'], code: 2,
        line: 'factorgen: --classes: unknown class "3" (indices 0..2 or names: bar-zero, bar-one, bar-two)' },
      { args: [...sampleTo(), '--per-class', '0'], code: 1, line: invalid('--per-class <n>', '0', 'Expected a positive integer.') },
      { args: [...sampleTo(), '--temperature', '-1'], code: 1, line: invalid('--temperature <t>', '-1', 'Expected a number >= 0.') },
      { args: [...sampleTo(), '--top-p', '0'], code: 2, line: 'factorgen: --top-p: must be in (0, 1], got 0' },
      { args: [...tokTrain, '--steps', '-1'], code: 1, line: invalid('--steps <n>', '-1', 'Expected a positive integer.') },
      { args: [...tokTrain, '--lr', 'NaN'], code: 1, line: invalid('--lr <x>', 'NaN', 'Expected a positive number.') },
      { args: [...tokTrain, '--codebook-size', '1'], code: 2, line: 'factorgen: --codebook-size 1: every sub-codebook needs at least 2 codes' },
      { args: ['generator', 'train', '--tokens', t1, '--out', path.join(root, 'g4'), '--width', '16', '--heads', '3'], code: 2,
        line: 'factorgen: --heads 3: must divide --width 16' },
    ]);
    for (let i = 0; i < outs; i++) expect(fs.existsSync(path.join(root, `s4-${i}`))).toBe(false);
    expect(fs.existsSync(path.join(root, 'tt'))).toBe(false);
  });
});

describe('after all of the above', () => {
  it('the good checkpoints are byte-for-byte unchanged and load', async () => {
    const now = filesOf(tok1, tok2, gen);
    expect([...now.keys()].sort()).toEqual([...snapshot.keys()].sort());
    for (const [f, bytes] of snapshot) expect(now.get(f)!.equals(bytes), f).toBe(true);
    const t = await loadTokenizer(tok1);
    expect(t.id).toBe(id1);
    t.tok.params.dispose();
    const g = await loadGenerator(gen);
    expect(g.provenance.tokenizerId).toBe(id1);
    g.gen.params.dispose();
  });
});
