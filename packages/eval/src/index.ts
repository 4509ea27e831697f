export * from './metrics';
export * from './featureNet';
export * from './cache';
export * from './evaluate';
export * from './defaults';
export * from './float16';
export * from './probe';
export * from './hue';
