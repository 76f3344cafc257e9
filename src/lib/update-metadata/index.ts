// Public surface of the update metadata model, shared by `brl repo` and the on-host updater.
export * from './version.ts';
export * from './time.ts';
export * from './manifest.ts';
export * from './waves.ts';
export * from './edit.ts';
export * from './select.ts';
