// @factorgen/nn: parameters, RNG, optimizers, EMA. Pure: no Node modules.
export * from './ema';
export * from './nn';
export * from './optim';
export * from './params';
export * from './rng';
export * from './tensorData';
