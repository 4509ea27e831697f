import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultAdamW } from '@factorgen/nn';
import { readMetrics } from '@factorgen/train';
import { repoRoot, writeGrid } from '@factorgen/io';
import { type ImageDataset } from '@factorgen/formats';
import { trainTokenizer, trainTeacher, loadFrozenTeacher, loadTokenizer } from '@factorgen/pipelines';
import { reconstructImages, encodeImages, presetFashionTeacher, gridSize } from '@factorgen/tokenizer';
import { tokenDtype, writeTokenFile, readTokenFile } from '@factorgen/io';
import { trainGenerator, sampleToFolder } from '@factorgen/pipelines';
import { makeGeneratorConfig } from '@factorgen/generator';
import { committedEvaluator, getFeatureNet, evalRecon, evalSamples, randomSubset, readSampleFolder } from '@factorgen/pipelines';
import { defaultFeatureNetTraining } from '@factorgen/eval';
import { comparisonVariants, type Budget, type Variant } from './variants';
import { withTrainingUi } from '../ui/training';

/** One row of the comparison table. */
export type CompareRow = {
  id: string;
  label: string;
  K: number;
  sizes: number[];
  bitsPerPosition: number;
  /** 10 log10(255^2 / MSE over the whole evaluation set), dB */
  psnr: number;
  /** mean of per-image PSNRs, dB (second figure only; absent in reports written before it) */
  psnrPerImageMean?: number;
  /** null for images under 11x11 (no SSIM window fits) */
  ssim: number | null;
  rfid: number;
  usage: number[];
  perplexity: number[];
  imagesPerSecond: number;
  trainSeconds: number;
  sample?: { fid: number; classAccuracy: number; precision: number; recall: number; tokensPerSecond: number };
};

export type CompareRequest = {
  out: string;
  budget: Budget;
  seed: string;
  train: ImageDataset;
  test: ImageDataset;
  bits: number;
  manyK: boolean;
  generators: boolean;
  log: (line: string) => void;
};

export type CompareResult = { rows: CompareRow[]; variants: Variant[]; seconds: number; recon: { id: string; grid: string }[]; samples: { id: string; grid: string }[] };

/**
 * Trains every variant on the same data, grid, steps, batch and seed, evaluates reconstructions on the same test
 * images, optionally trains a generator per variant and scores its samples. Each variant lives in out/<id>/.
 */
