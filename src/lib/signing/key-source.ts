// Key sources as tuftool and pubsys name them: a path, file://…, aws-kms://[profile]/id, aws-ssm://[profile]/param.
import { fileURLToPath } from 'node:url';
import { AwsClients } from '../aws/clients.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadKeyFile, parsePrivateKeyPem } from './key-file.ts';
import { PrivateKeySigner } from './pem-signer.ts';
import type { Signer } from './signer.ts';

export type KeySource =
  | { kind: 'file'; path: string }
  | { kind: 'kms'; keyId: string; region?: string; profile?: string }
  | { kind: 'ssm'; parameter: string; region?: string; profile?: string };

export function parseKeySource(text: string): KeySource {
  if (text.startsWith('file://')) return { kind: 'file', path: fileURLToPath(text) };
  const match = /^aws-(kms|ssm):\/\/([^/]*)\/(.+)$/.exec(text);
  if (match) {
    const [, kind, profile, rest] = match;
    const shared = profile ? { profile } : {};
    return kind === 'kms' ? { kind: 'kms', keyId: rest!, ...shared } : { kind: 'ssm', parameter: `/${rest!.replace(/^\/+/, '')}`, ...shared };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new BrlError(`key source ${text} has an unknown scheme`, {
      hint: 'use a file path, file:///path, aws-kms:///KEY-ID or aws-ssm:///PARAMETER',
      exitCode: ExitCode.usage,
      code: 'BAD_KEY_SOURCE',
    });
  }
  return { kind: 'file', path: text };
}

export function keySourceUrl(source: KeySource): string {
  if (source.kind === 'file') return `file://${source.path}`;
  if (source.kind === 'kms') return `aws-kms://${source.profile ?? ''}/${source.keyId}`;
  return `aws-ssm://${source.profile ?? ''}${source.parameter}`;
}

export async function openSigner(source: KeySource): Promise<Signer> {
  switch (source.kind) {
    case 'file':
      return loadKeyFile(source.path);
    case 'kms': {
      // The AWS SDK loads only for KMS and SSM keys: file keys keep `brl repo` quick to start.
      const { KmsSigner } = await import('./kms-signer.ts');
      return KmsSigner.create(source.keyId, awsClientConfig(source));
    }
    case 'ssm':
      return ssmSigner(source.parameter, awsClientConfig(source));
  }
}

interface AwsClientConfig {
  region?: string;
  profile?: string;
}

function awsClientConfig(source: { region?: string; profile?: string }): AwsClientConfig {
  return { ...(source.region ? { region: source.region } : {}), ...(source.profile ? { profile: source.profile } : {}) };
}

/** A PEM private key stored as an SSM SecureString; it stays in memory only. */
async function ssmSigner(parameter: string, config: AwsClientConfig): Promise<Signer> {
  const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const clients = new AwsClients(config.profile === undefined ? {} : { profile: config.profile });
  const client = clients.ssm(config.region);
  let value: string | undefined;
  try {
    value = (await client.send(new GetParameterCommand({ Name: parameter, WithDecryption: true }))).Parameter?.Value;
  } catch (error) {
    throw new BrlError(`cannot read SSM parameter ${parameter}: ${(error as Error).message}`, {
      hint: 'check the parameter name, its region and your permissions (ssm:GetParameter, kms:Decrypt)',
      exitCode: ExitCode.failure,
      code: 'SSM_ERROR',
      cause: error,
    });
  } finally {
    clients.destroy();
  }
  if (!value) throw new BrlError(`SSM parameter ${parameter} is empty`, { exitCode: ExitCode.badInput, code: 'SSM_ERROR' });
  return new PrivateKeySigner(parsePrivateKeyPem(value, `aws-ssm://${parameter}`), `aws-ssm:///${parameter.replace(/^\//, '')}`);
}
