export * from './config';
export * from './validate';
export * from './layers';
export * from './encoder';
export * from './decoder';
export * from './codebook';
export * from './quantizer';
export { fqQuantizer } from './fq';
export { vqQuantizer } from './vq';
export { unitokQuantizer } from './unitok';
export * from './registry';
export * from './migrate';
export * from './presets';
export * from './disentangle';
export * from './align';
export * from './alignHead';
export * from './teacher';

export * from './perceptual';
export * from './discriminator';
export * from './usage';
export * from './deadCodes';
export * from './model';



export * from './rotation';
export * from './restore';
export * from './images';

export * from './probe';
export * from './attnProj';
export * from './codeEntropy';
export * from './groupNorm';
