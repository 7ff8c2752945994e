export * from './ref';
export * from './layout';
export * from './entry';
export * from './source';
