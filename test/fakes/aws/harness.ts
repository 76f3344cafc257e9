// Runs a test body against a fresh fake endpoint, with the SDK pointed at it through the environment;
// reads back how the fake refused a call.
import { AwsClients } from '../../../src/lib/aws/clients.ts';
import { startFakeAws, type FakeAws } from './server.ts';
import type { FakeOptions } from './state.ts';

export async function withFakeAws<T>(options: Partial<FakeOptions>, body: (fake: FakeAws, clients: AwsClients) => Promise<T>): Promise<T> {
  const fake = await startFakeAws(options);
  const saved = { ...process.env };
  Object.assign(process.env, fake.env);
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE']) delete process.env[name];
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_ENDPOINT_URL_')) delete process.env[name];
  const clients = new AwsClients({ maxSockets: 16 });
  try {
    return await body(fake, clients);
  } finally {
    clients.destroy();
    process.env = saved;
    await fake.close();
  }
}

/** The error an SDK call failed with: its code, HTTP status and message (a call that succeeds is a test failure). */
export async function refusal(call: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await call;
  } catch (error) {
    const { name, message, $metadata } = error as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name, status: $metadata?.httpStatusCode, message };
  }
  throw new Error('the request was accepted');
}
