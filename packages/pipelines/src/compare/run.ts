/**
 * `compare`'s runs: every selected variant at every paired seed, each through its stages (tokenizer training,
 * reconstruction scores, encoding, generator training, sample scores), resumable stage by stage.
 *
 * Layout of the compare folder OUT:
 *   compare.json            the settings it was started with (a rerun must match; seeds and variants may grow)
 *   floors.json             real-data floors at the same n: rFID (test vs train images), sample FID/precision/recall
 *   teacher/                the alignment teacher (only when fq2-dis-align runs)
 *   runs/<variant>-s<seed>/ tokenizer/ (training run), tokenizer.json, recon.json, recon.png, train.tokens,
 *                           generator/ (training run), generator.json, samples/, generation.json
 *   report.json, report.md  written after every finished run (report.ts)
 * A stage's result file is written last (temp file + rename), so a run killed at any point redoes at most the stage
 * it was in, and a training resumes from its last checkpoint (factorgen's resume is exact), so the numbers equal an
 * uninterrupted compare's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultAdamW } from '@factorgen/nn';
import { type TrainHooks } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { type ImageDataset } from '@factorgen/formats';
import { presetFashionTeacher, reconstructImages, encodeImages, gridSize } from '@factorgen/tokenizer';
import { makeGeneratorConfig } from '@factorgen/generator';
import { defaultFeatureNetTraining, type FeatureNet } from '@factorgen/eval';
import { repoRoot, writeGrid, writeTokenFile, readTokenFile, tokenDtype, lockOutputDir, prepareFreshOutput, writeManifest } from '@factorgen/io';
import { trainTokenizer } from '../trainTokenizer';
import { trainTeacher, loadFrozenTeacher } from '../trainTeacher';
import { trainGenerator } from '../trainGenerator';
import { loadTokenizer } from '../loadTokenizer';
import { sampleToFolder } from '../sample';
import { committedEvaluator, getFeatureNet } from '../evalCache';
import { evalRecon, evalSamples, randomSubset, readSampleFolder, realFloor } from '../evaluate';
import { compareVariants, selectVariants, type CompareBudget, type CompareVariant } from './variants';

/** What changes between two compares that cannot share a folder (seeds and variants may grow). */
export type CompareSettings = { format: 1; dataset: string; budget: CompareBudget['name']; bits: number; generation: boolean; seeds: number; variants: string[] };

/** A compare folder's recorded settings contradict the request; `setting` names which (the CLI names its flag). */
export class CompareSettingsError extends UserError {
  constructor(readonly setting: keyof CompareSettings, readonly recorded: unknown, readonly requested: unknown, readonly file: string) {
    super(`${file}: this compare was started with ${setting} ${JSON.stringify(recorded)}, not ${JSON.stringify(requested)}; rerun it with the same settings to continue, or use another output folder`);
  }
}

export type TokenizerScores = { psnr: number; psnrPerImageMean: number; ssim: number | null; rfid: number; usage: number[]; perplexity: number[] };
export type GenerationScores = { fid: number; classAccuracy: number; perClassAccuracy: number[]; precision: number; recall: number; n: number };
/** Wall-clock figures: they differ between reruns, so report.json keeps them apart from the scores. */
export type RunTiming = { tokenizerSeconds?: number; tokenizerImagesPerSecond?: number; generatorSeconds?: number; generatorTokensPerSecond?: number };
/** One finished (or partly finished) run. */
export type RunResult = { variant: string; seed: number; tokenizer: TokenizerScores | null; generation: GenerationScores | null; timing: RunTiming };
export type Floors = { reconImages: number; rfid: number; samples: number; fid: number; precision: number; recall: number; classAccuracy: number };

