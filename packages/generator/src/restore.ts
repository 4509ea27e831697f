import { assignParams, type LoadedCheckpoint } from '@factorgen/formats';
import { preferEma } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { currentGeneratorConfig, type GeneratorConfig, type StoredGeneratorConfig } from './config';
import { createGenerator, type Generator } from './model';

/** What a generator checkpoint records about the tokens it was trained on. */
export type GeneratorProvenance = { tokenizerId: string; tokenizerPath: string; classNames: string[]; tokens: string };

/**
 * Builds a generator from a parsed checkpoint (no files: the CLI reads folders, the web page fetches), with what it
 * records about its tokenizer and classes. `where` names the checkpoint in errors. The caller owns gen.params.
 */
export function generatorFromCheckpoint(ck: LoadedCheckpoint, where: string): { gen: Generator; provenance: GeneratorProvenance } {
  // Any version: the current one is built from it.
  let config: GeneratorConfig;
  try {
    config = currentGeneratorConfig(ck.config as StoredGeneratorConfig);
  } catch (e) {
    // Name the file the bad field is in (was: "generator config: …" with no file).
    if (e instanceof UserError) throw new UserError(`${where}/config.json: ${e.message}`);
    throw e;
  }
  const provenance = ck.extra as GeneratorProvenance | undefined;
  if (!provenance?.tokenizerId || !Array.isArray(provenance.classNames)) {
    throw new UserError(`${where}: generator checkpoint lacks its tokenizer id or class names`);
  }
  // One more name would make the null class samplable as a class; one fewer would leave a class that cannot be named.
  if (provenance.classNames.length !== config.numClasses) {
    throw new UserError(`${where}: config.json lists ${provenance.classNames.length} class names for ${config.numClasses} classes`);
  }
  // With EMA the averaged weights are what samples come from. The model is built against them: a parameter the
  // checkpoint lacks, or holds in another shape, is listed, not allocated.
  const tensors = preferEma(ck.tensors);
  const gen = createGenerator(config, 'load', { shapes: tensors, where });
  try {
    assignParams(gen.params.vars, tensors, where);
  } catch (e) {
    gen.params.dispose();
    throw e;
  }
  return { gen, provenance };
}
