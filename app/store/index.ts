export * from './app-store';
export * from './settings';
export * from './batch';
