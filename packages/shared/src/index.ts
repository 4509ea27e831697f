export * from './errors';
export * from './rng';
export * from './params';
export * from './optim';
export * from './nn';
export * from './backend';