export type CompareRequest = {
  out: string;
  budget: CompareBudget;
  /** paired seeds 0..seeds-1 */
  seeds: number;
  /** variant ids (undefined = the budget's); baselines are added */
  variants?: string[];
  bits: number;
  /** also encode, train a generator and score samples per run */
  generation: boolean;
  train: ImageDataset;
  test: ImageDataset;
  /** one line per stage (plan, progress with ETA) */
  log: (line: string) => void;
  /** A function each finished run calls (the report is rewritten there). */
  onRunDone?: (state: CompareState) => void | Promise<void>;
  /**
   * Side by side: 'shared' runs only the stages every run needs first (floors, teacher); {index, count} runs only the
   * runs assigned to part `index` of `count` (partCompare; the shared stages must be done), without taking the
   * folder's lock (the process that started the parts holds it). Absent: everything, in one process.
   */
  part?: 'shared' | { index: number; count: number };
  /**
   * Runs the runs side by side in `count` parts: after the shared stages, `start(index, count)` must run part `index`
   * (e.g. a child process calling runCompare with that `part`) and resolve when it has finished; it rejects if the
   * part failed. The CLI starts child processes; a test may call runCompare in-process.
   */
  parts?: { count: number; start: (index: number, count: number) => Promise<void> };
  /**
   * Wraps each training with hooks (progress events, an AbortSignal; the CLI draws progress and turns Ctrl-C into an
   * abort, whose saved checkpoint the next run continues from). Default: headless, no hooks.
   */
  training?: <R>(train: (hooks: TrainHooks) => Promise<R>) => Promise<R>;
};

/** What the compare folder holds now: settings, floors, variants and every run's results so far. */
export type CompareState = {
  out: string;
  settings: CompareSettings;
  budget: CompareBudget;
  variants: CompareVariant[];
  floors: Floors | null;
  runs: RunResult[];
  evaluator: { dir: string; testAccuracy: number | null };
  /** seconds spent in this invocation, and the plan's estimate of the whole */
  seconds: number;
};

const runId = (variant: string, seed: number): string => `${variant}-s${seed}`;

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}
const readJson = <T>(file: string): T | null => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : null);

/**
 * Reads OUT/compare.json and checks the request against it; writes it for a new compare (the folder must be empty
 * or absent). Seeds and variants may grow: the finished runs stay valid. Throws CompareSettingsError otherwise.
 */
export function checkCompareSettings(out: string, requested: CompareSettings): CompareSettings {
  const file = path.join(out, 'compare.json');
  const rec = readJson<CompareSettings>(file);
  if (!rec) {
    prepareFreshOutput(out, 'out', 'comparison', false);
    fs.mkdirSync(out, { recursive: true });
    writeJsonAtomic(file, requested);
    writeManifest(out, 'comparison', ['compare.json', 'floors.json', 'teacher', 'runs', 'report.json', 'report.md', 'report.html']);
    return requested;
  }
  for (const k of ['dataset', 'budget', 'bits', 'generation'] as const) {
    if (rec[k] !== requested[k]) throw new CompareSettingsError(k, rec[k], requested[k], file);
  }
  if (requested.seeds < rec.seeds) throw new CompareSettingsError('seeds', rec.seeds, requested.seeds, file);
  const missing = rec.variants.filter((v) => !requested.variants.includes(v));
  if (missing.length) throw new CompareSettingsError('variants', rec.variants.join(','), requested.variants.join(','), file);
  if (requested.seeds !== rec.seeds || requested.variants.length !== rec.variants.length) writeJsonAtomic(file, requested);
  return requested;
}

/** One stage of the plan, with its estimated seconds (for the ETA). */
/** One stage of the plan; `group` is the run group it belongs to (null: shared by every run). */
type Stage = { name: string; estimate: number; done: () => boolean; run: () => Promise<void>; endsRun?: boolean; group: string | null };

/**
 * Assigns run groups to `count` parts, longest first, each to the part with the least estimated work so far (ties to
 * the lower index): deterministic, so every process computes the same assignment. Returns group -> part index.
 */
