// apiclient's update commands: start an action, then poll /updates/status until that action is recorded.
import { setTimeout as sleep } from 'node:timers/promises';
import { apiCall, apiRequest, ApiStatusError } from './request.ts';

export type UpdateAction = 'refresh' | 'prepare' | 'activate' | 'deactivate';

interface Status {
  update_state: string;
  most_recent_command: { cmd_type: string; cmd_status: string; timestamp: string; exit_status: number; stderr: string } | null;
}

// Upstream waits 10 s for a refresh and 5 s to (de)activate. Each action starts an updog process
// that checks the repository's signed metadata; on a slow host (a small instance, a VM under
// software emulation) that alone takes longer, so brl waits up to a minute: the poll interval, not
// the limit, is what a fast host notices.
const ACTIONS: Record<UpdateAction, { path: string; intervalMs: number; tries: number }> = {
  refresh: { path: '/actions/refresh-updates', intervalMs: 100, tries: 600 },
  prepare: { path: '/actions/prepare-update', intervalMs: 500, tries: 1200 },
  activate: { path: '/actions/activate-update', intervalMs: 100, tries: 600 },
  deactivate: { path: '/actions/deactivate-update', intervalMs: 100, tries: 600 },
};

const MAX_OTHER_FAILURES = 5;

export async function readStatus(socketPath: string): Promise<Status> {
  return JSON.parse(await apiCall(socketPath, 'GET', '/updates/status')) as Status;
}

/** Runs one update action to completion and returns the status it left (as JSON text). */
export async function runUpdateAction(socketPath: string, action: UpdateAction): Promise<string> {
  const { path, intervalMs, tries } = ACTIONS[action];
  const before = await apiRequest(socketPath, 'GET', '/updates/status');
  const previous = before.status === 200 ? (JSON.parse(before.body) as Status).most_recent_command?.timestamp : undefined;
  await apiCall(socketPath, 'POST', path);
  let failures = 0;
  for (let attempt = 0; attempt < tries; attempt += 1) {
    await sleep(intervalMs);
    const response = await apiRequest(socketPath, 'GET', '/updates/status');
    if (response.status === 423) continue;
    if (response.status !== 200) {
      failures += 1;
      if (failures > MAX_OTHER_FAILURES) throw new ApiStatusError('GET', '/updates/status', response);
      continue;
    }
    const status = JSON.parse(response.body) as Status;
    const command = status.most_recent_command;
    if (!command || command.cmd_type !== action || command.timestamp === previous) continue;
    if (command.cmd_status !== 'Success') {
      throw new Error(
        `${action} attempt failed with status '${command.cmd_status}' (${command.exit_status}): ${command.stderr}`,
      );
    }
    return response.body;
  }
  throw new Error(`Timed out waiting for the ${action} action to finish`);
}
