// Layers over tensors or a ParamStore: linear, conv, norms, activations, MLPs, RoPE, the one attention.
export * from './act';
export * from './attention';
export * from './conv';
export * from './groupNormalize';
export * from './linear';
export * from './mlp';
export * from './norm';
export * from './rope';
