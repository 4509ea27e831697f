// @factorgen/train: the training-run harness (Node only; headless: it reports events and honours an AbortSignal, the
// CLI's ui/ draws progress and maps signals).
export * from './export';
export * from './harness';
export * from './loop';
export * from './metrics';
export * from './runDir';
