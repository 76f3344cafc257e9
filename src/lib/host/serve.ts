// Keeps a started apiserver running until SIGINT/SIGTERM, then closes it (waits for running applies).
import type { ApiServer } from './apiserver/server.ts';

export async function serveUntilSignal(server: ApiServer): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
}
