// `brl ssm publish` and `brl ssm promote` (pubsys ssm / promote-ssm, spec §7).
import { DescribeImagesCommand, type Image } from '@aws-sdk/client-ec2';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { AmisFile } from './amis-file.ts';
import type { AwsClients } from './clients.ts';
import { describeImageVisibility } from './permissions.ts';
import { ec2Architecture } from './register.ts';
import { getParameterValues, putParameter, type ParameterChange } from './ssm-parameters.ts';
import { applicableTemplates, joinParameterName, render, type ParameterTemplate } from './ssm-templates.ts';

export interface SsmPublishOptions {
  clients: AwsClients;
  amis: AmisFile;
  amisPath: string;
  regions: string[] | undefined;
  variant: string;
  arch: string;
  imageVersion: string;
  templates: ParameterTemplate[];
  prefix: string;
  allowClobber: boolean;
  allowPrivateImages: boolean;
}

export interface SsmResult {
  changes: ParameterChange[];
}

export interface PlannedParameter {
  region: string;
  name: string;
  value: string;
}

export type ParameterPlanOptions = Pick<SsmPublishOptions, 'amis' | 'amisPath' | 'regions' | 'variant' | 'arch' | 'imageVersion' | 'templates' | 'prefix'>;

/** Every parameter publish sets: the applicable templates rendered for each region's AMI, regions in the given (else sorted) order. */
export function planParameters(options: ParameterPlanOptions): PlannedParameter[] {
  const { amis } = options;
  const regions = options.regions ?? Object.keys(amis).sort();
  const templates = applicableTemplates(options.templates, options.variant, options.arch);
  if (templates.length === 0) {
    throw new BrlError(`no parameter template applies to ${options.variant} (${options.arch})`, { exitCode: ExitCode.badInput, code: 'NO_SSM_TEMPLATES' });
  }
  const planned: PlannedParameter[] = [];
  for (const region of regions) {
    const ami = amis[region];
    if (!ami) throw new BrlError(`${options.amisPath} has no AMI for ${region}`, { exitCode: ExitCode.usage, code: 'UNKNOWN_REGION' });
    const context = { variant: options.variant, arch: ec2Architecture(options.arch), image_id: ami.id, image_name: ami.name, image_version: options.imageVersion, region };
    for (const template of templates) {
      const name = joinParameterName(options.prefix, render(template.name, context, `${template.source}.name`));
      planned.push({ region, name, value: render(template.value, context, `${template.source}.value`) });
    }
  }
  return planned;
}

export async function publishSsmParameters(options: SsmPublishOptions): Promise<SsmResult> {
  const { clients, amis } = options;
  const regions = options.regions ?? Object.keys(amis).sort();
  const planned = planParameters(options);

  // Names under /aws/ are read as official; never point them at an image not everyone can launch.
  if (!options.allowPrivateImages) {
    for (const region of new Set(planned.filter((p) => p.name.startsWith('/aws/')).map((p) => p.region))) {
      const ami = amis[region] as { id: string; public?: boolean };
      const isPublic = ami.public ?? (await describeImageVisibility(clients.ec2(region), ami.id)).public;
      if (!isPublic) {
        throw new BrlError(`${ami.id} in ${region} is not public, and the parameters would live under /aws/`, {
          hint: 'make the AMI public first (brl ami grant --group-names all), or pass --allow-private-images',
          exitCode: ExitCode.conflict,
          code: 'PRIVATE_AMI_UNDER_AWS',
        });
      }
    }
  }

  const changes: ParameterChange[] = [];
  for (const region of regions) {
    const inRegion = planned.filter((p) => p.region === region);
    const current = await getParameterValues(clients.ssm(region), inRegion.map((p) => p.name));
    for (const p of inRegion) {
      const previous = current.get(p.name);
      changes.push({ ...p, previous, action: previous === undefined ? 'created' : previous === p.value ? 'unchanged' : 'updated' });
    }
  }
  const clobbered = changes.filter((c) => c.action === 'updated');
  if (clobbered.length > 0 && !options.allowClobber) {
    throw new BrlError(`${clobbered.length} parameter(s) already exist with other values: ${clobbered.map((c) => `${c.name} in ${c.region} (${c.previous})`).join(', ')}`, {
      hint: 'pass --allow-clobber to overwrite them; nothing was written',
      exitCode: ExitCode.conflict,
      code: 'SSM_PARAMETER_EXISTS',
    });
  }
  await writeChanges(clients, changes);
  return { changes };
}

