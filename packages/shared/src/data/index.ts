export * from './types';
export * from './fashionMnist';
export * from './emoji';
export * from './imageFolder';
export * from './batches';
export * from './load';
export * from './convert';
