// Config templates: a TOML front matter naming the settings and helpers they use, `+++`, a Handlebars body.
import Handlebars from 'handlebars';
import { parse } from 'smol-toml';
import { isJsonObject, type JsonObject } from '../datastore/tree.ts';
import { SETTINGS_GROUPS } from '../settings/groups.ts';
import { HELPER_EXTENSIONS } from './helpers.ts';

/** An unset table group renders as `{}`, so `{{#each settings.kernel.sysctl}}` works before anything is set. */
function isTableGroup(name: string): boolean {
  const kind = SETTINGS_GROUPS[name]?.kind;
  return kind === 'struct' || kind === 'map';
}

export interface ExtensionRequirement {
  version: string;
  /** Only these helpers of the extension; all of them when absent. */
  helpers?: string[];
  optional: boolean;
}

export interface ParsedTemplate {
  extensions: Map<string, ExtensionRequirement>;
  body: string;
}

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

const SEPARATOR = /^\+{3,}\s*$/;

export function parseTemplate(text: string, source: string): ParsedTemplate {
  const lines = text.split('\n');
  const separator = lines.findIndex((line) => SEPARATOR.test(line));
  if (separator < 0) throw new TemplateError(`${source}: no front matter separator (a line of at least three '+')`);
  let front: Record<string, unknown>;
  try {
    front = parse(lines.slice(0, separator).join('\n')) as Record<string, unknown>;
  } catch (error) {
    throw new TemplateError(`${source}: front matter is not TOML: ${(error as Error).message.split('\n')[0]}`);
  }
  for (const field of Object.keys(front)) {
    if (field !== 'required-extensions') throw new TemplateError(`${source}: unknown front matter field '${field}'`);
  }
  const extensions = new Map<string, ExtensionRequirement>();
  const required = front['required-extensions'] ?? {};
  if (!isJsonObject(required)) throw new TemplateError(`${source}: 'required-extensions' must be a table`);
  for (const [name, spec] of Object.entries(required)) {
    extensions.set(name, parseRequirement(spec, `${source}: required-extensions.${name}`));
  }
  return { extensions, body: lines.slice(separator + 1).join('\n') };
}

function parseRequirement(spec: unknown, where: string): ExtensionRequirement {
  if (typeof spec === 'string') return { version: spec, optional: false };
  if (!isJsonObject(spec)) throw new TemplateError(`${where} must be a version string or a table`);
  for (const field of Object.keys(spec)) {
    if (!['version', 'helpers', 'optional'].includes(field)) throw new TemplateError(`${where}: unknown field '${field}'`);
  }
  if (typeof spec.version !== 'string') throw new TemplateError(`${where}: 'version' must be a string`);
  const helpers = spec.helpers;
  if (helpers !== undefined && (!Array.isArray(helpers) || helpers.some((helper) => typeof helper !== 'string'))) {
    throw new TemplateError(`${where}: 'helpers' must be a list of helper names`);
  }
  if (spec.optional !== undefined && typeof spec.optional !== 'boolean') {
    throw new TemplateError(`${where}: 'optional' must be true or false`);
  }
  return {
    version: spec.version,
    ...(helpers === undefined ? {} : { helpers: helpers as string[] }),
    optional: spec.optional === true,
  };
}

/**
 * Renders in strict mode (a missing value is an error; `{{#if}}` tests tolerate absence) with
 * the context `{settings: <required sections>, os}`.
 */
export function renderTemplate(
  template: ParsedTemplate,
  settings: JsonObject,
  os: JsonObject,
  source: string,
): string {
  const handlebars = Handlebars.create();
  const registered = new Map<string, string>();
  const context: JsonObject = {};
  for (const [name, requirement] of template.extensions) {
    if (name in settings) context[name] = settings[name];
    else if (isTableGroup(name)) context[name] = {};
    const available = HELPER_EXTENSIONS[name];
    if (!available) continue;
    const wanted = requirement.helpers ?? Object.keys(available);
    for (const helper of wanted) {
      const implementation = available[helper];
      if (!implementation) throw new TemplateError(`${source}: extension '${name}' has no helper '${helper}'`);
      const owner = registered.get(helper);
      if (owner !== undefined) {
        throw new TemplateError(`${source}: helper '${helper}' is requested from both '${owner}' and '${name}'`);
      }
      registered.set(helper, name);
      handlebars.registerHelper(helper, implementation);
    }
  }
  try {
    return handlebars.compile(template.body, { strict: true, noEscape: false })({ settings: context, os });
  } catch (error) {
    throw new TemplateError(`${source}: ${(error as Error).message.split('\n')[0]}`);
  }
}
