export * from './csv';
export * from './ground-truth';
export * from './zip';
export * from './summary';
export * from './rows';
export * from './analysis';
export * from './chunk';
export * from './timing';
