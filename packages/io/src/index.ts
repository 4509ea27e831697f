// @factorgen/io: the file system around @factorgen/formats (Node only).
export * from './checkpoint';
export * from './classFolders';
export * from './data/emoji';
export * from './data/fashionMnist';
export * from './data/imageFolder';
export * from './data/load';
export * from './fsErrors';
export * from './image';
export * from './outputs';
export * from './tokenFile';
