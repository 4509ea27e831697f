// @factorgen/pipelines: one module per use case; the CLI and the web app call these (Node only).
export * from './evalCache';
export * from './evaluate';
export * from './loadTeacher';
export * from './loadTokenizer';
export * from './sample';
export * from './trainGenerator';
export * from './trainTeacher';
export * from './trainTokenizer';
export * from './dataset';
export * from './decode';
export * from './encode';
export * from './evalRecon';
export * from './evalSamples';
export * from './export';
export * from './featureNet';
export * from './probe';
export * from './reconstruct';
