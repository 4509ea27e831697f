// The sampling page: loads the generator and its tokenizer from ./model/, samples on the best backend the browser
// has, and draws the labelled grid as images arrive. Everything model-related is the packages' own code.
import { renderGrid } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { decodeToImages } from '@factorgen/tokenizer';
import { classLabels, sampleInBatches, type Generator } from '@factorgen/generator';
import { pageBackends, startBackend, type PageBackend, type PageBackendInfo } from './backend';
import { loadModels, type PageModels } from './model';

/** Sampling settings, as `factorgen sample` names them. */
export type PageSettings = {
  classes: number[];
  perClass: number;
  cfgScale: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: string;
  batch: number;
};

/** The last finished run, for people (the status line) and for tests (window.factorgen). */
export type PageRun = { settings: PageSettings; labels: number[]; tokens: number[]; seconds: number; firstImageSeconds: number };

/** What the page exposes on window.factorgen (read by the browser tests). */
export type PageState = {
  state: 'loading' | 'ready' | 'sampling' | 'done' | 'error';
  backend: PageBackendInfo | null;
  error: string | null;
  last: PageRun | null;
};

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: element #${id} missing`);
  return el as T;
};

const pageState: PageState = { state: 'loading', backend: null, error: null, last: null };
(window as unknown as { factorgen: PageState }).factorgen = pageState;

function setState(s: PageState['state']): void {
  pageState.state = s;
  document.body.dataset.state = s;
}

/** Shows one line in the page (a UserError's message as is; a bug with its type). */
function showError(e: unknown): void {
  const msg = e instanceof UserError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const line = msg.replace(/\s*\n\s*/g, ' ').trim();
  pageState.error = line;
  $('error').textContent = line;
  $('error').hidden = false;
  setState('error');
}

function readNumber(id: string, what: string, ok: (x: number) => boolean, rule: string): number {
  const raw = $<HTMLInputElement>(id).value.trim();
  const x = Number(raw);
  if (raw === '' || !ok(x)) throw new UserError(`${what}: ${rule}, got "${raw}"`);
  return x;
}

function readSettings(): PageSettings {
  const classes = [...document.querySelectorAll<HTMLInputElement>('#classes input[type=checkbox]')]
    .filter((c) => c.checked)
    .map((c) => Number(c.value));
  if (classes.length === 0) throw new UserError('classes: pick at least one class');
  const isInt = (x: number) => Number.isInteger(x);
  return {
    classes,
    perClass: readNumber('per-class', 'images per class', (x) => isInt(x) && x >= 1 && x <= 64, 'must be an integer in 1..64'),
    cfgScale: readNumber('cfg', 'guidance', (x) => Number.isFinite(x) && x >= 0, 'must be a number >= 0'),
    temperature: readNumber('temperature', 'temperature', (x) => Number.isFinite(x) && x > 0, 'must be a number > 0'),
    topK: readNumber('top-k', 'top-k', (x) => isInt(x) && x >= 0, 'must be an integer >= 0'),
    topP: readNumber('top-p', 'top-p', (x) => x > 0 && x <= 1, 'must be in (0, 1]'),
    seed: $<HTMLInputElement>('seed').value,
    batch: readNumber('batch', 'batch', (x) => isInt(x) && x >= 1, 'must be a positive integer'),
  };
}

function buildClassPicker(names: string[]): void {
  const box = $('classes');
  box.replaceChildren(
    ...names.map((name, i) => {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.value = String(i);
      input.checked = true;
      label.append(input, ` ${i} ${name}`);
      return label;
    }),
  );
  const setAll = (on: boolean) => box.querySelectorAll<HTMLInputElement>('input').forEach((c) => (c.checked = on));
  $('all').onclick = () => setAll(true);
  $('none').onclick = () => setAll(false);
}

/** Draws uint8 pixels [h,w,c] (c = 1 or 3) into a canvas of that size. */
function paint(canvas: HTMLCanvasElement, pixels: Uint8Array, h: number, w: number, c: number): void {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) img.data[i * 4 + k] = pixels[i * c + (c === 3 ? k : 0)];
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** The empty labelled grid: one row per class with perClass cells; returns the cells in label order. */
function buildGrid(models: PageModels, s: PageSettings): HTMLCanvasElement[] {
  const names = models.provenance.classNames;
  const grid = $('grid');
  const cells: HTMLCanvasElement[] = [];
  grid.replaceChildren(
    ...s.classes.map((c) => {
      const row = document.createElement('div');
      row.className = 'row';
      const label = document.createElement('div');
      label.className = 'label';
      label.textContent = `${c} ${names[c]}`;
      row.append(label);
      for (let i = 0; i < s.perClass; i++) {
        const cell = document.createElement('canvas');
        cell.className = 'cell';
        cells.push(cell);
        row.append(cell);
      }
      return row;
    }),
  );
  return cells;
}

