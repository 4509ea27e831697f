// @factorgen/formats: file formats as bytes and pixels, no file system (the web page parses with it too).
export * from './checkpointFormat';
export * from './data/batches';
export * from './data/convert';
export * from './data/types';
export * from './font5x7';
export * from './grid';
export * from './hash';
export * from './pixels';
export * from './safetensors';
