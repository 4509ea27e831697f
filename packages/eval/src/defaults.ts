import type { TrainFeatureNetOptions } from './featureNet';

/**
 * How the evaluation feature net is trained when a command needs it (then cached): another seed and architecture
 * than the tokenizer's teacher, so the metrics do not reward fitting the teacher.
 * Measured on Fashion-MNIST, wasm backend: 1500 steps of 64 (1.6 epochs) at lr 3e-3 -> 90.35% test accuracy in
 * ~390 s of one CPU core (1000 steps: 89.7%; with random flips, 1500 steps: 89.75%).
 */
export const defaultFeatureNetTraining: TrainFeatureNetOptions = { steps: 1500, batch: 64, lr: 3e-3, seed: 1 };
