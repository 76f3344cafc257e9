// Reading and writing SSM parameters in batches, per region.
import { GetParametersCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';

/** Current values of `names` (absent ones are missing from the map); GetParameters takes 10 names a call. */
export async function getParameterValues(ssm: SSMClient, names: string[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  const unique = [...new Set(names)];
  for (let start = 0; start < unique.length; start += 10) {
    const { Parameters = [] } = await ssm.send(new GetParametersCommand({ Names: unique.slice(start, start + 10) }));
    for (const parameter of Parameters) {
      if (parameter.Name !== undefined && parameter.Value !== undefined) values.set(parameter.Name, parameter.Value);
    }
  }
  return values;
}

export async function putParameter(ssm: SSMClient, name: string, value: string, overwrite: boolean): Promise<void> {
  await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'String', Overwrite: overwrite }));
}

export type ParameterAction = 'created' | 'updated' | 'unchanged';

export interface ParameterChange {
  region: string;
  name: string;
  value: string;
  previous: string | undefined;
  action: ParameterAction;
}

/** Region → {parameter name → value}, the `--ssm-parameter-output` format. */
export function parametersByRegion(changes: ParameterChange[]): Record<string, Record<string, string>> {
  const output: Record<string, Record<string, string>> = {};
  for (const change of changes) (output[change.region] ??= {})[change.name] = change.value;
  return output;
}
