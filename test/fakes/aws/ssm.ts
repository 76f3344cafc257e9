// SSM JSON 1.1 protocol: GetParameters and PutParameter.
import type { FakeAwsState } from './state.ts';
import { FakeServiceError } from './errors.ts';

function parameterJson(p: { name: string; value: string; type: string; version: number; lastModified: Date }, region: string, accountId: string) {
  return {
    Name: p.name,
    Value: p.value,
    Type: p.type,
    Version: p.version,
    LastModifiedDate: p.lastModified.getTime() / 1000,
    ARN: `arn:aws:ssm:${region}:${accountId}:parameter${p.name.startsWith('/') ? '' : '/'}${p.name}`,
    DataType: 'text',
  };
}

function getParameters(state: FakeAwsState, region: string, request: { Names?: string[] }): unknown {
  const names = request.Names ?? [];
  if (names.length === 0 || names.length > 10) throw new FakeServiceError('ValidationException', 'Names must hold 1 to 10 names');
  const found = names.map((name) => state.parameters.get(`${region}\0${name}`));
  return {
    Parameters: found.filter((p) => p !== undefined).map((p) => parameterJson(p, region, state.options.accountId)),
    InvalidParameters: names.filter((_, i) => found[i] === undefined),
  };
}

function putParameter(state: FakeAwsState, region: string, request: { Name?: string; Value?: string; Type?: string; Overwrite?: boolean }): unknown {
  const name = request.Name ?? '';
  if (!name || request.Value === undefined) throw new FakeServiceError('ValidationException', 'Name and Value are required');
  if (name.split('/').length - 1 > 15) throw new FakeServiceError('HierarchyLevelLimitExceededException', 'too many levels');
  const key = `${region}\0${name}`;
  const existing = state.parameters.get(key);
  if (existing && request.Overwrite !== true) throw new FakeServiceError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
  const version = (existing?.version ?? 0) + 1;
  state.parameters.set(key, { name, value: request.Value, type: request.Type ?? existing?.type ?? 'String', version, lastModified: new Date() });
  return { Version: version, Tier: 'Standard' };
}

export const ssmActions: Record<string, (state: FakeAwsState, region: string, request: never) => unknown> = {
  GetParameters: getParameters,
  PutParameter: putParameter,
};
