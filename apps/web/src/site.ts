import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { describeWriteError, listFiles, LOCK_FILE, MANIFEST_FILE, openOutputDir, readManifest, writeManifest, loadCheckpoint } from '@factorgen/io';
import { LEGACY_CHECKPOINT_FORMAT, MODEL_FILE } from '@factorgen/formats';
import { resolveCheckpointDir } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { tokenizerIdOf } from '@factorgen/tokenizer';
import { findTokenizerDir } from '@factorgen/pipelines';
import { type GeneratorProvenance } from '@factorgen/generator';
import { bundlePage } from './bundle';
import { pageHtml } from './html';
import { makeFolders } from '@factorgen/io';

/** One file of the site: a file on disk or bytes in memory. */
export type SiteFile = { file: string } | { data: Uint8Array | string };

/** The static site: URL path (no leading slash, e.g. "model/generator/model.safetensors") -> content. */
export type Site = Map<string, SiteFile>;

const require = createRequire(import.meta.url);

/** The tfjs wasm binaries the page's wasm backend loads (served under wasm/). */
function wasmFiles(): [string, SiteFile][] {
  const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  return ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'].map((f) => [
    `wasm/${f}`,
    { file: path.join(dir, f) },
  ]);
}

/**
 * The site for a generator: index.html, app.js (the bundled page), the wasm binaries, and the generator's and its
 * tokenizer's config.json + model.safetensors (weights.bin for a format-1 checkpoint) under model/ (no optimizer state). The tokenizer is `tokenizer`, else the
 * one the generator records (as `factorgen sample` finds it). Refuses, with a one-line UserError, a generator or
 * tokenizer that does not load or a tokenizer the generator was not trained with.
 */
export async function modelSite(opts: { generator: string; tokenizer?: string }): Promise<Site> {
  const genDir = resolveCheckpointDir(opts.generator);
  const gck = await loadCheckpoint(genDir, 'generator');
  const provenance = gck.extra as GeneratorProvenance | undefined;
  if (!provenance?.tokenizerId) throw new UserError(`${genDir}: generator checkpoint lacks its tokenizer id`);
  const tokDir = resolveCheckpointDir(findTokenizerDir(genDir, provenance, opts.tokenizer));
  const tck = await loadCheckpoint(tokDir, 'tokenizer');
  const id = tokenizerIdOf(tck);
  if (id !== provenance.tokenizerId) {
    throw new UserError(`--tokenizer ${tokDir}: tokenizer ${id} is not the one the generator was trained with (${provenance.tokenizerId})`);
  }
  const site: Site = new Map();
  site.set('index.html', { data: pageHtml() });
  site.set('app.js', { data: await bundlePage() });
  for (const [url, f] of wasmFiles()) site.set(url, f);
  for (const [name, ck] of [['generator', gck], ['tokenizer', tck]] as const) {
    const weights = ck.format === LEGACY_CHECKPOINT_FORMAT ? 'weights.bin' : MODEL_FILE;
    for (const f of ['config.json', weights]) site.set(`model/${name}/${f}`, { file: path.join(ck.from, f) });
  }
  return site;
}

/**
 * Throws a one-line UserError unless `out` is missing, an empty folder, or a site factorgen built: its manifest
 * (.factorgen.json, kind "site") lists every file present. A folder of the user's own (an index.html, an app.js and a
 * model/ of theirs) is refused, not taken for an earlier build: factorgen replaces only files it recorded writing.
 */
export function checkSiteFolder(out: string): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new UserError(`--out ${out}: exists and is not a folder`);
  const present = listFiles(out).filter((f) => f !== LOCK_FILE && !f.startsWith('.factorgen-probe-'));
  if (present.length === 0) return;
  const manifest = readManifest(out);
  if (manifest?.kind !== 'site') {
    const what = manifest ? `holds ${manifest.kind}, not a site` : `holds no site factorgen built (no ${MANIFEST_FILE} of kind "site")`;
    throw new UserError(`--out ${out}: folder is not empty and ${what}; refusing to write into it, choose an empty or new folder`);
  }
  const listed = new Set(manifest.paths);
  const foreign = present.filter((f) => f !== MANIFEST_FILE && !listed.has(f));
  if (foreign.length > 0) {
    const shown = foreign.length > 3 ? `${foreign.slice(0, 3).map((f) => JSON.stringify(f)).join(', ')} and ${foreign.length - 3} more` : foreign.map((f) => JSON.stringify(f)).join(', ');
    throw new UserError(`--out ${out}: also holds files factorgen did not write (${shown}); a rebuild replaces only the site's own files, so move them or choose another folder`);
  }
}

/**
 * Writes a site as a static folder `out` (created; a folder that exists must be empty or a site factorgen built, see
 * checkSiteFolder). Holds the folder's lock while writing and records the files in its manifest before writing them
 * (a killed build leaves them listed, so the next build replaces them). Returns the files written.
 */
export function writeSite(site: Site, out: string): string[] {
  checkSiteFolder(out);
  const rebuild = readManifest(out)?.kind === 'site';
  const lock = openOutputDir(out, 'out', 'site', 'web build', { overwrite: rebuild });
  try {
    writeManifest(out, 'site', [...site.keys()]);
    const written: string[] = [];
    for (const [url, f] of site) {
      const dest = path.join(out, ...url.split('/'));
      try {
        makeFolders(path.dirname(dest));
        if ('file' in f) fs.copyFileSync(f.file, dest);
        else fs.writeFileSync(dest, f.data);
      } catch (e) {
        throw new UserError(`--out ${out}: ${url}: ${describeWriteError(e)}`);
      }
      written.push(dest);
    }
    return written;
  } finally {
    lock.release();
  }
}
