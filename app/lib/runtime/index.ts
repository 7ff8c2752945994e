export * from './execution-plan';
export * from './gpu-probe';
export * from './report';
