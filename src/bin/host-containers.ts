// host-containers: the restart command of settings.host-containers — writes each container's user
// data and environment file and enables or disables its host-containers@ unit.
import { isBrlError } from '../lib/core/errors.ts';
import { applyHostContainers } from '../lib/host/host-ctr/apply.ts';

try {
  for (const { name, action } of await applyHostContainers({ root: '/', changedSettings: process.env.CHANGED_SETTINGS ?? '' })) {
    process.stderr.write(`host-containers: ${name} ${action}\n`);
  }
} catch (error) {
  process.stderr.write(`host-containers: ${isBrlError(error) ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
