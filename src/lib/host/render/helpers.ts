// Template helpers by extension (`std`, `network`, `kubernetes`, `aws`), as templates request them.
import { isIP } from 'node:net';
import type { HelperDelegate, HelperOptions } from 'handlebars';
import { isJsonObject } from '../datastore/tree.ts';

function isBlock(options: unknown): options is HelperOptions {
  return typeof options === 'object' && options !== null && typeof (options as HelperOptions).fn === 'function';
}

/** A predicate usable both as `{{#is_array x}}…{{/is_array}}` and as `(is_array x)`. */
function predicate(test: (value: unknown) => boolean): HelperDelegate {
  return function (this: unknown, value: unknown, options: unknown) {
    const result = test(value);
    if (isBlock(options)) return result ? options.fn(this) : options.inverse(this);
    return result;
  };
}

function fail(helper: string, message: string): never {
  throw new Error(`helper '${helper}': ${message}`);
}

const std: Record<string, HelperDelegate> = {
  default(fallback: unknown, value: unknown) {
    return value === undefined || value === null ? fallback : value;
  },
  base64_decode(value: unknown) {
    if (typeof value !== 'string') fail('base64_decode', 'expects a string');
    return Buffer.from(value, 'base64').toString('utf8');
  },
  join_array(delimiter: unknown, list: unknown) {
    if (list === undefined || list === null) return '';
    if (!Array.isArray(list)) fail('join_array', 'expects a list');
    return list.map((item) => (typeof item === 'string' ? `"${item}"` : String(item))).join(String(delimiter));
  },
  join_map(pairSeparator: unknown, itemSeparator: unknown, missing: unknown, map: unknown) {
    if (map === undefined || map === null) {
      if (missing === 'fail-if-missing') fail('join_map', 'map is missing');
      return '';
    }
    if (!isJsonObject(map)) fail('join_map', 'expects a map');
    return Object.entries(map)
      .map(([key, value]) => `${key}${String(pairSeparator)}${String(value)}`)
      .join(String(itemSeparator));
  },
  toml_encode(value: unknown) {
    return JSON.stringify(value);
  },
  if_not_null(this: unknown, value: unknown, options: HelperOptions) {
    return value === undefined || value === null ? options.inverse(this) : options.fn(this);
  },
  any_enabled(this: unknown, map: unknown, options: HelperOptions) {
    const values = isJsonObject(map) ? Object.values(map) : Array.isArray(map) ? map : [];
    const any = values.some((item) => isJsonObject(item) && item.enabled === true);
    return any ? options.fn(this) : options.inverse(this);
  },
  goarch(arch: unknown) {
    if (arch === 'x86_64' || arch === 'amd64') return 'amd64';
    if (arch === 'aarch64' || arch === 'arm64') return 'arm64';
    return fail('goarch', `unknown architecture '${String(arch)}'`);
  },
  negate_or_else(fallback: unknown, value: unknown) {
    return typeof value === 'boolean' ? !value : fallback;
  },
  is_null: predicate((value) => value === null || value === undefined),
  is_bool: predicate((value) => typeof value === 'boolean'),
  is_number: predicate((value) => typeof value === 'number'),
  is_string: predicate((value) => typeof value === 'string'),
  is_array: predicate((value) => Array.isArray(value)),
  is_object: predicate((value) => isJsonObject(value)),
  is_ipv4: predicate((value) => typeof value === 'string' && isIP(value) === 4),
  is_ipv6: predicate((value) => typeof value === 'string' && isIP(value) === 6),
  cidr_to_ipaddr(cidr: unknown) {
    if (typeof cidr !== 'string') fail('cidr_to_ipaddr', 'expects a CIDR string');
    return cidr.split('/')[0];
  },
  replace_ipv4_octet(ip: unknown, index: unknown, value: unknown) {
    if (typeof ip !== 'string' || isIP(ip) !== 4) fail('replace_ipv4_octet', 'expects an IPv4 address');
    const octets = ip.split('.');
    const position = Number(index);
    if (!Number.isInteger(position) || position < 0 || position > 3) fail('replace_ipv4_octet', 'octet index must be 0-3');
    octets[position] = String(value);
    return octets.join('.');
  },
};

const network: Record<string, HelperDelegate> = {
  host(url: unknown) {
    if (typeof url !== 'string') return '';
    const parsed = URL.canParse(url) ? new URL(url) : new URL(`http://${url}`);
    return parsed.hostname;
  },
};

const kubernetes: Record<string, HelperDelegate> = {
  join_node_taints(taints: unknown) {
    if (!isJsonObject(taints)) return '';
    return Object.entries(taints)
      .flatMap(([key, values]) => (Array.isArray(values) ? values.map((value) => `${key}=${String(value)}`) : []))
      .join(',');
  },
};

const aws: Record<string, HelperDelegate> = {
  'ecr-prefix'(region: unknown) {
    const name = typeof region === 'string' && region.length > 0 ? region : 'us-east-1';
    const partition = name.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    return `328549459982.dkr.ecr.${name}.${partition}`;
  },
};

export const HELPER_EXTENSIONS: Readonly<Record<string, Record<string, HelperDelegate>>> = { std, network, kubernetes, aws };
