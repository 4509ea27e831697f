import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint, writeClassFolders, classFolderFile, type ClassFolderRecord, writeGrid, openOutputDir, writeManifest, type OutputIo } from '@factorgen/io';
import { resolveCheckpointDir } from '@factorgen/train';
import { slugify, classKey } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { configHash, decodeToImages } from '@factorgen/tokenizer';
import { loadTokenizer, missingRecordedTokenizer, recordedPathCandidates } from './loadTokenizer';
import { tokenDtype, writeTokenFile } from '@factorgen/io';
import type { Generator } from '@factorgen/generator';
import { generatorFromCheckpoint, type GeneratorProvenance } from '@factorgen/generator';
import { classLabels, sampleInBatches } from '@factorgen/generator';

export type LoadedGenerator = { gen: Generator; dir: string; provenance: GeneratorProvenance };

/** Loads a generator from a run folder or checkpoint folder. */
export async function loadGenerator(dir: string): Promise<LoadedGenerator> {
  const ckDir = resolveCheckpointDir(dir);
  const ck = await loadCheckpoint(ckDir, 'generator');
  return { ...generatorFromCheckpoint(ck, ckDir), dir: ckDir };
}

/**
 * Where the tokenizer of a generator is: the --tokenizer flag, else the path recorded at encode time
 * (absolute; relative: against the generator's checkpoint folder, then the working directory), else a `tokenizer` folder beside the generator's folder.
 */
export function findTokenizerDir(genDir: string, p: GeneratorProvenance, flag?: string): string {
  if (flag) return flag;
  const runDir = path.basename(genDir) === 'checkpoint' ? path.dirname(genDir) : genDir;
  const candidates = [...recordedPathCandidates(p.tokenizerPath, path.join(genDir, 'config.json')), path.join(path.dirname(runDir), 'tokenizer')];
  for (const c of candidates) if (c && fs.existsSync(c)) return c;
  throw missingRecordedTokenizer(p.tokenizerPath, path.join(genDir, 'config.json'), candidates.filter((c) => c !== p.tokenizerPath));
}

/** The class named `name`: the same name as typed (classKey), else the same slug; -1 when none; UserError when several. */
function classByName(name: string, classNames: string[]): number {
  const exact = classNames.flatMap((c, i) => (classKey(c) === classKey(name) ? [i] : []));
  const hits = exact.length > 0 ? exact : classNames.flatMap((c, i) => (slugify(c) === slugify(name) ? [i] : []));
  if (hits.length > 1) throw new UserError(`"${name}" names several classes (${hits.map((i) => `${i} "${classNames[i]}"`).join(', ')}); give an index`, { field: 'classes' });
  return hits.length === 1 ? hits[0] : -1;
}

/**
 * Parses `--classes` ("all", or a comma list of indices, names or slugs; `index:N` and `name:X` force one reading)
 * against the class names. A number that is an index and also the name of another class is refused, naming both.
 */
export function parseClasses(spec: string | undefined, classNames: string[]): number[] {
  if (spec === undefined || spec === 'all') return classNames.map((_, i) => i);
  // An empty list is a mistake (a shell variable that was not set), not "every class".
  if (spec.split(',').every((s) => s.trim() === '')) throw new UserError(`no class given (${JSON.stringify(spec)}); give indices or names, or all`, { field: 'classes' });
  const out: number[] = [];
  const given: string[] = [];
  const valid = () => `indices 0..${classNames.length - 1} or names: ${classNames.map(slugify).join(', ')}`;
  for (const raw of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const forced = /^(index|name):(.*)$/.exec(raw);
    const text = forced ? forced[2] : raw;
    const asIndex = forced?.[1] !== 'name' && /^\d+$/.test(text) && Number(text) < classNames.length ? Number(text) : -1;
    const asName = forced?.[1] !== 'index' ? classByName(text, classNames) : -1;
    if (asIndex >= 0 && asName >= 0 && asIndex !== asName) {
      throw new UserError(
        `"${raw}" is ambiguous: index ${asIndex} is class "${classNames[asIndex]}", and class "${classNames[asName]}" is index ${asName}; ` +
          `write index:${text} or name:${text}`,
        { field: 'classes' },
      );
    }
    const idx = asName >= 0 ? asName : asIndex;
    if (idx < 0) throw new UserError(`unknown class "${raw}" (${valid()})`, { field: 'classes' });
    const seen = out.indexOf(idx);
    if (seen >= 0) {
      // Rows would repeat without a word; perClass is how to ask for more images of a class.
      throw new UserError(`class ${idx} "${classNames[idx]}" is given twice ("${given[seen]}" and "${raw}"); give each class once (\`perClass\` sets how many images)`, { field: 'classes' });
    }
    out.push(idx);
    given.push(raw);
  }
  return out;
}

export type SampleRequest = {
  generator: string;
  tokenizer?: string;
  out: string;
  classes?: string;
  perClass: number;
  /** grid.png's upscaling of each image (default: defaultGridScale, 3 for 28-px images). */
  gridScale?: number;
  batch: number;
  seed: string;
  cfgScale: number;
  temperature: number;
  topK: number;
  topP: number;
  useCache: boolean;
  /** Called after each sampled batch with (images sampled, images in all). */
  onProgress?: (done: number, total: number) => void;
  /** The output folder may hold an earlier sample run, which is replaced (only factorgen's files there). */
  overwrite?: boolean;
  /** Guide (cfgScale != 1) a generator trained without class dropout, which never saw the null class. */
  force?: boolean;
  /** Where warnings go (e.g. stderr). */
  warn?: (line: string) => void;
  /** Write operations on the output folder (tests inject failures). */
  io?: Partial<OutputIo>;
};

