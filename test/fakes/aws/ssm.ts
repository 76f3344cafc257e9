// SSM JSON 1.1 protocol: GetParameter, GetParameters and PutParameter, validating names, types and data types as SSM does.
import type { FakeAwsState, FakeParameter } from './state.ts';
import { FakeServiceError } from './errors.ts';

const parameterTypes = ['String', 'StringList', 'SecureString'];
const dataTypes = ['text', 'aws:ec2:image', 'aws:ssm:integration'];
const reservedNameMessage =
  'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_';

function validationError(value: unknown, member: string, constraint: string): FakeServiceError {
  return new FakeServiceError('ValidationException', `1 validation error detected: Value '${String(value)}' at '${member}' failed to satisfy constraint: ${constraint}`);
}

function parameterJson(p: FakeParameter, region: string, accountId: string, decrypt = true) {
  return {
    Name: p.name,
    // Without decryption SSM returns a SecureString's ciphertext, never the plain value.
    Value: p.type === 'SecureString' && !decrypt ? Buffer.from(`kms-ciphertext:${p.name}:${p.version}`).toString('base64') : p.value,
    Type: p.type,
    Version: p.version,
    LastModifiedDate: p.lastModified.getTime() / 1000,
    ARN: `arn:aws:ssm:${region}:${accountId}:parameter${p.name.startsWith('/') ? '' : '/'}${p.name}`,
    DataType: p.dataType,
  };
}

function getParameter(state: FakeAwsState, region: string, request: { Name?: string; WithDecryption?: boolean }): unknown {
  const parameter = state.parameters.get(`${region}\0${request.Name ?? ''}`);
  if (!parameter) throw new FakeServiceError('ParameterNotFound', `Parameter ${request.Name ?? ''} not found.`);
  return { Parameter: parameterJson(parameter, region, state.options.accountId, request.WithDecryption === true) };
}

function getParameters(state: FakeAwsState, region: string, request: { Names?: string[]; WithDecryption?: boolean }): unknown {
  const names = request.Names ?? [];
  if (names.length === 0 || names.length > 10) throw validationError(`[${names.join(', ')}]`, 'names', 'Member must have length less than or equal to 10 and greater than or equal to 1');
  const found = names.map((name) => state.parameters.get(`${region}\0${name}`));
  return {
    Parameters: found.filter((p) => p !== undefined).map((p) => parameterJson(p, region, state.options.accountId, request.WithDecryption === true)),
    InvalidParameters: names.filter((_, i) => found[i] === undefined),
  };
}

/** Names as SSM allows them: letters, digits, `_.-/`; a path starts with `/`; the `aws` and `ssm` prefixes are AWS's own. */
function checkName(state: FakeAwsState, name: string): void {
  if (name.length === 0 || name.length > 1011) throw validationError(name, 'name', 'Member must have length less than or equal to 1011 and greater than or equal to 1');
  if (!/^[a-zA-Z0-9_.\-/]+$/.test(name) || (name.includes('/') && !name.startsWith('/')) || name.includes('//')) {
    throw new FakeServiceError('ValidationException', reservedNameMessage);
  }
  if (/^\/?(aws|ssm)/i.test(name) && !state.options.reservedParameterNames) throw new FakeServiceError('ValidationException', reservedNameMessage);
  if (name.split('/').length - 1 > 15) throw new FakeServiceError('HierarchyLevelLimitExceededException', 'A hierarchy can have a maximum of 15 levels.');
}

function putParameter(
  state: FakeAwsState,
  region: string,
  request: { Name?: string; Value?: string; Type?: string; DataType?: string; Overwrite?: boolean },
): unknown {
  const name = request.Name ?? '';
  checkName(state, name);
  const value = request.Value ?? '';
  if (value.length === 0 || value.length > 4096) throw validationError(value, 'value', 'Member must have length less than or equal to 4096 and greater than or equal to 1');
  if (request.Type !== undefined && !parameterTypes.includes(request.Type)) {
    throw validationError(request.Type, 'type', `Member must satisfy enum value set: [${parameterTypes.join(', ')}]`);
  }
  const key = `${region}\0${name}`;
  const existing = state.parameters.get(key);
  if (existing && request.Overwrite !== true) throw new FakeServiceError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
  const type = request.Type ?? existing?.type;
  if (type === undefined) throw new FakeServiceError('ValidationException', 'A parameter type is required when you create a parameter.');
  if (existing && existing.type !== type) throw new FakeServiceError('HierarchyTypeMismatchException', 'Changing a parameter type isn\'t supported for existing parameters.');
  const dataType = request.DataType ?? 'text';
  if (!dataTypes.includes(dataType)) {
    throw new FakeServiceError('ValidationException', `The following data type is not supported: ${dataType} (Data type names are all lowercase.)`);
  }
  if (dataType === 'aws:ec2:image') {
    if (type !== 'String') throw new FakeServiceError('ValidationException', 'Data type aws:ec2:image is supported only for String parameters.');
    if (!/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/.test(value)) throw new FakeServiceError('ValidationException', `Parameter value, ${value}, is not in a valid format for the aws:ec2:image data type.`);
  }
  if (dataType === 'aws:ssm:integration' && type !== 'SecureString') {
    throw new FakeServiceError('ValidationException', 'Data type aws:ssm:integration is supported only for SecureString parameters.');
  }
  const version = (existing?.version ?? 0) + 1;
  state.parameters.set(key, { name, value, type, dataType, version, lastModified: new Date() });
  return { Version: version, Tier: 'Standard' };
}

export const ssmActions: Record<string, (state: FakeAwsState, region: string, request: never) => unknown> = {
  GetParameter: getParameter,
  GetParameters: getParameters,
  PutParameter: putParameter,
};
