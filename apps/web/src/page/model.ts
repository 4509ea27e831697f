import { parseCheckpoint, type LoadedCheckpoint } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { gridSize, tokenizerFromCheckpoint, type Tokenizer } from '@factorgen/tokenizer';
import { generatorFromCheckpoint, type Generator, type GeneratorProvenance } from '@factorgen/generator';

/** Fetches a URL's bytes; a failure is a one-line UserError naming `shown`. */
async function fetchBytes(url: string, shown: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new UserError(`${shown}: could not be fetched (${e instanceof Error ? e.message : String(e)})`);
  }
  if (res.status === 404) throw new UserError(`${shown}: missing (HTTP 404)`);
  if (!res.ok) throw new UserError(`${shown}: could not be fetched (HTTP ${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Fetches and validates the checkpoint at `dir`: config.json, then model.safetensors (format 2) or weights.bin (format 1,
 * as config.json says); the optimizer state is never needed here.
 */
export async function fetchCheckpoint(dir: string, kind: 'generator' | 'tokenizer'): Promise<LoadedCheckpoint> {
  const text = new TextDecoder().decode(await fetchBytes(`${dir}/config.json`, `${dir}/config.json`));
  return parseCheckpoint(
    text,
    { shown: dir, file: (name) => `${dir}/${name}`, read: (name) => fetchBytes(`${dir}/${name}`, `${dir}/${name}`) },
    kind,
    false,
  );
}

export type PageModels = { gen: Generator; provenance: GeneratorProvenance; tok: Tokenizer; tokenizerId: string };

/**
 * Loads the generator at `base`/generator and the tokenizer at `base`/tokenizer, and checks that the tokenizer is
 * the one the generator was trained with (the same id check as `factorgen sample`).
 */
export async function loadModels(base: string): Promise<PageModels> {
  const [gck, tck] = await Promise.all([fetchCheckpoint(`${base}/generator`, 'generator'), fetchCheckpoint(`${base}/tokenizer`, 'tokenizer')]);
  const { gen, provenance } = generatorFromCheckpoint(gck, `${base}/generator`);
  let restored: ReturnType<typeof tokenizerFromCheckpoint>;
  try {
    restored = tokenizerFromCheckpoint(tck, `${base}/tokenizer`);
  } catch (e) {
    gen.params.dispose();
    throw e;
  }
  if (restored.id !== provenance.tokenizerId) {
    gen.params.dispose();
    restored.tok.params.dispose();
    throw new UserError(`${base}/tokenizer: tokenizer ${restored.id} is not the one the generator was trained with (${provenance.tokenizerId})`);
  }
  const g = gen.cfg;
  const tc = restored.tok.cfg;
  const K = tc.quantizer.subCodebooks.length;
  if (gridSize(tc) !== g.gridH || K !== g.subCodebookSizes.length) {
    throw new UserError(`${base}/tokenizer: its token grid (${gridSize(tc)}x${gridSize(tc)}, ${K} sub-codebooks) does not fit the generator's`);
  }
  return { gen, provenance, tok: restored.tok, tokenizerId: restored.id };
}
