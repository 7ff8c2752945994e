export * from './torch-random';
export * from './lcm-scheduler';
export * from './guidance';
export * from './step-graph';
export * from './pipeline';
