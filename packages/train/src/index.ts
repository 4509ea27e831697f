// @factorgen/train: the training-run harness (Node only).
export * from './export';
export * from './loop';
export * from './metrics';
export * from './progress';
export * from './run';
export * from './runDir';
export * from './signals';
