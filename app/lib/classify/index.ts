export * from './postprocess';
export * from './pipeline';
