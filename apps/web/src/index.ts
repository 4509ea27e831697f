export * from './bundle';
export * from './html';
export * from './site';
export * from './server';
export * from './charts';
export * from './report';
export * from './compareReport';
