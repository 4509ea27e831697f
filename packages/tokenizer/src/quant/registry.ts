import { UserError } from '@factorgen/tfjs-ext';
import type { QuantizerKind } from '../config/schema';
import type { Quantizer } from './types';
import { fqQuantizer } from './fq';
import { unitokQuantizer } from './unitok';
import { vqQuantizer } from './vq';

/**
 * The quantizer registry: quantizer.kind -> the quantizer that creates its parameters (`create`, the factory),
 * quantizes latents and looks codes up. One entry per kind; a new quantizer is a new entry (and a kind in
 * QuantizerKind), not a flag across the others.
 */
export const QUANTIZERS: Readonly<Record<QuantizerKind, Quantizer>> = {
  vq: vqQuantizer,
  fq: fqQuantizer,
  unitok: unitokQuantizer,
};

/** The registry's entry for `kind`; UserError naming the known kinds for any other. */
export function quantizerOfKind(kind: string): Quantizer {
  const q = Object.hasOwn(QUANTIZERS, kind) ? QUANTIZERS[kind as QuantizerKind] : undefined;
  if (!q) throw new UserError(`quantizer kind ${JSON.stringify(kind)} is not one of ${Object.keys(QUANTIZERS).map((k) => JSON.stringify(k)).join(', ')}`);
  return q;
}
