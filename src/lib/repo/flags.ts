// Flags shared by the `brl repo` commands, named as pubsys names them.
import { Args, Flags } from '@oclif/core';
import { roleNames } from '../tuf/metadata.ts';

export const repoFlag = Flags.string({ description: 'repository name: the [repo.<name>] table in Infra.toml', default: 'default', env: 'PUBLISH_REPO' });
export const infraConfigFlag = Flags.string({ description: 'Infra.toml to read (default: Infra.toml in the project)', env: 'PUBLISH_INFRA_CONFIG_PATH' });
export const rootRoleFlag = Flags.string({ description: 'trusted root.json (default: root_role_url from Infra.toml, else roles/<repo>.root.json)' });
export const variantFlag = Flags.string({ description: 'variant whose metadata to use', required: true, env: 'BUILDSYS_VARIANT' });
export const archFlag = Flags.string({ description: 'architecture', options: ['x86_64', 'aarch64'], default: 'x86_64', env: 'BUILDSYS_ARCH' });
export const keyFlag = Flags.string({
  char: 'k',
  description: 'signing key: a PEM file, file:///path, aws-kms://[profile]/KEY-ID or aws-ssm://[profile]/PARAMETER (repeatable; default: signing_keys from Infra.toml)',
  multiple: true,
});
export const roleFlag = Flags.string({ description: 'role (repeatable; default: every role)', options: [...roleNames], multiple: true });
export const expirationPolicyFlag = Flags.string({ description: 'expiration policy TOML (snapshot/targets/timestamp_expiration; default 2 weeks / 2 weeks / 1 week)' });

/** Which repository a command reads: variant, arch, Infra.toml repo and the trusted root. */
export const repoSelectionFlags = {
  variant: variantFlag,
  arch: archFlag,
  repo: repoFlag,
  'infra-config-path': infraConfigFlag,
  'root-role-path': rootRoleFlag,
};

/** The optional DIR of the commands that read an existing repository. */
export const existingRepoArgs = {
  dir: Args.string({ description: 'repository directory (default: metadata_base_url from Infra.toml)' }),
};
