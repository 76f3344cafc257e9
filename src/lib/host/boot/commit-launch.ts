// settings-committer, shared by the sundog and settings-applier steps and by bootHost(). Kept apart
// from boot.ts so a step process does not load the API server to make one request.
import { apiRequest, ApiStatusError } from '../apiclient/request.ts';

/** The transaction storewolf writes the image's default settings into. */
export const LAUNCH_TX = 'bottlerocket-launch';

/** Commits the launch transaction; nothing pending (422) is success. */
export async function commitLaunch(socket: string): Promise<string[]> {
  const uri = `/tx/commit?tx=${LAUNCH_TX}`;
  const response = await apiRequest(socket, 'POST', uri);
  if (response.status === 422) return [];
  if (response.status !== 200) throw new ApiStatusError('POST', uri, response);
  return JSON.parse(response.body) as string[];
}
