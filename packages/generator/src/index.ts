export * from './config';
export * from './layers';
export * from './gpt';
export * from './head';
export * from './model';
export * from './sampler';
export * from './plan';

export * from './restore';

