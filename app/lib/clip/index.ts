export * from './tokenize';
export * from './zero-shot';
export * from './types';
export * from './prompts';
export * from './engine';
