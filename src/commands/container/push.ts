// `brl container push NAME --registry HOST:PORT/REPO[:TAG]`: a built image to a registry, pinned by digest.
import { Args, Flags } from '@oclif/core';
import { join } from 'node:path';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { findProjectDir } from '../../lib/core/paths.ts';
import { containersBuildDir } from '../../lib/oci/build.ts';
import { pushImage, type PushResult } from '../../lib/oci/push.ts';
import { parseRegistryTarget } from '../../lib/oci/reference.ts';

export default class ContainerPush extends BrlCommand<PushResult> {
  static override summary = 'Push a built host-container image to a registry and print the reference pinned by its digest.';
  static override description = [
    'Reads build/containers/NAME/ (from `brl container build NAME`), checks every blob against its digest, and pushes over the OCI distribution API: blobs the registry lacks are uploaded (POST, then PUT with the digest), then the manifest under the tag (default: the image version).',
    'Every digest the registry reports must be the one brl computed; the manifest is read back by digest. The result names HOST:PORT/REPO@sha256:…, the reference to pin. Loopback registries are spoken to over HTTP, others over HTTPS (--plain-http forces HTTP). No credentials are sent.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> container push admin --registry 127.0.0.1:5000/brl/admin',
    '<%= config.bin %> container push control --registry registry.internal:5000/brl/control:v0.1.0 --plain-http --json',
  ];

  static override args = {
    name: Args.string({ description: 'image name (its layout is build/containers/NAME)', required: true }),
  };

  static override flags = {
    registry: Flags.string({ description: 'where to push: HOST[:PORT]/REPOSITORY[:TAG]', required: true }),
    'plain-http': Flags.boolean({ description: 'use HTTP for a registry that is not on loopback', default: false }),
    'layout-dir': Flags.string({ description: 'push this OCI layout instead of build/containers/NAME' }),
  };

  async run(): Promise<PushResult> {
    const { args, flags } = await this.parse(ContainerPush);
    const target = parseRegistryTarget(flags.registry);
    const layoutDir = flags['layout-dir'] ?? join(containersBuildDir(findProjectDir()), args.name);
    const result = await pushImage(layoutDir, target, { plainHttp: flags['plain-http'], log: (line) => this.logToStderr(line) });
    const uploaded = result.blobs.filter((blob) => blob.uploaded).length;
    this.say(result.reference);
    this.say(`  ${result.taggedReference}; ${uploaded} of ${result.blobs.length} blobs uploaded (${(result.bytesUploaded / 1024 / 1024).toFixed(1)} MiB, ${result.seconds} s)`);
    return result;
  }
}
