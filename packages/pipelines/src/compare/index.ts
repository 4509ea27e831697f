export * from './variants';
export * from './run';
export * from './summary';
export * from './report';