export function assignParts(groups: { key: string; estimate: number }[], count: number): Map<string, number> {
  const load = new Array<number>(count).fill(0);
  const order = groups.map((g, i) => ({ ...g, i })).sort((a, b) => b.estimate - a.estimate || a.i - b.i);
  const out = new Map<string, number>();
  for (const g of order) {
    const k = load.indexOf(Math.min(...load));
    out.set(g.key, k);
    load[k] += g.estimate;
  }
  return out;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.max(0, Math.floor(s))} s`;
  if (s < 600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/**
 * Runs (or continues) a compare: the plan, then every stage not yet done, in order (per run: tokenizer, recon,
 * encode, generator, samples), logging each stage with the ETA over the whole plan. Resolves to the state with every
 * run's results. Throws CompareSettingsError when OUT holds a compare with other settings.
 */
export async function runCompare(req: CompareRequest): Promise<CompareState> {
  const t0 = performance.now();
  const b = req.budget;
  const teacherCfg = { ...presetFashionTeacher(), imageSize: req.train.height, channels: req.train.channels, classes: req.train.classNames.length };
  const all = compareVariants(b, { imageSize: req.train.height, channels: req.train.channels, bits: req.bits, teacherDim: teacherCfg.embedDim });
  const variants = selectVariants(all, req.variants, b);
  if (!Number.isInteger(req.seeds) || req.seeds < 1 || req.seeds > 100) throw new UserError(`seeds ${req.seeds}: must be an integer from 1 to 100`);
  fs.mkdirSync(req.out, { recursive: true });
  const lock = typeof req.part === 'object' ? { release: () => {} } : lockOutputDir(req.out, 'out', 'compare');
  try {
    const settings = checkCompareSettings(req.out, {
      format: 1, dataset: req.train.name, budget: b.name, bits: req.bits, generation: req.generation, seeds: req.seeds, variants: variants.map((v) => v.id),
    });
    const committed = committedEvaluator(req.train);
    const fnet: FeatureNet = committed ? committed.net : await getFeatureNet(path.join(repoRoot(), '.cache', 'eval'), req.train, defaultFeatureNetTraining);
    const evaluator = { dir: committed ? path.relative(repoRoot(), committed.dir) : 'a feature net trained and cached in .cache/eval', testAccuracy: committed?.testAccuracy ?? null };
    try {
      if (req.parts && req.parts.count > 1 && !req.part) {
        const { count, start } = req.parts;
        await runStages({ ...req, part: 'shared' }, variants, settings, fnet, evaluator, teacherCfg, t0);
        // Only parts with stages left start a process (a finished compare just rewrites its report).
        const pendingParts = Array.from({ length: count }, (_, i) => i)
          .filter((i) => planStages({ ...req, part: { index: i, count } }, variants, fnet, teacherCfg).stages.some((st) => !st.done()));
        // Every part runs to its end even when another fails (its finished stages are kept), then the first error is thrown.
        const results = await Promise.allSettled(pendingParts.map((i) => start(i, count)));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        const state = await runStages(req, variants, settings, fnet, evaluator, teacherCfg, t0);
        return state;
      }
      return await runStages(req, variants, settings, fnet, evaluator, teacherCfg, t0);
    } finally {
      fnet.store.dispose();
    }
  } finally {
    lock.release();
  }
}

/**
 * The plan: every stage of the compare (shared ones first, then per seed and variant), narrowed to the request's part
 * when it has one. Stages know whether they are done from the folder, so planning runs nothing. Throws when a part is
 * asked for before the shared stages are done.
 */
function planStages(
  req: CompareRequest, variants: CompareVariant[], fnet: FeatureNet, teacherCfg: ReturnType<typeof presetFashionTeacher>,
): { stages: Stage[]; seeds: number[] } {
  const b = req.budget;
  const out = req.out;
  const seeds = Array.from({ length: req.seeds }, (_, s) => s);
  const reconSet = randomSubset(req.test, Math.min(b.reconImages, req.test.n));
  const nSamples = b.samplesPerClass * req.train.classNames.length;
  const per = req.train.height * req.train.width * req.train.channels;
  const encodeCount = Math.min(req.train.n, b.generator.steps * b.generator.batch);
  const floorsFile = path.join(out, 'floors.json');
  const teacherDir = path.join(out, 'teacher');
  const common = { minLrRatio: 0.1, clip: 1, adamw: defaultAdamW, logEvery: 10 };
  const every = (steps: number) => Math.max(1, Math.ceil(steps / 8));
  const hooked = req.training ?? (<R>(train: (hooks: TrainHooks) => Promise<R>) => train({}));
  const dirOf = (v: string, s: number) => path.join(out, 'runs', runId(v, s));
  const exists = (f: string) => fs.existsSync(f);
  const stages: Stage[] = [];

  stages.push({
    name: `real-data floors (rFID at n=${reconSet.n}${req.generation ? `, sample FID at n=${nSamples}` : ''})`,
    group: null,
    // The test split's features (FID's reference, once per compare) dominate.
    estimate: 5 + req.test.n * 0.004 + reconSet.n * 0.002 + nSamples * 0.002,
    done: () => exists(floorsFile),
    run: async () => {
      // rFID's floor: real test images against as many real train images (what a perfect reconstruction would score
      // at this n); the sample floor: real train images scored as samples (realFloor).
      const trainSub = randomSubset(req.train, reconSet.n, 1);
      const r = await evalRecon(reconSet, { ...trainSub, name: 'train images as reconstructions' }, fnet);
      const s = req.generation ? await realFloor(randomSubset(req.train, Math.min(nSamples, req.train.n), 2), req.test, fnet) : null;
      writeJsonAtomic(floorsFile, {
        reconImages: reconSet.n, rfid: r.rfid, samples: s ? nSamples : 0, fid: s?.fid ?? Number.NaN,
        precision: s?.precision ?? Number.NaN, recall: s?.recall ?? Number.NaN, classAccuracy: s?.classAccuracy ?? Number.NaN,
      } satisfies Floors);
    },
  });
  if (variants.some((v) => v.needsTeacher)) {
    stages.push({
      name: `alignment teacher (${b.teacherSteps} steps)`,
      group: null,
      estimate: b.teacherSteps * 0.2,
      done: () => exists(path.join(out, 'teacher.json')),
      run: async () => {
        const resume = exists(path.join(teacherDir, 'checkpoint', 'config.json'));
        await hooked((hooks) => trainTeacher({
          ...hooks, out: teacherDir, resume, overwrite: !resume, config: teacherCfg, data: req.train,
          train: { ...common, seed: '0', flip: false, steps: b.teacherSteps, batch: 64, lr: 2e-3, warmup: 20, checkpointEvery: every(b.teacherSteps) },
        }));
        writeJsonAtomic(path.join(out, 'teacher.json'), { steps: b.teacherSteps });
      },
    });
  }
  for (const seed of seeds) {
    for (const v of variants) {
      const dir = dirOf(v.id, seed);
      const tokDirOf = (vid: string) => path.join(dirOf(vid, seed), 'tokenizer');
      const tokenFile = path.join(dirOf(v.tokensOf ?? v.id, seed), 'train.tokens');
      const label = `${v.id} seed ${seed}`;
      // A run group: a tokenizer variant's run and the generator variants trained on its tokens (same process).
      const group = runId(v.tokensOf ?? v.id, seed);
      if (v.tokenizer) {
        const cfg = v.tokenizer;
        stages.push({
          name: `${label}: tokenizer (${b.tokenizer.steps} steps of ${b.tokenizer.batch})`,
          group,
          // fq measured 1.2-1.3x vq's step time at the medium sizes (its second branch and codebook).
          estimate: b.tokenizer.steps * b.secondsPerStep.tokenizer * (cfg.quantizer.subCodebooks.length > 1 ? 1.25 : 1),
          done: () => exists(path.join(dir, 'tokenizer.json')),
          run: async () => {
            fs.mkdirSync(dir, { recursive: true });
            const tdir = tokDirOf(v.id);
            const resume = exists(path.join(tdir, 'checkpoint', 'config.json'));
            const teacher = v.needsTeacher ? await loadFrozenTeacher(teacherDir) : undefined;
            try {
              const r = await hooked((hooks) => trainTokenizer({
                ...hooks, out: tdir, resume, overwrite: !resume, config: cfg, data: req.train, teacher, teachers: teacher ? [teacher] : undefined,
                train: {
                  ...common, seed: String(seed), flip: false, steps: b.tokenizer.steps, batch: b.tokenizer.batch, lr: b.tokenizer.lr,
                  warmup: Math.ceil(b.tokenizer.steps / 20), checkpointEvery: every(b.tokenizer.steps), usageWindow: 20, restartDeadEvery: 50,
                },
              }));
              writeJsonAtomic(path.join(dir, 'tokenizer.json'), { usage: r.usage, perplexity: r.perplexity, timing: { seconds: r.seconds, imagesPerSecond: r.itemsPerSecond } });
            } finally {
              teacher?.dispose();
            }
          },
        });
        stages.push({
          name: `${label}: reconstruction scores (${reconSet.n} test images)`,
          group,
          estimate: 3 + reconSet.n * 0.004,
          endsRun: !req.generation,
          done: () => exists(path.join(dir, 'recon.json')),
          run: async () => {
            const { tok } = await loadTokenizer(tokDirOf(v.id));
            try {
              const rec = await reconstructImages(tok, reconSet.images, reconSet.n, 200);
              const m = await evalRecon(reconSet, { ...reconSet, name: `${v.id}-recon`, images: rec }, fnet);
              const pick = (src: Uint8Array) => Array.from({ length: 12 }, (_, i) => src.subarray(i * per, (i + 1) * per));
              await writeGrid(path.join(dir, 'recon.png'), [{ label: 'original', images: pick(reconSet.images) }, { label: v.id, images: pick(rec) }], reconSet.height, reconSet.width, reconSet.channels);
              writeJsonAtomic(path.join(dir, 'recon.json'), { psnr: m.psnrGlobalMse, psnrPerImageMean: m.psnrPerImageMean, ssim: m.ssim, rfid: m.rfid });
            } finally {
              tok.params.dispose();
            }
          },
        });
        if (req.generation) {
          stages.push({
            name: `${label}: encode ${encodeCount} train images`,
            group,
            estimate: 2 + encodeCount * 0.003,
            done: () => exists(tokenFile),
            run: async () => {
              const { tok, id, dir: tdir } = await loadTokenizer(tokDirOf(v.id));
              try {
                const g = gridSize(tok.cfg);
                const sizes = tok.cfg.quantizer.subCodebooks.map((s) => s.size);
                const tokens = await encodeImages(tok, req.train.images.subarray(0, encodeCount * per), encodeCount, 200);
                // The run folder's path, relative to the compare folder, so a moved compare folder still finds it.
                writeTokenFile(tokenFile, {
                  header: { format: 1, tokenizerId: id, tokenizerPath: path.relative(out, tdir), configHash: '', gridH: g, gridW: g, subCodebookSizes: sizes, classNames: req.train.classNames, count: encodeCount, dtype: tokenDtype(sizes), source: `${req.train.name}/train[0:${encodeCount}]` },
                  tokens, labels: req.train.labels.subarray(0, encodeCount),
                });
              } finally {
                tok.params.dispose();
              }
            },
          });
        }
      }
      if (!req.generation) continue;
      const gdir = path.join(dir, 'generator');
      stages.push({
        name: `${label}: generator (${b.generator.steps} steps of ${b.generator.batch}, ${v.headMode === 'ar' ? 'FAR' : 'parallel'} head)`,
        group,
        // The parallel head measured 0.65x the FAR head's step time at the medium sizes.
        estimate: b.generator.steps * b.secondsPerStep.generator * (v.headMode === 'ar' ? 1 : 0.65),
        done: () => exists(path.join(dir, 'generator.json')),
        run: async () => {
          fs.mkdirSync(dir, { recursive: true });
          const tokens = readTokenFile(tokenFile);
          const h = tokens.header;
          const w = b.generator.width;
          const config = makeGeneratorConfig({
            gridH: h.gridH, gridW: h.gridW, subCodebookSizes: h.subCodebookSizes, numClasses: h.classNames.length, width: w, depth: b.generator.depth,
            heads: Math.max(1, w / 32), mlpHidden: 3 * w, headMode: v.headMode, headLayers: b.generator.headLayers, headWidth: w,
            headHeads: Math.max(1, w / 32), headMlpHidden: 3 * w, dropout: 0,
          });
          const resume = exists(path.join(gdir, 'checkpoint', 'config.json'));
          const r = await hooked((hooks) => trainGenerator({
            ...hooks, out: gdir, resume, overwrite: !resume, config, tokens, tokensPath: tokenFile,
            train: {
              ...common, seed: String(seed), steps: b.generator.steps, batch: b.generator.batch, lr: b.generator.lr,
              warmup: Math.ceil(b.generator.steps / 20), checkpointEvery: every(b.generator.steps), valEvery: 0, valLimit: 0,
            },
          }));
          writeJsonAtomic(path.join(dir, 'generator.json'), { timing: { seconds: r.seconds, tokensPerSecond: r.itemsPerSecond } });
        },
      });
      stages.push({
        name: `${label}: ${nSamples} samples (CFG ${b.cfgScale}) and their scores`,
        group,
        estimate: 5 + nSamples * 0.05,
        endsRun: true,
        done: () => exists(path.join(dir, 'generation.json')),
        run: async () => {
          const sdir = path.join(dir, 'samples');
          await sampleToFolder({
            generator: gdir, tokenizer: tokDirOf(v.tokensOf ?? v.id), out: sdir, perClass: b.samplesPerClass, batch: 50, seed: String(seed),
            cfgScale: b.cfgScale, temperature: 1, topK: 0, topP: 1, useCache: true, overwrite: true,
          });
          const gen = await readSampleFolder(sdir, req.test.classNames, req.test.height, req.test.channels);
          const m = await evalSamples(gen, req.test, fnet);
          writeJsonAtomic(path.join(dir, 'generation.json'), m);
        },
      });
    }
  }

  if (req.part === 'shared') {
    stages.splice(0, stages.length, ...stages.filter((st) => st.group === null));
  } else if (req.part) {
    const { index, count } = req.part;
    const notDone = stages.filter((st) => st.group === null && !st.done());
    if (notDone.length) throw new Error(`compare part ${index + 1}/${count}: run the shared stages first (${notDone.map((st) => st.name).join('; ')})`);
    const keys = [...new Set(stages.map((st) => st.group).filter((g): g is string => g !== null))];
    const parts = assignParts(keys.map((key) => ({ key, estimate: stages.filter((st) => st.group === key).reduce((a, st) => a + st.estimate, 0) })), count);
    stages.splice(0, stages.length, ...stages.filter((st) => st.group !== null && parts.get(st.group) === index));
  }
  return { stages, seeds };
}

async function runStages(
  req: CompareRequest, variants: CompareVariant[], settings: CompareSettings, fnet: FeatureNet,
  evaluator: CompareState['evaluator'], teacherCfg: ReturnType<typeof presetFashionTeacher>, t0: number,
): Promise<CompareState> {
  const b = req.budget;
  const { stages, seeds } = planStages(req, variants, fnet, teacherCfg);
  const nSamples = b.samplesPerClass * req.train.classNames.length;
  const total = stages.reduce((a, s) => a + s.estimate, 0);
  const pending = stages.filter((s) => !s.done());
  const runs = seeds.length * variants.length;
  const partName = req.part === 'shared' ? ' (shared stages)' : req.part ? ` (part ${req.part.index + 1} of ${req.part.count})` : '';
  req.log(
    `plan${partName}: ${variants.length} variants (${variants.map((v) => v.id).join(', ')}) x ${seeds.length} seeds = ${runs} runs, ${stages.length} stages` +
      ` (${stages.length - pending.length} done); tokenizer ${b.tokenizer.steps} steps of ${b.tokenizer.batch}` +
      (req.generation ? `, generator ${b.generator.steps} steps of ${b.generator.batch}, ${nSamples} samples per run` : ', no generation') +
      `; estimated ${formatDuration(pending.reduce((a, s) => a + s.estimate, 0))} of ${formatDuration(total)} (budget ${b.name})`,
  );
  let estDone = 0;
  const tStart = performance.now();
  for (const [i, st] of stages.entries()) {
    if (st.done()) continue;
    const elapsed = (performance.now() - tStart) / 1000;
    const left = pending.slice(pending.indexOf(st)).reduce((a, s) => a + s.estimate, 0);
    // The ETA scales the estimate of what is left by how fast the estimate has run so far in this invocation.
    const eta = estDone > 0 ? left * (elapsed / estDone) : left;
    req.log(`[${i + 1}/${stages.length}] ${st.name} · elapsed ${formatDuration(elapsed)} · ETA ${formatDuration(eta)}`);
    await st.run();
    estDone += st.estimate;
    if (st.endsRun && req.onRunDone) await req.onRunDone(collectState(req, variants, settings, evaluator, seeds, t0));
  }
  return collectState(req, variants, settings, evaluator, seeds, t0);
}

/** Reads every run's result files in OUT into a CompareState (runs with no results yet are left out). */
function collectState(req: CompareRequest, variants: CompareVariant[], settings: CompareSettings, evaluator: CompareState['evaluator'], seeds: number[], t0: number): CompareState {
  const runs: RunResult[] = [];
  for (const v of variants) {
    for (const seed of seeds) {
      const dir = path.join(req.out, 'runs', runId(v.id, seed));
      const tj = readJson<{ usage: number[]; perplexity: number[]; timing: { seconds: number; imagesPerSecond: number } }>(path.join(dir, 'tokenizer.json'));
      const rj = readJson<Omit<TokenizerScores, 'usage' | 'perplexity'>>(path.join(dir, 'recon.json'));
      const gj = readJson<{ timing: { seconds: number; tokensPerSecond: number } }>(path.join(dir, 'generator.json'));
      const sj = readJson<GenerationScores>(path.join(dir, 'generation.json'));
      if (!(tj && rj) && !sj) continue;
      runs.push({
        variant: v.id, seed,
        tokenizer: tj && rj ? { ...rj, usage: tj.usage, perplexity: tj.perplexity } : null,
        generation: sj,
        timing: {
          tokenizerSeconds: tj?.timing.seconds, tokenizerImagesPerSecond: tj?.timing.imagesPerSecond,
          generatorSeconds: gj?.timing.seconds, generatorTokensPerSecond: gj?.timing.tokensPerSecond,
        },
      });
    }
  }
  return {
    out: req.out, settings, budget: req.budget, variants, floors: readJson<Floors>(path.join(req.out, 'floors.json')), runs, evaluator,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Per-run training curves from metrics.jsonl (tokenizer: recon; generator: loss), for the report's plots. */
export function readCompareCurves(out: string, runs: RunResult[]): Record<string, { tokenizer: [number, number][]; generator: [number, number][] }> {
  const read = (file: string, key: string): [number, number][] => {
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, number>)
      .filter((r) => typeof r[key] === 'number').map((r) => [r.step!, r[key]!] as [number, number]);
  };
  const curves: Record<string, { tokenizer: [number, number][]; generator: [number, number][] }> = {};
  for (const r of runs) {
    const dir = path.join(out, 'runs', runId(r.variant, r.seed));
    curves[runId(r.variant, r.seed)] = { tokenizer: read(path.join(dir, 'tokenizer', 'metrics.jsonl'), 'recon'), generator: read(path.join(dir, 'generator', 'metrics.jsonl'), 'loss') };
  }
  return curves;
}
