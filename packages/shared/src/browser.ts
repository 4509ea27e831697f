// The browser entry of @factorgen/shared (package.json "browser"): what model code needs, without node:fs, sharp,
// workers or node:crypto. Bundlers targeting the browser resolve '@factorgen/shared' here, so a model file that
// imports something new from '@factorgen/shared' needs it exported here too (test/web/bundle.test.ts says which).
export * from './errors';
export * from './rng';
export * from './params';
export * from './nn';
export * from './hash';
export * from './checkpointFormat';
export * from './font5x7';
export * from './grid';
export * from './pixels';
export * from './tape/gradients';
export * from './tape/shareSaved';
export * from './tape/recompute';
export * from './tape/recomputeKeepingProducts';
export { registerTrainingKernels, type KernelChanges } from './kernels/register';
export * from './train/ema';
export * from './tape/withoutTape';
export * from './ops/linearCrossEntropy';
export { codeEntropyKernel, codeEntropyForward, codeEntropyBackward, type CodeEntropySaved } from './kernels/codeEntropy';
export * from './ops/dropout';
export * from './safetensors';
