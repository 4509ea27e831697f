// @factorgen/nn: parameters, RNG, optimizers, EMA, layers and losses. Pure: no Node modules.
export * from './ema';
export * from './layers';
export * from './losses';
export * from './nn';
export * from './optim';
export * from './params';
export * from './rng';
export * from './tensorData';
