// Bottlerocket's API route table: paths, methods, inputs, status codes and body shapes.
import { KeyError, keyName, parseKey } from '../datastore/key.ts';
import { pendingKeyNames } from '../datastore/pending.ts';
import { NothingToCommitError, type Datastore } from '../datastore/store.ts';
import { flatten, isJsonObject, type JsonObject } from '../datastore/tree.ts';
import type { OsInfo } from '../os-release.ts';
import { PathEscapeError } from '../paths.ts';
import { planApply } from '../render/apply.ts';
import type { ApplyRunner } from '../render/runner.ts';
import { KeypairError, keypairsToSettings, type SettingsModel } from '../settings/model.ts';
import { SettingsValidationError } from '../settings/schema.ts';
import { runHostCommand } from '../commands.ts';
import {
  HttpError,
  listInput,
  NO_CONTENT,
  ok,
  optionalInput,
  parseJsonBody,
  requiredInput,
  type Query,
  type Reply,
} from './http.ts';
import type { UpdateCommand, UpdateController } from './updates.ts';

export interface RouteContext {
  store: Datastore;
  model: SettingsModel;
  applier: ApplyRunner;
  updates: UpdateController;
  root: string;
  os: () => Promise<OsInfo>;
  rebootCommand: readonly string[];
  /** brl's `/actions/rollback-to-inactive`: `signpost rollback-to-inactive` on the booted disk. */
  rollbackCommand: readonly string[];
}

export interface RouteRequest {
  query: Query;
  body: () => Promise<Buffer>;
}

type Handler = (context: RouteContext, request: RouteRequest) => Reply | Promise<Reply>;

export interface Route {
  handler: Handler;
  /** Answers depend only on committed data, so they can be cached per datastore generation. */
  cacheable?: boolean;
}

export type Method = 'GET' | 'PATCH' | 'POST' | 'DELETE';

const DEFAULT_TX = 'default';

function tx(query: Query): string {
  return optionalInput(query, 'tx') ?? DEFAULT_TX;
}

/** Raw string prefix filter over a section's flat key names, as upstream compares them. */
function filteredSection(store: Datastore, section: string, prefix: string): JsonObject {
  return filteredFrom(store.liveByPrefix(prefix).filter((entry) => entry.segments[0] === section));
}

function osFiltered(os: OsInfo, prefix: string): JsonObject {
  const found: JsonObject = {};
  for (const [field, value] of Object.entries(os)) if (`os.${field}`.startsWith(prefix)) found[field] = value;
  return found;
}

