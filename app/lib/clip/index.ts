export * from './tokenize';
export * from './zero-shot';
