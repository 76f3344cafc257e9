// The settings groups a variant can include, with their types (upstream's settings-extension models).
import type { Schema } from './schema.ts';

const u16: Schema = { kind: 'integer', min: 0, max: 65_535, typeName: 'u16' };
const u32: Schema = { kind: 'integer', min: 0, max: 4_294_967_295, typeName: 'u32' };
const bool: Schema = { kind: 'bool' };
const url: Schema = { kind: 'url' };
const singleLine: Schema = { kind: 'string', singleLine: true };
const anyString: Schema = { kind: 'string' };

const k8sLabelKey = /^(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const k8sLabelValue: Schema = {
  kind: 'string',
  pattern: /^$|^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
  patternText: 'a Kubernetes label value',
};
// A registry as image references name it (host[:port]), or `*` for every registry.
const registryName: Schema = {
  kind: 'string',
  pattern: /^\*$|^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/,
  patternText: "a registry host[:port] or '*'",
};
// A mirror endpoint: http:// or https:// (the default when no scheme is written), a host, an optional port and path.
const mirrorEndpoint: Schema = {
  kind: 'string',
  pattern: /^(?:https?:\/\/)?(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::\d{1,5})?(?:\/[^\s"\\]*)?$/,
  patternText: 'an http:// or https:// URL of a registry (host[:port][/path]; https when no scheme is given)',
};
const quantity: Schema = { kind: 'string', pattern: /^[0-9]+(?:\.[0-9]+)?(?:[EPTGMk]i?|m|%)?$/, patternText: 'a quantity' };

export const SETTINGS_GROUPS: Readonly<Record<string, Schema>> = {
  motd: anyString,
  updates: {
    kind: 'struct',
    fields: {
      'metadata-base-url': url,
      'targets-base-url': url,
      seed: u32,
      'version-lock': { kind: 'version-lock' },
      'ignore-waves': bool,
    },
  },
  network: {
    kind: 'struct',
    fields: {
      hostname: { kind: 'hostname' },
      hosts: { kind: 'list', items: { kind: 'tuple', items: [{ kind: 'ip' }, { kind: 'list', items: { kind: 'hostname' } }] } },
      'https-proxy': url,
      'no-proxy': { kind: 'list', items: singleLine },
    },
  },
  ntp: {
    kind: 'struct',
    fields: {
      'time-servers': { kind: 'list', items: url },
      options: { kind: 'list', items: singleLine },
    },
  },
  kernel: {
    kind: 'struct',
    fields: {
      sysctl: {
        kind: 'map',
        keyPattern: /^[a-zA-Z0-9_.\-/]{1,128}$/,
        keyDescribe: 'a sysctl name',
        values: singleLine,
      },
      lockdown: { kind: 'enum', values: ['none', 'integrity', 'confidentiality'] },
      modules: {
        kind: 'map',
        keyPattern: /^[a-zA-Z0-9_-]{1,64}$/,
        keyDescribe: 'a kernel module name',
        values: { kind: 'struct', fields: { allowed: bool, autoload: bool } },
      },
    },
  },
  'host-containers': {
    kind: 'map',
    keyPattern: /^[a-zA-Z0-9-]{1,76}$/,
    keyDescribe: 'a host container name (ASCII letters, digits and -, at most 76 characters)',
    values: {
      kind: 'struct',
      fields: { source: url, enabled: bool, superpowered: bool, 'user-data': { kind: 'base64' } },
    },
  },
  'container-registry': {
    kind: 'struct',
    fields: {
      mirrors: {
        kind: 'list',
        items: { kind: 'struct', fields: { registry: registryName, endpoint: { kind: 'list', items: mirrorEndpoint } }, required: ['registry', 'endpoint'] },
      },
      credentials: {
        kind: 'list',
        items: {
          kind: 'struct',
          fields: { registry: registryName, username: singleLine, password: singleLine, auth: { kind: 'base64' }, identitytoken: singleLine },
          required: ['registry'],
        },
      },
    },
  },
  kubernetes: {
    kind: 'struct',
    fields: {
      'cluster-name': {
        kind: 'string',
        pattern: /^$|^[A-Za-z0-9](([A-Za-z0-9._-]{0,61})?[A-Za-z0-9])?$/,
        patternText: 'a cluster name (letters, digits, . _ -, at most 63 characters)',
      },
      'api-server': url,
      'cluster-certificate': { kind: 'base64' },
      'cluster-dns-ip': {
        kind: 'one-of',
        options: [{ kind: 'ip' }, { kind: 'list', items: { kind: 'ip' } }],
        describe: 'an IP address or a list of them',
      },
      'cluster-domain': { kind: 'hostname' },
      'node-labels': { kind: 'map', keyPattern: k8sLabelKey, keyDescribe: 'a Kubernetes label key', values: k8sLabelValue },
      'node-taints': {
        kind: 'map',
        keyPattern: k8sLabelKey,
        keyDescribe: 'a Kubernetes taint key',
        values: {
          kind: 'list',
          items: {
            kind: 'string',
            pattern: /^[A-Za-z0-9._-]{0,63}:(NoSchedule|PreferNoSchedule|NoExecute)$/,
            patternText: "'<value>:<NoSchedule|PreferNoSchedule|NoExecute>'",
          },
        },
      },
      'max-pods': u32,
      'standalone-mode': bool,
      'authentication-mode': { kind: 'enum', values: ['aws', 'tls'] },
      'bootstrap-token': {
        kind: 'string',
        pattern: /^[a-z0-9]{6}\.[a-z0-9]{16}$/,
        patternText: 'a bootstrap token (<6 chars>.<16 chars>)',
      },
      'pod-infra-container-image': singleLine,
      'kube-api-qps': u32,
      'kube-api-burst': u32,
      'eviction-hard': { kind: 'map', keyPattern: /^[a-z.]+$/, keyDescribe: 'an eviction signal', values: quantity },
      'kube-reserved': { kind: 'map', keyPattern: /^[a-z-]+$/, keyDescribe: 'a resource name', values: quantity },
      'system-reserved': { kind: 'map', keyPattern: /^[a-z-]+$/, keyDescribe: 'a resource name', values: quantity },
      'cpu-manager-policy': { kind: 'enum', values: ['none', 'static'] },
      'server-tls-bootstrap': bool,
      'log-level': { kind: 'integer', min: 0, max: 10, typeName: 'a log level' },
      'static-pods-port': u16,
    },
  },
  aws: {
    kind: 'struct',
    fields: {
      region: { kind: 'string', pattern: /^[a-z]{2}(-[a-z]+)+-\d+$/, patternText: 'an AWS region name' },
      profile: singleLine,
      config: { kind: 'base64' },
      credentials: { kind: 'base64' },
    },
  },
};

export const ALL_GROUPS = Object.keys(SETTINGS_GROUPS);
