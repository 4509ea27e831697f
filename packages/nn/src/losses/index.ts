// Losses: softmax cross-entropy, InfoNCE, hinge.
export * from './ce';
export * from './hinge';
export * from './infoNCE';
