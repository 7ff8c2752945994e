export * from './execution-plan';
export * from './gpu-probe';
export * from './report';
export * from './webgpu-engine';
