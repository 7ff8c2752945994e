export * from './knn';
export * from './pca';
