// oclif flags shared by the `brl signpost …` and `brl updog …` commands: which host and disk to act on.
import { Flags } from '@oclif/core';

export const hostFlags = {
  root: Flags.string({ description: 'host root directory (os-release, /etc/updog.toml, trusted root.json, caches)', default: '/' }),
  disk: Flags.string({ description: 'OS disk: block device or disk image file (default: the disk the host booted from)' }),
};
