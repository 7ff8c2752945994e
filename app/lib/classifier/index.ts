export * from './postprocess';
export * from './pipeline';
export * from './types';
export * from './engine';
