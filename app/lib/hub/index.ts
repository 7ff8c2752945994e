export * from './ref';
export * from './layout';
export * from './entry';
export * from './source';
export * from './safetensors';
export * from './temperature';
