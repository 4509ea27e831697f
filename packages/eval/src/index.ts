export * from './metrics';
export * from './featureNet';


export * from './defaults';
export * from './float16';
export * from './probe';
export * from './hue';
export * from './stats';