function parseKeyOr400(name: string): string[] {
  try {
    return parseKey(name);
  } catch (error) {
    if (error instanceof KeyError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** Checks a PATCH fragment against the model and turns it into pending entries. */
function settingsEntries(context: RouteContext, fragment: unknown, wrapMismatch: boolean) {
  if (!isJsonObject(fragment)) throw new HttpError(400, 'Settings must be a JSON object');
  try {
    context.model.checkPatch(fragment);
    return flatten(fragment, ['settings']);
  } catch (error) {
    if (error instanceof SettingsValidationError && wrapMismatch) {
      throw new HttpError(
        400,
        `Unable to match your input to the data model.  We may not have enough type information.  Please try the --json input form.  Cause: ${error.message}`,
      );
    }
    if (error instanceof SettingsValidationError || error instanceof KeyError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** Preflight of an apply: a file whose paths leave the root is the caller's error, found before any commit. */
function checkApplyPlan(context: RouteContext, keys: readonly string[] | 'all'): void {
  try {
    planApply(context.store, context.root, keys);
  } catch (error) {
    if (error instanceof PathEscapeError) throw new HttpError(400, error.message);
    throw error;
  }
}

function commit(context: RouteContext, name: string): Promise<string[]> {
  return context.store.commit(name).catch((error: unknown) => {
    if (error instanceof NothingToCommitError) throw new HttpError(422, error.message);
    if (error instanceof SettingsValidationError) throw new HttpError(400, error.message);
    throw error;
  });
}

function namedSection(store: Datastore, section: 'services' | 'configuration-files', query: Query): JsonObject {
  const names = optionalInput(query, 'names');
  const all = store.document([section]);
  if (names !== undefined) {
    const found: JsonObject = {};
    for (const name of listInput(names)) {
      if (!(name in all)) throw new HttpError(404, `Found no '${section}.${name}' in datastore`);
      found[name] = all[name];
    }
    return found;
  }
  const prefix = optionalInput(query, 'prefix');
  if (prefix === undefined) return all;
  return filteredSection(store, section, prefix.startsWith(`${section}.`) ? prefix : `${section}.${prefix}`);
}

/** A route that runs a host program; its failure is a 500 in upstream's words. */
function hostCommandAction(command: (context: RouteContext) => readonly string[], failure: string): Route {
  return {
    handler: async (context) => {
      const outcome = await runHostCommand(command(context), { root: context.root });
      if (outcome.status !== 'ok') {
        const code = outcome.exitCode ?? outcome.signal ?? 'none';
        throw new HttpError(500, `${failure}, exit code: ${code}, stderr: ${outcome.stderr || outcome.note || ''}`);
      }
      return NO_CONTENT;
    },
  };
}

function updateAction(command: UpdateCommand): Route {
  return {
    handler: async (context) => {
      await context.updates.start(command);
      return NO_CONTENT;
    },
  };
}

export const ROUTES: Readonly<Record<string, Partial<Record<Method, Route>>>> = {
  '/': {
    GET: {
      cacheable: true,
      handler: async (context, { query }) => {
        const prefix = optionalInput(query, 'prefix');
        const os = await context.os();
        const sections: Record<string, () => JsonObject> = {
          settings: () => context.store.document(['settings']),
          services: () => context.store.document(['services']),
          'configuration-files': () => context.store.document(['configuration-files']),
          os: () => ({ ...os }),
        };
        const result: JsonObject = {};
        for (const [name, whole] of Object.entries(sections)) {
          if (prefix === undefined || name.startsWith(prefix)) {
            result[name] = whole();
          } else if (prefix.startsWith(name)) {
            const part = name === 'os' ? osFiltered(os, prefix) : filteredSection(context.store, name, prefix);
            if (Object.keys(part).length > 0) result[name] = part;
          }
        }
        return ok(result);
      },
    },
  },
  '/settings': {
    GET: {
      cacheable: true,
      handler: async ({ store }, { query }) => {
        const keys = optionalInput(query, 'keys');
        if (keys !== undefined) {
          const found = [];
          for (const name of listInput(keys)) {
            const segments = parseKeyOr400(name);
            const entry = store.getLive(keyName(segments));
            if (entry && entry.segments[0] === 'settings') found.push(entry);
          }
          return ok(filteredFrom(found));
        }
        const prefix = optionalInput(query, 'prefix');
        if (prefix === undefined) return ok(store.document(['settings']));
        return ok(filteredSection(store, 'settings', prefix.startsWith('settings.') ? prefix : `settings.${prefix}`));
      },
    },
    PATCH: {
      // Promise chains rather than async functions: the API's most frequent write pays no extra turns.
      handler: (context, request) =>
        request.body().then((body) => {
          const entries = settingsEntries(context, parseJsonBody(body), false);
          const written = context.store.writePending(tx(request.query), entries);
          return written === undefined ? NO_CONTENT : written.then(() => NO_CONTENT);
        }),
    },
  },
  '/settings/keypair': {
    PATCH: {
      handler: async (context, request) => {
        const name = tx(request.query);
        const body = parseJsonBody(await request.body());
        const payload = isJsonObject(body) ? body.request_payload : undefined;
        if (!Array.isArray(payload) || payload.some((item) => typeof item !== 'string')) {
          throw new HttpError(400, "Body must be {\"request_payload\": [\"key=value\", ...]}");
        }
        let fragment: JsonObject;
        try {
          fragment = keypairsToSettings(payload as string[]);
        } catch (error) {
          if (error instanceof KeypairError || error instanceof KeyError) throw new HttpError(400, error.message);
          throw error;
        }
        const entries = settingsEntries(context, fragment, true);
        await context.store.writePending(name, entries);
        return NO_CONTENT;
      },
    },
  },
  '/tx/list': {
    GET: { handler: async ({ store }) => ok(store.listTransactions()) },
  },
  '/tx': {
    GET: {
      handler: async ({ store }, { query }) => {
        const pending = store.readPending(tx(query));
        const entries = [
          ...[...pending.removals.values()].map((segments) => ({ segments, value: null })),
          ...pending.values.values(),
        ].filter((entry) => entry.segments[0] === 'settings');
        return ok(filteredFrom(entries));
      },
    },
    DELETE: {
      handler: async ({ store }, { query }) => ok(await store.discardPending(tx(query))),
    },
  },
  '/tx/commit': {
    POST: { handler: (context, { query }) => commit(context, tx(query)).then(ok) },
  },
  '/tx/apply': {
    POST: {
      handler: async (context, { query }) => {
        const keys = optionalInput(query, 'keys');
        const list = keys === undefined ? 'all' : listInput(keys);
        if (list !== 'all') for (const key of list) parseKeyOr400(key);
        checkApplyPlan(context, list);
        context.applier.schedule(list);
        return NO_CONTENT;
      },
    },
  },
  '/tx/commit_and_apply': {
    POST: {
      handler: async (context, { query }) => {
        const name = tx(query);
        checkApplyPlan(context, pendingKeyNames(context.store.readPending(name)));
        const keys = await commit(context, name);
        context.applier.schedule(keys);
        return ok(keys);
      },
    },
  },
  '/apply-status': {
    GET: { handler: async ({ applier }) => ok(applier.history()) },
  },
  '/os': {
    GET: {
      cacheable: true,
      handler: async (context, { query }) => {
        const prefix = optionalInput(query, 'prefix');
        const os = await context.os();
        if (prefix === undefined) return ok(os);
        return ok(osFiltered(os, prefix.startsWith('os.') ? prefix : `os.${prefix}`));
      },
    },
  },
  '/metadata/affected-services': {
    GET: {
      cacheable: true,
      handler: async ({ store }, { query }) => {
        const found: JsonObject = {};
        for (const key of listInput(requiredInput(query, 'keys'))) {
          const value = store.inheritedMetadata('affected-services', parseKeyOr400(key));
          if (value !== undefined) found[key] = value;
        }
        return ok(found);
      },
    },
  },
  '/metadata/setting-generators': {
    GET: { cacheable: true, handler: async ({ store }) => ok(Object.fromEntries(store.metadata('setting-generator'))) },
  },
  '/metadata/templates': {
    GET: {
      cacheable: true,
      handler: async ({ store }, { query }) => {
        const found: JsonObject = {};
        for (const key of listInput(requiredInput(query, 'keys'))) {
          const value = store.inheritedMetadata('template', parseKeyOr400(key));
          if (value !== undefined) found[key] = value;
        }
        return ok(found);
      },
    },
  },
  '/services': {
    GET: { cacheable: true, handler: async ({ store }, { query }) => ok(namedSection(store, 'services', query)) },
  },
  '/configuration-files': {
    GET: {
      cacheable: true,
      handler: async ({ store }, { query }) => ok(namedSection(store, 'configuration-files', query)),
    },
  },
  '/actions/reboot': { POST: hostCommandAction((context) => context.rebootCommand, 'Failed to reboot') },
  // brl: upstream runs `signpost rollback-to-inactive` from the admin container; until host
  // containers exist, the API offers it (the next boot is the other set, if it can still boot).
  '/actions/rollback-to-inactive': { POST: hostCommandAction((context) => context.rollbackCommand, 'Failed to roll back') },
  '/actions/refresh-updates': { POST: updateAction('refresh') },
  '/actions/prepare-update': { POST: updateAction('prepare') },
  '/actions/activate-update': { POST: updateAction('activate') },
  '/actions/deactivate-update': { POST: updateAction('deactivate') },
  '/updates/status': {
    GET: { handler: async ({ updates }) => ok(await updates.status()) },
  },
  '/report': {
    GET: { handler: async () => ok([{ name: 'cis', description: 'CIS Bottlerocket Benchmark' }]) },
  },
  '/report/cis': {
    GET: {
      handler: async (context, { query }) => {
        const args = ['/usr/bin/bloodhound'];
        const level = optionalInput(query, 'level');
        const format = optionalInput(query, 'format');
        if (level !== undefined) args.push('-l', level);
        if (format !== undefined) args.push('-f', format);
        if (optionalInput(query, 'type') === 'kubernetes') args.push('-c', '/usr/libexec/cis-checks/kubernetes');
        return runReport(context, args);
      },
    },
  },
  '/report/fips': {
    GET: {
      handler: async (context, { query }) => {
        const args = ['/usr/bin/bloodhound', '-c', '/usr/libexec/fips-checks/bottlerocket'];
        const format = optionalInput(query, 'format');
        if (format !== undefined) args.push('-f', format);
        return runReport(context, args);
      },
    },
  },
};

async function runReport(context: RouteContext, argv: string[]): Promise<Reply> {
  const outcome = await runHostCommand(argv, { root: context.root });
  if (outcome.status !== 'ok') {
    throw new HttpError(500, `Failed to run report: ${outcome.stderr || outcome.note || `exit ${outcome.exitCode}`}`);
  }
  return { status: 200, text: outcome.stdout, contentType: 'application/text' };
}

/** The document of some entries of one section, without the section's name (`settings.motd` → `{motd}`). */
function filteredFrom(entries: readonly { segments: readonly string[]; value: unknown }[]): JsonObject {
  const root: JsonObject = {};
  for (const entry of entries) {
    let node = root;
    for (const segment of entry.segments.slice(1, -1)) {
      const child = node[segment];
      node = isJsonObject(child) ? child : (node[segment] = {});
    }
    node[entry.segments.at(-1) as string] = entry.value;
  }
  return root;
}
