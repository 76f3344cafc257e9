// SSM parameter templates (pubsys policies/ssm): `[[parameter]]` name/value pairs with `{variable}` placeholders.
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadToml, readString, readStringArray, readTableArray, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';
import { ec2Architecture } from './register.ts';

export interface ParameterTemplate {
  name: string;
  value: string;
  /** The entry applies only to these variants / architectures, when given. */
  variants: string[] | undefined;
  arches: string[] | undefined;
  /** Where it came from, for error messages. */
  source: string;
}

export const templateVariables = ['variant', 'arch', 'image_id', 'image_name', 'image_version', 'region'] as const;
export type TemplateVariable = (typeof templateVariables)[number];
export type TemplateContext = Partial<Record<TemplateVariable, string>>;

/** pubsys' defaults.toml. */
export const defaultTemplates: ParameterTemplate[] = [
  { name: '{variant}/{arch}/{image_version}/image_id', value: '{image_id}', variants: undefined, arches: undefined, source: 'built-in defaults' },
  { name: '{variant}/{arch}/{image_version}/image_version', value: '{image_version}', variants: undefined, arches: undefined, source: 'built-in defaults' },
];

export async function loadTemplates(path: string | undefined): Promise<ParameterTemplate[]> {
  if (path === undefined) return defaultTemplates;
  const doc = await loadToml(path);
  rejectUnknownKeys(doc, doc.data, ['parameter']);
  const entries = readTableArray(doc, doc.data, 'parameter') ?? [];
  if (entries.length === 0) throw tomlKeyError(doc, 'parameter', 'no [[parameter]] entries');
  return entries.map((entry, index) => {
    const prefix = `parameter[${index}].`;
    rejectUnknownKeys(doc, entry, ['name', 'value', 'variant', 'arch'], prefix);
    const name = requiredString(doc, entry, 'name', prefix);
    const value = requiredString(doc, entry, 'value', prefix);
    for (const [key, text] of [['name', name], ['value', value]] as const) {
      for (const variable of placeholders(text)) {
        if (!(templateVariables as readonly string[]).includes(variable)) {
          throw tomlKeyError(doc, `${prefix}${key}`, `unknown variable {${variable}} (known: ${templateVariables.map((v) => `{${v}}`).join(' ')})`);
        }
      }
    }
    return { name, value, variants: readStringArray(doc, entry, 'variant', prefix), arches: readStringArray(doc, entry, 'arch', prefix), source: `${path} ${prefix.slice(0, -1)}` };
  });
}

function requiredString(doc: TomlDocument, table: Record<string, unknown>, key: string, prefix: string): string {
  const value = readString(doc, table, key, prefix);
  if (value === undefined || value === '') throw tomlKeyError(doc, `${prefix}${key}`, 'is required');
  return value;
}

function placeholders(text: string): string[] {
  return [...text.matchAll(/\{([^{}]*)\}/g)].map((match) => match[1] as string);
}

/** Templates whose filters accept this variant and architecture (either arch spelling). */
export function applicableTemplates(templates: ParameterTemplate[], variant: string, arch: string): ParameterTemplate[] {
  const archNames = new Set([arch, ec2Architecture(arch), ec2Architecture(arch) === 'arm64' ? 'aarch64' : 'x86_64']);
  return templates.filter((t) => (t.variants === undefined || t.variants.includes(variant)) && (t.arches === undefined || t.arches.some((a) => archNames.has(a))));
}

export function render(text: string, context: TemplateContext, where: string): string {
  return text.replace(/\{([^{}]*)\}/g, (_, variable: string) => {
    const value = context[variable as TemplateVariable];
    if (value === undefined) {
      throw new BrlError(`${where}: {${variable}} has no value here`, {
        hint: 'parameter names used by promote may only use {variant}, {arch}, {image_version} and {region}',
        exitCode: ExitCode.badInput,
        code: 'BAD_SSM_TEMPLATE',
      });
    }
    return value;
  });
}

/** `prefix` + `/` + `name`, joined by exactly one slash, always absolute (SSM requires the leading slash for paths). */
export function joinParameterName(prefix: string, name: string): string {
  const joined = `${prefix.replace(/\/+$/, '')}/${name.replace(/^\/+/, '')}`;
  return joined.startsWith('/') ? joined : `/${joined}`;
}

export function requirePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix.trim() === '') {
    throw new BrlError('no SSM parameter prefix configured', {
      hint: 'pass --ssm-prefix, or set [aws] ssm_prefix in Infra.toml',
      exitCode: ExitCode.usage,
      code: 'NO_SSM_PREFIX',
    });
  }
  return prefix;
}
