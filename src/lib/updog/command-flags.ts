// oclif flags of the `brl updog …` commands (the host program parses the same ones itself).
import { Flags } from '@oclif/core';
import { hostFlags } from '../signpost/command-flags.ts';

export const updogFlags = {
  ...hostFlags,
  image: Flags.string({ char: 'i', description: 'update to this version (plain semver; may be a downgrade)' }),
  now: Flags.boolean({ char: 'n', aliases: ['ignore-waves'], description: 'ignore wave scheduling (also --ignore-waves)', default: false }),
  variant: Flags.string({ description: 'override VARIANT_ID from os-release', hidden: true }),
};

export function updogOptionsFromFlags(flags: { root: string; disk?: string; image?: string; now: boolean; variant?: string }): {
  root: string; disk?: string; image?: string; ignoreWaves: boolean; variant?: string;
} {
  return {
    root: flags.root,
    ignoreWaves: flags.now,
    ...(flags.disk === undefined ? {} : { disk: flags.disk }),
    ...(flags.image === undefined ? {} : { image: flags.image }),
    ...(flags.variant === undefined ? {} : { variant: flags.variant }),
  };
}
