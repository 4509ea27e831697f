// @factorgen/tfjs-ext: what runs anywhere tfjs runs (browser included). Backend selection for Node is on './node'.
export * from './errors';
export * from './simd/codeEntropy';
export * from './register';
export * from './ops/dropout';
export * from './ops/linearCrossEntropy';
export * from './tape/gradients';
export * from './tape/recompute';
export * from './tape/recomputeKeepingProducts';
export * from './tape/shareSaved';
export * from './tape/withoutTape';
