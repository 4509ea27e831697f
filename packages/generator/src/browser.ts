// The browser entry of @factorgen/generator (package.json "browser"): the model, the sampler and the restore from
// parsed checkpoint files, without training or sample folders.
export * from './config';
export * from './model';
export * from './sampler';
export * from './plan';
export * from './restore';
