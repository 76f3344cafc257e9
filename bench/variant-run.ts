// One variant build in its own process, for bench/variant.ts: prints the result and this process's peak RSS.
import { buildVariant } from '../src/lib/variant/build.ts';

const [projectDir, variant] = process.argv.slice(2) as [string, string];
const result = await buildVariant(projectDir, variant, { progress: 'silent' });
process.stdout.write(`${JSON.stringify({
  durationMs: result.durationMs,
  stageDurationsMs: result.stageDurationsMs,
  rootHash: result.verity.rootHash,
  artifacts: result.artifacts.map((artifact) => [artifact.file, artifact.sha256]),
  nodeMaxRssKiB: process.resourceUsage().maxRSS,
})}\n`);
