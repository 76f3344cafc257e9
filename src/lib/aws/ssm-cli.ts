// Flags shared by `brl ssm publish`, `promote` and `validate`, and the human rendering of their changes.
import { Flags } from '@oclif/core';
import type { ParameterChange } from './ssm-parameters.ts';

/** What selects and renders the parameters; `brl ssm validate` takes these alone. */
export const ssmTemplateFlags = {
  variant: Flags.string({ description: 'variant the parameters describe', required: true }),
  arch: Flags.string({ description: 'architecture ({arch} renders as x86_64 or arm64)', options: ['x86_64', 'aarch64'], default: 'x86_64' }),
  'template-path': Flags.string({ description: 'TOML with [[parameter]] name/value templates (default: {variant}/{arch}/{image_version}/image_id and …/image_version)' }),
  regions: Flags.string({ description: 'comma-separated regions' }),
  'ssm-prefix': Flags.string({ description: 'prefix of every parameter name (default: [aws] ssm_prefix in Infra.toml)' }),
  'infra-config': Flags.string({ description: "Infra.toml to read [aws] from (default: the project's)" }),
};

export const ssmFlags = {
  ...ssmTemplateFlags,
  'ssm-parameter-output': Flags.string({ description: 'write the parameters set as JSON: region → {name → value}' }),
};

export function describeChanges(changes: ParameterChange[]): string[] {
  return changes.map((c) => {
    const what = c.action === 'updated' ? `${c.previous} → ${c.value}` : c.value;
    return `${c.region.padEnd(16)} ${c.action.padEnd(9)} ${c.name} = ${what}`;
  });
}
