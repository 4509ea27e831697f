import type { TrainFeatureNetOptions } from './featureNet';

/**
 * How the evaluation feature net is trained when a command needs it (then cached): another seed and architecture
 * than the tokenizer's teacher, so the metrics do not reward fitting the teacher.
 */
export const defaultFeatureNetTraining: TrainFeatureNetOptions = { steps: 2000, batch: 64, lr: 2e-3, seed: 1 };
