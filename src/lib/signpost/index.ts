// Public surface of signpost: A/B set discovery, flag changes, GRUB's gptprio.next model.
export * from './sets.ts';
export * from './host.ts';
export * from './transitions.ts';
export * from './signpost.ts';