export async function runComparison(req: CompareRequest): Promise<CompareResult> {
  const t0 = performance.now();
  const b = req.budget;
  fs.mkdirSync(req.out, { recursive: true });
  // The committed evaluator when it was trained on this train split (as `factorgen eval`), else one trained and cached.
  const committed = committedEvaluator(req.train);
  const fnet = committed ? committed.net : await getFeatureNet(path.join(repoRoot(), '.cache', 'eval'), req.train, defaultFeatureNetTraining);
  req.log(committed ? `feature net: ${committed.dir} (committed)` : `feature net ${'fromCache' in fnet && fnet.fromCache ? 'from cache' : 'trained'}`);
  const evalSet = randomSubset(req.test, Math.min(b.evalImages, req.test.n));
  const teacherCfg = { ...presetFashionTeacher(), imageSize: req.train.height, channels: req.train.channels, classes: req.train.classNames.length };
  const variants = comparisonVariants(b, { imageSize: req.train.height, channels: req.train.channels, bits: req.bits, manyK: req.manyK, teacherDim: teacherCfg.embedDim });
  const common = { minLrRatio: 0.1, clip: 1, adamw: defaultAdamW, seed: req.seed, flip: false, checkpointEvery: b.tokenizerSteps, logEvery: 10 };
  let teacherDir: string | null = null;
  if (variants.some((v) => v.needsTeacher)) {
    teacherDir = path.join(req.out, 'teacher');
    if (!fs.existsSync(path.join(teacherDir, 'checkpoint'))) {
      req.log('training the alignment teacher');
      await withTrainingUi((ui) => trainTeacher({ ...ui, out: teacherDir!, resume: false, config: teacherCfg, data: req.train, train: { ...common, steps: b.teacherSteps, batch: 64, lr: 2e-3, warmup: 20, checkpointEvery: b.teacherSteps } }));
    }
  }
  const rows: CompareRow[] = [];
  const reconGrids: { id: string; grid: string }[] = [];
  const sampleGrids: { id: string; grid: string }[] = [];
  for (const v of variants) {
    const dir = path.join(req.out, v.id);
    req.log(`${v.id}: training ${v.label}`);
    const teacher = v.needsTeacher && teacherDir ? await loadFrozenTeacher(teacherDir) : undefined;
    const tt = performance.now();
    const r = await withTrainingUi((ui) => trainTokenizer({
      ...ui,
      out: dir, resume: false, config: v.config, data: req.train, teacher, teachers: teacher ? [teacher] : undefined,
      train: { ...common, steps: b.tokenizerSteps, batch: b.batch, lr: 2e-3, warmup: Math.ceil(b.tokenizerSteps / 20), usageWindow: 20, restartDeadEvery: 50 },
    }));
    const trainSeconds = (performance.now() - tt) / 1000;
    teacher?.dispose();
    const { tok, id: tokId, dir: tokDir } = await loadTokenizer(dir);
    const rec = await reconstructImages(tok, evalSet.images, evalSet.n, 200);
    const m = await evalRecon(evalSet, { ...evalSet, name: `${v.id}-recon`, images: rec }, fnet);
    const per = evalSet.height * evalSet.width * evalSet.channels;
    const pick = (src: Uint8Array) => Array.from({ length: 12 }, (_, i) => src.subarray(i * per, (i + 1) * per));
    const grid = path.join(dir, 'recon.png');
    await writeGrid(grid, [{ label: 'original', images: pick(evalSet.images) }, { label: v.id, images: pick(rec) }], evalSet.height, evalSet.width, evalSet.channels);
    reconGrids.push({ id: v.id, grid });
    const sizes = v.config.quantizer.subCodebooks.map((s) => s.size);
    const row: CompareRow = {
      id: v.id, label: v.label, K: sizes.length, sizes, bitsPerPosition: sizes.reduce((a, s) => a + Math.log2(s), 0),
      psnr: m.psnrGlobalMse, psnrPerImageMean: m.psnrPerImageMean, ssim: m.ssim, rfid: m.rfid, usage: r.usage, perplexity: r.perplexity, imagesPerSecond: r.itemsPerSecond, trainSeconds,
    };
    if (req.generators) {
      const g = gridSize(tok.cfg);
      // Encode only what the generator will see (steps x batch sequences): encoding is a forward pass per image.
      const genBatch = 32;
      const count = Math.min(req.train.n, b.generatorSteps * genBatch);
      const per = req.train.height * req.train.width * req.train.channels;
      const tokens = await encodeImages(tok, req.train.images.subarray(0, count * per), count, 200);
      const tokenFile = path.join(dir, 'train.tokens');
      writeTokenFile(tokenFile, {
        header: { format: 1, tokenizerId: tokId, tokenizerPath: tokDir, configHash: '', gridH: g, gridW: g, subCodebookSizes: sizes, classNames: req.train.classNames, count, dtype: tokenDtype(sizes), source: `${req.train.name}/train[0:${count}]` },
        tokens, labels: req.train.labels.subarray(0, count),
      });
      tok.params.dispose();
      req.log(`${v.id}: training a generator`);
      const w = b.generatorWidth;
      const config = makeGeneratorConfig({
        gridH: g, gridW: g, subCodebookSizes: sizes, numClasses: req.train.classNames.length, width: w, depth: b.generatorDepth,
        heads: Math.max(1, w / 32), mlpHidden: 3 * w, headLayers: 1, headWidth: w, headHeads: Math.max(1, w / 32), headMlpHidden: 3 * w, dropout: 0,
      });
      const gr = await withTrainingUi((ui) => trainGenerator({
        ...ui,
        out: path.join(dir, 'generator'), resume: false, config, tokens: readTokenFile(tokenFile), tokensPath: tokenFile,
        train: { ...common, steps: b.generatorSteps, batch: genBatch, lr: 2e-3, warmup: 20, checkpointEvery: b.generatorSteps, valEvery: 0, valLimit: 0 },
      }));
      const sdir = path.join(dir, 'samples');
      const s = await sampleToFolder({ generator: path.join(dir, 'generator'), tokenizer: dir, out: sdir, perClass: b.samplesPerClass, batch: 50, seed: req.seed, cfgScale: 2, temperature: 1, topK: 0, topP: 1, useCache: true });
      sampleGrids.push({ id: v.id, grid: s.grid });
      const gen = await readSampleFolder(sdir, req.test.classNames, req.test.height, req.test.channels);
      row.sample = { ...(await evalSamples(gen, req.test, fnet)), tokensPerSecond: gr.itemsPerSecond };
    } else {
      tok.params.dispose();
    }
    rows.push(row);
    req.log(`${v.id}: PSNR ${m.psnrGlobalMse.toFixed(2)} dB (global MSE), SSIM ${m.ssim === null ? 'n/a (images under 11x11)' : m.ssim.toFixed(3)}, rFID ${m.rfid.toFixed(2)}, usage ${r.usage.map((u) => (100 * u).toFixed(0) + '%').join('/')}`);
  }
  fnet.store.dispose();
  return { rows, variants, seconds: (performance.now() - t0) / 1000, recon: reconGrids, samples: sampleGrids };
}

/** Per-variant training curves read back from metrics.jsonl, for the report's plots. */
export function readCurves(out: string, ids: string[], keys: string[]): Record<string, Record<string, [number, number][]>> {
  const curves: Record<string, Record<string, [number, number][]>> = {};
  for (const id of ids) {
    const recs = readMetrics(path.join(out, id, 'metrics.jsonl')) as Record<string, number>[];
    curves[id] = {};
    for (const k of keys) curves[id][k] = recs.filter((r) => typeof r[k] === 'number').map((r) => [r.step, r[k]] as [number, number]);
  }
  return curves;
}
