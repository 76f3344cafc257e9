// `brl ssm validate` (pubsys validate-ssm): every parameter `brl ssm publish` would set, against what SSM holds.
import type { AwsClients } from './clients.ts';
import { getParameterValues } from './ssm-parameters.ts';
import { planParameters, type ParameterPlanOptions } from './ssm-publish.ts';
import { check, validateRegions, type ValidationResult } from './validation.ts';

export interface ValidateSsmOptions extends ParameterPlanOptions {
  clients: AwsClients;
  concurrency?: number;
}

export type ValidateSsmResult = ValidationResult;

export const missingValue = '(missing)';

export async function validateSsmParameters(options: ValidateSsmOptions): Promise<ValidateSsmResult> {
  const planned = planParameters(options);
  const regions = [...new Set(planned.map((p) => p.region))];
  return validateRegions(regions, options.concurrency ?? 4, async (region) => {
    const inRegion = planned.filter((p) => p.region === region);
    const current = await getParameterValues(options.clients.ssm(region), inRegion.map((p) => p.name));
    return inRegion.map((p) => check(p.name, p.value, current.get(p.name) ?? missingValue));
  });
}
