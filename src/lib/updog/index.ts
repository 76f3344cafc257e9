// Public surface of updog: configuration, transport, repository access and the update operations.
export * from './config.ts';
export * from './http.ts';
export * from './paths.ts';
export * from './repository.ts';
export * from './migrations.ts';
export * from './lock.ts';
export * from './verity-check.ts';
export * from './updog.ts';