let downloadGrid: (() => void) | null = null;

let lastYield = 0;
/**
 * Ends the current task about 30 times a second so the browser can repaint (sampling otherwise runs in one task:
 * wasm reads resolve as microtasks). A MessageChannel task, not setTimeout: background tabs throttle timers to 1 s.
 */
function repaintSoon(): Promise<void> {
  const now = performance.now();
  if (now - lastYield < 33) return Promise.resolve();
  lastYield = now;
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

async function run(models: PageModels): Promise<void> {
  const s = readSettings();
  const { gen, tok, provenance } = models;
  const { imageSize: S, channels: C } = tok.cfg;
  const per = S * S * C;
  const labels = classLabels(s.classes, s.perClass);
  const cells = buildGrid(models, s);
  const images: Uint8Array[] = [];
  const T = models.gen.cfg.gridH * models.gen.cfg.gridW;
  const bar = $<HTMLProgressElement>('progress');
  bar.max = labels.length * T;
  bar.value = 0;
  const text = $('progress-text');
  text.textContent = `0 / ${labels.length} images`;
  $<HTMLButtonElement>('download').disabled = true;
  setState('sampling');
  const t0 = performance.now();
  let firstImageSeconds = 0;
  let shown = 0;
  const tokens = await sampleInBatches(
    gen as Generator,
    labels,
    { cfgScale: s.cfgScale, temperature: s.temperature, topK: s.topK, topP: s.topP, useCache: true },
    s.seed,
    s.batch,
    {
      onProgress: async (done, total) => {
        bar.value = done;
        text.textContent = `${shown} / ${labels.length} images, tokens ${Math.round((100 * done) / total)} %`;
        await repaintSoon();
      },
      onBatch: async (start, part) => {
        // The batch's images appear at once, decoded as `factorgen sample` decodes them.
        const n = part.length / (T * models.gen.cfg.subCodebookSizes.length);
        const pixels = await decodeToImages(tok, part, n, n);
        for (let i = 0; i < n; i++) {
          images[start + i] = pixels.subarray(i * per, (i + 1) * per);
          paint(cells[start + i], images[start + i], S, S, C);
        }
        if (start === 0) firstImageSeconds = (performance.now() - t0) / 1000;
        shown = start + n;
        text.textContent = `${shown} / ${labels.length} images`;
      },
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  pageState.last = { settings: s, labels, tokens: Array.from(tokens), seconds, firstImageSeconds };
  text.textContent = `${labels.length} / ${labels.length} images in ${seconds.toFixed(1)} s`;
  downloadGrid = () => {
    const names = provenance.classNames;
    const rows = s.classes.map((c, r) => ({ label: `${c} ${names[c]}`, images: images.slice(r * s.perClass, (r + 1) * s.perClass) }));
    // The same labelled layout as the CLI's grid.png, drawn at 2x.
    const { pixels, layout } = renderGrid(rows, S, S, C as 1 | 3, { scale: 2 });
    const canvas = document.createElement('canvas');
    paint(canvas, pixels, layout.height, layout.width, C);
    const a = document.createElement('a');
    a.download = `factorgen-seed${s.seed}.png`;
    a.href = canvas.toDataURL('image/png');
    a.click();
  };
  $<HTMLButtonElement>('download').disabled = false;
  setState('done');
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const forced = params.get('backend');
  if (forced !== null && !(pageBackends as readonly string[]).includes(forced)) {
    throw new UserError(`?backend=${forced}: unknown backend (expected ${pageBackends.join(', ')})`);
  }
  const backend = await startBackend('wasm/', (forced ?? undefined) as PageBackend | undefined);
  pageState.backend = backend;
  $('backend').textContent = `${backend.name} (${backend.detail})`;
  const models = await loadModels(params.get('model') ?? 'model');
  const g = models.gen.cfg;
  $('model').textContent =
    `generator ${g.width}x${g.depth}, ${g.gridH}x${g.gridW} tokens x ${g.subCodebookSizes.length} sub-codebooks ` +
    `(${g.subCodebookSizes.join('+')} codes); tokenizer ${models.tokenizerId}`;
  buildClassPicker(models.provenance.classNames);
  const button = $<HTMLButtonElement>('sample');
  button.onclick = () => {
    button.disabled = true;
    $('error').hidden = true;
    run(models)
      .catch(showError)
      .finally(() => {
        button.disabled = false;
      });
  };
  $<HTMLButtonElement>('download').onclick = () => downloadGrid?.();
  button.disabled = false;
  setState('ready');
}

main().catch(showError);
