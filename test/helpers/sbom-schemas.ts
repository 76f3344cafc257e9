// The official SBOM schemas as test oracles: SPDX 2.3.1 (vendored in test/fixtures/schemas, see its
// README) and CycloneDX 1.5 (shipped by the @cyclonedx/cyclonedx-library npm package).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { repoDir } from './cli.ts';

const readJson = (path: string): object => JSON.parse(readFileSync(path, 'utf8')) as object;
const cycloneDxSchemas = join(dirname(createRequire(import.meta.url).resolve('@cyclonedx/cyclonedx-library/package.json')), 'res', 'schema');

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}${error.params ? ` ${JSON.stringify(error.params)}` : ''}`);
}

const spdx = new Ajv2019({ allErrors: true, strict: false }).compile(readJson(join(repoDir, 'test', 'fixtures', 'schemas', 'spdx-2.3.1.schema.json')));

const cdxAjv = new Ajv({ allErrors: true, strict: false });
addFormats.default(cdxAjv);
// Draft 2019 formats that bom-1.5 uses and ajv-formats lacks; brl writes neither field.
for (const format of ['iri-reference', 'idn-email']) cdxAjv.addFormat(format, true);
// bom-1.5 refers to its licence list and JSF signature schemas by file name, relative to its own $id.
for (const name of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json']) {
  const { $id: _published, ...schema } = readJson(join(cycloneDxSchemas, name)) as { $id?: string };
  cdxAjv.addSchema(schema, `http://cyclonedx.org/schema/${name}`);
}
const cycloneDx = cdxAjv.compile(readJson(join(cycloneDxSchemas, 'bom-1.5.SNAPSHOT.schema.json')));

/** Schema errors of an SPDX 2.3 JSON document; empty when it is valid. */
export function spdxSchemaErrors(document: unknown): string[] {
  return spdx(document) ? [] : describe(spdx.errors);
}

/** Schema errors of a CycloneDX 1.5 JSON document; empty when it is valid. */
export function cycloneDxSchemaErrors(document: unknown): string[] {
  return cycloneDx(document) ? [] : describe(cycloneDx.errors);
}
