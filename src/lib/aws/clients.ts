// One lazily created, cached AWS SDK client per service and region. Credentials, the default region and
// endpoints come from the SDK's own chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL[_<SERVICE>], ~/.aws/config).
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { BrlError, ExitCode } from '../core/errors.ts';

export interface AwsClientOptions {
  /** Socket pool size per client; EBS uploads need one socket per worker. */
  maxSockets?: number;
  /** Per-request timeout, so a stuck connection fails instead of hanging (bottlerocket#2667). */
  requestTimeoutMs?: number;
}

type ClientConstructor<C> = new (config: Record<string, unknown>) => C;

export class AwsClients {
  private readonly cache = new Map<string, unknown>();
  private readonly maxSockets: number;
  private readonly requestTimeoutMs: number;

  constructor(options: AwsClientOptions = {}) {
    this.maxSockets = options.maxSockets ?? 64;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
  }

  ec2(region: string): EC2Client {
    return this.client('ec2', region, EC2Client as ClientConstructor<EC2Client>);
  }

  ebs(region: string): EBSClient {
    return this.client('ebs', region, EBSClient as ClientConstructor<EBSClient>);
  }

  ssm(region: string): SSMClient {
    // PutParameter allows only a few calls per second per account; ride out throttling with more attempts.
    return this.client('ssm', region, SSMClient as ClientConstructor<SSMClient>, { maxAttempts: 10 });
  }

  sts(region: string): STSClient {
    return this.client('sts', region, STSClient as ClientConstructor<STSClient>);
  }

  /** Closes every socket pool, so a CLI run exits promptly. */
  destroy(): void {
    for (const client of this.cache.values()) (client as { destroy(): void }).destroy();
    this.cache.clear();
  }

  private client<C>(service: string, region: string, Client: ClientConstructor<C>, extra: Record<string, unknown> = {}): C {
    const key = `${service}\0${region}`;
    let client = this.cache.get(key) as C | undefined;
    if (!client) {
      const agentOptions = { keepAlive: true, maxSockets: this.maxSockets };
      client = new Client({
        region,
        requestHandler: {
          requestTimeout: this.requestTimeoutMs,
          connectionTimeout: 10_000,
          httpAgent: new HttpAgent(agentOptions),
          httpsAgent: new HttpsAgent(agentOptions),
        },
        ...extra,
      });
      this.cache.set(key, client);
    }
    return client;
  }
}

/** The region the SDK would pick on its own (AWS_REGION, the profile's `region`), or a usage error. */
export async function defaultRegion(): Promise<string> {
  const client = new STSClient({});
  try {
    return await client.config.region();
  } catch {
    throw new BrlError('no AWS region configured', {
      hint: 'pass --regions, set [aws] regions in Infra.toml, or set AWS_REGION',
      exitCode: ExitCode.usage,
      code: 'NO_AWS_REGION',
    });
  } finally {
    client.destroy();
  }
}