async function writeChanges(clients: AwsClients, changes: ParameterChange[]): Promise<void> {
  // Regions in parallel, one parameter at a time within a region: SSM's PutParameter limit is a few per second.
  const regions = [...new Set(changes.map((c) => c.region))];
  await Promise.all(
    regions.map(async (region) => {
      for (const change of changes.filter((c) => c.region === region && c.action !== 'unchanged')) {
        await putParameter(clients.ssm(region), change.name, change.value, change.action === 'updated');
      }
    }),
  );
}

export interface SsmPromoteOptions {
  clients: AwsClients;
  regions: string[];
  variant: string;
  arch: string;
  source: string;
  target: string;
  templates: ParameterTemplate[];
  prefix: string;
  force: boolean;
}

export interface SsmPromoteResult extends SsmResult {
  /** AMI problems that --force let through. */
  forcedPast: string[];
}

const amiIdPattern = /^ami-[0-9a-f]{8,17}$/;

export async function promoteSsmParameters(options: SsmPromoteOptions): Promise<SsmPromoteResult> {
  const { clients } = options;
  if (options.source === options.target) throw new BrlError('--source and --target are the same', { exitCode: ExitCode.usage, code: 'SAME_VERSION' });
  const templates = applicableTemplates(options.templates, options.variant, options.arch);
  const changes: ParameterChange[] = [];
  const problems: string[] = [];
  for (const region of options.regions) {
    const names = templates.map((template) => {
      const context = (imageVersion: string) => ({ variant: options.variant, arch: ec2Architecture(options.arch), image_version: imageVersion, region });
      return {
        source: joinParameterName(options.prefix, render(template.name, context(options.source), `${template.source}.name`)),
        target: joinParameterName(options.prefix, render(template.name, context(options.target), `${template.source}.name`)),
      };
    });
    const ssm = clients.ssm(region);
    const sourceValues = await getParameterValues(ssm, names.map((n) => n.source));
    const missing = names.filter((n) => !sourceValues.has(n.source)).map((n) => n.source);
    if (missing.length > 0) {
      throw new BrlError(`cannot promote in ${region}: ${missing.join(', ')} not found`, {
        hint: `publish version ${options.source} first (brl ssm publish), or check --source and the prefix`,
        exitCode: ExitCode.notFound,
        code: 'SSM_SOURCE_MISSING',
      });
    }
    problems.push(...(await amiProblems(clients, region, [...sourceValues.values()].filter((value) => amiIdPattern.test(value)))));
    const targetValues = await getParameterValues(ssm, names.map((n) => n.target));
    for (const n of names) {
      const value = sourceValues.get(n.source) as string;
      const previous = targetValues.get(n.target);
      changes.push({ region, name: n.target, value, previous, action: previous === undefined ? 'created' : previous === value ? 'unchanged' : 'updated' });
    }
  }
  if (problems.length > 0 && !options.force) {
    throw new BrlError(`refusing to promote ${options.source} to ${options.target}: ${problems.join('; ')}`, {
      hint: 'wait until the AMIs are available and public (brl ami grant --group-names all), or pass --force',
      exitCode: ExitCode.verifyFailed,
      code: 'PROMOTE_UNSAFE_AMI',
    });
  }
  await writeChanges(clients, changes);
  return { changes, forcedPast: problems };
}

/** Why each AMI must not be promoted (missing, not available, not public); empty when all are fine. */
async function amiProblems(clients: AwsClients, region: string, imageIds: string[]): Promise<string[]> {
  const problems: string[] = [];
  const ec2 = clients.ec2(region);
  for (const imageId of new Set(imageIds)) {
    let image: Image | undefined;
    try {
      const { Images = [] } = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      image = Images[0];
    } catch (error) {
      if (!/NotFound|Malformed/.test((error as { name?: string }).name ?? '')) throw error;
    }
    if (!image) {
      problems.push(`${imageId} does not exist in ${region}`);
      continue;
    }
    if (image.State !== 'available') problems.push(`${imageId} in ${region} is ${image.State ?? 'in an unknown state'}, not available`);
    if (image.Public !== true && !(await describeImageVisibility(ec2, imageId)).public) problems.push(`${imageId} in ${region} is not public`);
  }
  return problems;
}
