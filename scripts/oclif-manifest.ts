// Writes oclif.manifest.json after the build, so `brl` lists and finds commands without importing
// every command module (and the AWS SDK behind some of them) on each start.
import { writeFileSync } from 'node:fs';
import { Plugin } from '@oclif/core';

const root = new URL('..', import.meta.url).pathname;
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
console.error(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`);
