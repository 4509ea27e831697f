export * from './config/schema';
export * from './config/validate';
export * from './arch/layers';
export * from './arch/encoder';
export * from './arch/decoder';
export * from './quant/codebook';
export * from './quant/quantizer';
export { fqQuantizer } from './quant/fq';
export { vqQuantizer } from './quant/vq';
export { unitokQuantizer } from './quant/unitok';
export * from './quant/registry';
export * from './config/migrate';
export * from './config/presets';
export * from './losses/disentangle';
export * from './losses/align';
export * from './losses/alignHead';
export * from './teacher/teacher';

export * from './losses/perceptual';
export * from './losses/discriminator';
export * from './quant/usage';
export * from './quant/restart';
export * from './model';



export * from './teacher/rotation';
export * from './restore';
export * from './images';

export * from './probe';
export * from './quant/attnProj';
export * from './quant/entropy';