export type SampleResult = { out: string; images: number; seconds: number; imagesPerSecond: number; grid: string };

/**
 * Samples `perClass` images for each requested class and writes `OUT/<index>-<slug>/NNNN.png`, `OUT/grid.png`
 * (one labelled row per class) and `OUT/samples.json` (class, seed and settings of every image).
 */
export async function sampleToFolder(req: SampleRequest): Promise<SampleResult> {
  // The output folder is checked (and locked) before anything is loaded or sampled.
  const lock = openOutputDir(req.out, 'out', 'samples', 'sample', { overwrite: req.overwrite, io: req.io });
  try {
    return await sampleIntoLockedFolder(req);
  } finally {
    lock.release();
  }
}

async function sampleIntoLockedFolder(req: SampleRequest): Promise<SampleResult> {
  const g = await loadGenerator(req.generator);
  const tokDir = findTokenizerDir(g.dir, g.provenance, req.tokenizer);
  const t = await loadTokenizer(tokDir);
  try {
    if (t.id !== g.provenance.tokenizerId) {
      throw new UserError(`tokenizer ${t.id} is not the one the generator was trained with (${g.provenance.tokenizerId})`, { field: 'tokenizer', value: tokDir });
    }
    const names = g.provenance.classNames;
    const classes = parseClasses(req.classes, names);
    const cfg = g.gen.cfg;
    const T = cfg.gridH * cfg.gridW;
    const K = cfg.subCodebookSizes.length;
    const { imageSize: S, channels: C } = t.tok.cfg;
    if (req.cfgScale !== 1 && cfg.classDropout === 0) {
      const why = 'the generator was trained with `classDropout` 0, so it never saw the null class that guidance contrasts with';
      if (!req.force) throw new UserError(`${why}; use \`cfgScale\` 1, or pass \`force\` to guide anyway`, { field: 'cfgScale', value: req.cfgScale });
      req.warn?.(`warning: \`cfgScale\` ${req.cfgScale}: ${why} (guiding anyway: \`force\`)`);
    }
    const labels = classLabels(classes, req.perClass);
    const counters = new Map<number, number>();
    const planned = labels.map((c) => {
      const index = counters.get(c) ?? 0;
      counters.set(c, index + 1);
      return classFolderFile(c, names[c], index);
    });
    // Output names are checked before the work: a class folder name over the file system's 255-byte limit would
    // fail (ENAMETOOLONG) only after all sampling was done.
    for (const c of classes) {
      const folder = path.dirname(classFolderFile(c, names[c], 0));
      const bytes = Buffer.byteLength(folder, 'utf8');
      if (bytes > 255) {
        throw new UserError(`the folder for class ${c} would be named ${bytes} bytes long (${JSON.stringify(folder.slice(0, 40))}…), over the 255 bytes a file name may have; leave that class out with \`classes\`, or rename the class in the dataset and retrain`, { field: 'out', value: req.out });
      }
    }
    writeManifest(req.out, 'samples', ['grid.png', 'samples.json', 'samples.tokens', ...planned], req.io);
    const opts = { cfgScale: req.cfgScale, temperature: req.temperature, topK: req.topK, topP: req.topP, useCache: req.useCache };
    const settings = { ...opts, seed: req.seed, batch: req.batch, perClass: req.perClass, generator: g.dir, tokenizer: t.dir, tokenizerId: t.id };
    const per = S * S * C;
    const rows = new Map<number, Uint8Array[]>();
    const records: (ClassFolderRecord & { batchStart: number })[] = [];
    const written = new Map<number, number>();
    const writeIndex = (seconds: number) =>
      fs.writeFileSync(path.join(req.out, 'samples.json'), JSON.stringify({ settings, seconds, images: records }, null, 1));
    const t0 = performance.now();
    // Each batch is decoded and written as soon as it is sampled (samples.json lists what is on disk), so a killed
    // run loses at most one batch.
    const tokens = await sampleInBatches(g.gen, labels, opts, req.seed, req.batch, {
      onBatch: async (start, part) => {
        const n = part.length / (T * K);
        const pixels = await decodeToImages(t.tok, part, n, req.batch);
        const batchLabels = labels.slice(start, start + n);
        const recs = await writeClassFolders(req.out, pixels, batchLabels, names, S, S, C, written);
        records.push(...recs.map((r) => ({ ...r, batchStart: start })));
        batchLabels.forEach((c, j) => rows.set(c, [...(rows.get(c) ?? []), pixels.subarray(j * per, (j + 1) * per)]));
        writeIndex((performance.now() - t0) / 1000);
        req.onProgress?.(start + n, labels.length);
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const grid = path.join(req.out, 'grid.png');
    await writeGrid(grid, classes.map((c) => ({ label: `${c} ${names[c]}`, images: rows.get(c) ?? [] })), S, S, C, { scale: req.gridScale });
    writeIndex(seconds);
    // The sampled token grids as a token file: `factorgen tokenizer decode --tokens` reads it, tests compare it.
    writeTokenFile(path.join(req.out, 'samples.tokens'), {
      header: {
        format: 1, tokenizerId: t.id, tokenizerPath: t.dir, configHash: configHash(t.tok.stored), gridH: cfg.gridH, gridW: cfg.gridW,
        subCodebookSizes: cfg.subCodebookSizes, classNames: names, count: labels.length, dtype: tokenDtype(cfg.subCodebookSizes),
        source: `factorgen sample --seed ${req.seed}`,
      },
      tokens,
      labels: Int32Array.from(labels),
    });
    return { out: req.out, images: labels.length, seconds, imagesPerSecond: labels.length / seconds, grid };
  } finally {
    g.gen.params.dispose();
    t.tok.params.dispose();
  }
}
