// One lazily created, cached AWS SDK client per service and region: the one place for endpoint, region, retries,
// timeouts and credentials. Credentials, the default region and endpoints come from the SDK's own chain
// (AWS_PROFILE or a named profile, AWS_REGION, AWS_ENDPOINT_URL[_<SERVICE>], ~/.aws/config).
import { createRequire } from 'node:module';
import type { EBSClient } from '@aws-sdk/client-ebs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import { BrlError, ExitCode } from '../core/errors.ts';

// Each SDK package (and node:http, ~70 ms) loads on first use of its service (EC2 alone takes over a second), so
// signing with a KMS key does not load EC2 and signing with a file key loads none of it.
const load = createRequire(import.meta.url);

export interface AwsClientOptions {
  /** Socket pool size per client; EBS uploads need one socket per worker. */
  maxSockets?: number;
  /** Per-request timeout, so a stuck connection fails instead of hanging (bottlerocket#2667). */
  requestTimeoutMs?: number;
  /** A named profile from ~/.aws/config instead of AWS_PROFILE (tuftool's `aws-kms://<profile>/…`). */
  profile?: string;
}

type ClientConstructor<C> = new (config: Record<string, unknown>) => C;

export class AwsClients {
  private readonly cache = new Map<string, unknown>();
  private readonly maxSockets: number;
  private readonly requestTimeoutMs: number;
  private readonly profile: string | undefined;

  constructor(options: AwsClientOptions = {}) {
    this.maxSockets = options.maxSockets ?? 64;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
    this.profile = options.profile;
  }

  ec2(region: string): EC2Client {
    return this.client('ec2', region, () => (load('@aws-sdk/client-ec2') as typeof import('@aws-sdk/client-ec2')).EC2Client);
  }

  ebs(region: string): EBSClient {
    return this.client('ebs', region, () => (load('@aws-sdk/client-ebs') as typeof import('@aws-sdk/client-ebs')).EBSClient);
  }

  /** Without a region, the SDK's default region. */
  ssm(region?: string): SSMClient {
    // PutParameter allows only a few calls per second per account; ride out throttling with more attempts.
    return this.client('ssm', region, () => (load('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm')).SSMClient, { maxAttempts: 10 });
  }

  sts(region?: string): STSClient {
    return this.client('sts', region, () => (load('@aws-sdk/client-sts') as typeof import('@aws-sdk/client-sts')).STSClient);
  }

  /** Without a region, the SDK's default region. */
  kms(region?: string): KMSClient {
    return this.client('kms', region, () => (load('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms')).KMSClient);
  }

  /** Closes every socket pool, so a CLI run exits promptly. */
  destroy(): void {
    for (const client of this.cache.values()) (client as { destroy(): void }).destroy();
    this.cache.clear();
  }

  private client<C>(service: string, region: string | undefined, constructor: () => unknown, extra: Record<string, unknown> = {}): C {
    const key = `${service}\0${region ?? ''}`;
    let client = this.cache.get(key) as C | undefined;
    if (!client) {
      const agentOptions = { keepAlive: true, maxSockets: this.maxSockets };
      const { Agent: HttpAgent } = process.getBuiltinModule('node:http');
      const { Agent: HttpsAgent } = process.getBuiltinModule('node:https');
      const Client = constructor() as ClientConstructor<C>;
      client = new Client({
        ...(region === undefined ? {} : { region }),
        ...(this.profile === undefined ? {} : { profile: this.profile }),
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
  const clients = new AwsClients();
  try {
    return await clients.sts().config.region();
  } catch {
    throw new BrlError('no AWS region configured', {
      hint: 'pass --regions, set [aws] regions in Infra.toml, or set AWS_REGION',
      exitCode: ExitCode.usage,
      code: 'NO_AWS_REGION',
    });
  } finally {
    clients.destroy();
  }
}
