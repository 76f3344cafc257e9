// `brl container build NAME`: a host-container image from its locked debs into an OCI layout.
import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { findProjectDir } from '../../lib/core/paths.ts';
import { loadFetchConfig } from '../../lib/fetch/index.ts';
import { buildContainerImage, type ContainerBuildResult } from '../../lib/oci/build.ts';

export default class ContainerBuild extends BrlCommand<ContainerBuildResult> {
  static override summary = 'Build a host-container image (host-containers/NAME/image.toml) into an OCI image layout.';
  static override description = [
    'Fetches the debs that host-containers/NAME/debs.lock pins (into the lookaside cache), merges their data into one root (merged /usr, modes and owners as Debian ships them, /var/lib/dpkg/status with conffiles), adds the files image.toml lists, and writes one gzipped layer, the image config and manifest into build/containers/NAME/ (an OCI image layout; index.json names the image by its version).',
    'The bytes depend only on the inputs: entries sorted, every mtime SOURCE_DATE_EPOCH (default 1980-01-01), gzip without name or time. Building twice gives the same manifest digest.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> container build admin',
    'SOURCE_DATE_EPOCH=1700000000 <%= config.bin %> container build control --json',
    '<%= config.bin %> container build control --output-dir /tmp/layouts',
  ];

  static override args = {
    name: Args.string({ description: 'image name: a directory of host-containers/ with an image.toml', required: true }),
  };

  static override flags = {
    'output-dir': Flags.string({ description: 'directory for the layout (default build/containers); the layout is OUTPUT-DIR/NAME' }),
  };

  async run(): Promise<ContainerBuildResult> {
    const { args, flags } = await this.parse(ContainerBuild);
    const projectDir = findProjectDir();
    const result = await buildContainerImage(projectDir, args.name, {
      fetch: await loadFetchConfig(projectDir),
      progress: this.jsonEnabled() ? 'silent' : 'auto',
      log: (line) => this.logToStderr(line),
      ...(flags['output-dir'] === undefined ? {} : { outputDir: flags['output-dir'] }),
    });
    const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
    this.say(`${result.name}:${result.tag} ${result.manifestDigest}`);
    this.say(`  layout ${result.layoutDir}`);
    this.say(`  layer ${result.layer.digest}: ${mib(result.layer.size)} MiB gzip, ${mib(result.layer.uncompressedSize)} MiB tar, ${result.layer.entries} entries from ${result.debs} debs (${result.seconds} s)`);
    return result;
  }
}
