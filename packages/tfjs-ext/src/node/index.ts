// @factorgen/tfjs-ext/node: choosing and starting a tfjs backend in Node (wasm threads through worker_threads, WebGPU
// through Dawn's Node binding, the optional tfjs-node backend).
export * from './backend';
export * from './nativeStderr';
export * from './wasmThreads';
export * from './webgpu';
