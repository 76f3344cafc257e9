// Build step: merges a variant's defaults.d fragments into storewolf's one TOML and checks the
// result against the variant's settings model, with brl's own host code (the same merge
// `brl host init` does), so an image never ships defaults its apiserver would refuse.
// Usage: node merge-defaults.ts <brl sources dir> <output.toml> <model.toml> <fragment.toml>...
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';

const [sourcesDir, output, modelPath, ...fragmentPaths] = process.argv.slice(2);
if (sourcesDir === undefined || output === undefined || modelPath === undefined || fragmentPaths.length === 0) {
  process.stderr.write('usage: merge-defaults.ts <brl sources dir> <output.toml> <model.toml> <fragment.toml>...\n');
  process.exit(2);
}
const { loadFragment, mergeFragments } = await import(`${sourcesDir}/src/lib/host/settings/defaults.ts`);
const { SettingsModel } = await import(`${sourcesDir}/src/lib/host/settings/model.ts`);
const { stringify } = await import(`${sourcesDir}/node_modules/smol-toml/dist/index.js`);

// Later files win, in file-name order (Bottlerocket's defaults.d rule), wherever each file lives.
const ordered = [...fragmentPaths].sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
const merged = mergeFragments(await Promise.all(ordered.map((path) => loadFragment(path))));
const model = SettingsModel.parse(await readFile(modelPath, 'utf8'), modelPath);
model.checkCommitted(merged.settings ?? {});
await writeFile(output, stringify(merged));
process.stdout.write(`merged ${ordered.map((path) => basename(path)).join(', ')} into ${output}\n`);
