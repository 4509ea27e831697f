// The browser entry of @factorgen/shared (package.json "browser"): what model code needs, without node:fs, sharp,
// workers or node:crypto. Bundlers targeting the browser resolve '@factorgen/shared' here.
export * from './errors';
export * from './rng';
export * from './params';
export * from './nn';
export * from './hash';
export * from './checkpointFormat';
export * from './font5x7';
export * from './grid';
export * from './pixels';
export { registerTrainingKernels, type KernelChanges } from './kernels/register';
