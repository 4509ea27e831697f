// The browser entry of @factorgen/tokenizer (package.json "browser"): the model and its restore from parsed
// checkpoint files, without training, token files or anything that reads folders.
export * from './config';
export * from './model';
export * from './restore';
export * from './images';
