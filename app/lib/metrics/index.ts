export * from './binary';
