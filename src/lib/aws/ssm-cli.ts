// Flags shared by `brl ssm publish`, `promote` and `validate`, and the human rendering of their changes.
import { Flags } from '@oclif/core';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readAmisFile } from './amis-file.ts';
import { latestAmisFile } from './publish-plan.ts';
import type { AwsSettings } from './settings.ts';
import type { ParameterChange } from './ssm-parameters.ts';
import type { ParameterPlanOptions } from './ssm-publish.ts';
import { loadTemplates, requirePrefix } from './ssm-templates.ts';

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

/**
 * What `publish` and `validate` render the parameters from: amis.json and the image version (the
 * latest build's unless given), the templates and the prefix.
 */
export async function parameterPlanInputs(
  settings: AwsSettings,
  flags: { variant: string; arch: string; 'ami-input'?: string | undefined; version?: string | undefined; 'template-path'?: string | undefined; 'ssm-prefix'?: string | undefined },
): Promise<ParameterPlanOptions> {
  let amisPath = flags['ami-input'];
  let version = flags.version;
  if ((amisPath === undefined || version === undefined) && settings.projectDir !== undefined) {
    const latest = await latestAmisFile(settings.projectDir, flags.variant, flags.arch);
    amisPath ??= latest.amisPath;
    version ??= latest.imageVersion;
  }
  if (amisPath === undefined || version === undefined) {
    throw new BrlError('outside a project, --ami-input and --version are required', { exitCode: ExitCode.usage, code: 'MISSING_FLAGS' });
  }
  return {
    amis: await readAmisFile(amisPath),
    amisPath,
    regions: settings.regionsFlag,
    variant: flags.variant,
    arch: flags.arch,
    imageVersion: version,
    templates: await loadTemplates(flags['template-path']),
    prefix: requirePrefix(flags['ssm-prefix'] ?? settings.infra.ssmPrefix),
  };
}
