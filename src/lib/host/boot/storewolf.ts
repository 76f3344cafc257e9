// storewolf: create the datastore on first boot, wipe pending transactions, seed missing defaults.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { keyName } from '../datastore/key.ts';
import { createVersionTree, readVersionChain } from '../datastore/layout.ts';
import { writePendingFiles } from '../datastore/pending.ts';
import { Datastore } from '../datastore/store.ts';
import { flatten, isJsonObject } from '../datastore/tree.ts';
import type { HostPaths } from '../paths.ts';
import { loadRootDefaults } from '../settings/defaults.ts';
import type { SettingsModel } from '../settings/model.ts';
import { LAUNCH_TX } from './commit-launch.ts';

export interface StorewolfResult {
  created: boolean;
  versionDir: string;
  /** Settings not yet committed, now pending in `bottlerocket-launch`. */
  pendingSettings: string[];
  /** Metadata, services and configuration-files written to live. */
  liveKeys: string[];
}

/** Never overwrites: settings go to the launch transaction, everything else only where absent. */
export async function runStorewolf(paths: HostPaths, version: string, model: SettingsModel): Promise<StorewolfResult> {
  let chain = await readVersionChain(paths.datastoreBase);
  let created = false;
  if (!chain) {
    await createVersionTree(paths.datastoreBase, version);
    chain = await readVersionChain(paths.datastoreBase);
    created = true;
  }
  if (!chain) throw new Error(`datastore under ${paths.datastoreBase} could not be created`);
  await rm(join(chain.versionDir, 'pending'), { recursive: true, force: true });
  const store = await Datastore.open(paths.datastoreBase);
  const defaults = await loadRootDefaults(paths.root);
  const settings = isJsonObject(defaults.settings) ? defaults.settings : {};
  model.checkCommitted(settings);

  const pending = flatten(settings, ['settings']).filter((entry) => store.getLive(entry.name) === undefined);
  // On disk: the apiserver, started next in its own process, reads pending/ when it opens the datastore.
  await writePendingFiles(store.pendingDir(LAUNCH_TX), pending);

  const liveKeys: string[] = [];
  for (const section of ['services', 'configuration-files']) {
    const fresh = flatten(defaults[section] ?? {}, [section]).filter((entry) => store.getLive(entry.name) === undefined);
    await store.writeLiveDirect(fresh);
    liveKeys.push(...fresh.map((entry) => entry.name));
  }
  for (const entry of flatten(defaults.metadata ?? {})) {
    const owner = entry.segments.slice(0, -1);
    const metaName = entry.segments.at(-1) as string;
    if (owner.length === 0 || store.getMetadata(keyName(owner), metaName) !== undefined) continue;
    await store.writeMetadataDirect(owner, metaName, entry.value);
    liveKeys.push(entry.name);
  }
  return { created, versionDir: chain.versionDir, pendingSettings: pending.map((entry) => entry.name), liveKeys };
}
