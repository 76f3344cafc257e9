// Image references as host-container sources name them: HOST[:PORT]/REPO[:TAG][@sha256:…].
import { BrlError, ExitCode } from '../core/errors.ts';
import { digestPattern } from '../oci/models.ts';
import { parseRegistryTarget } from '../oci/reference.ts';

export interface ImageReference {
  registry: string;
  repository: string;
  /** What the registry is asked for: the digest when the reference pins one, else the tag (`latest` when none). */
  manifest: string;
  /** The reference as written, which names the image in containerd. */
  name: string;
}

export function parseImageReference(text: string): ImageReference {
  const at = text.indexOf('@');
  const digest = at < 0 ? undefined : text.slice(at + 1);
  if (digest !== undefined && !digestPattern.test(digest)) {
    throw new BrlError(`image reference "${text}" pins "${digest}", which is not a sha256 digest`, {
      hint: 'pin an image as HOST/REPOSITORY@sha256:<64 hex digits>',
      exitCode: ExitCode.badInput,
      code: 'BAD_IMAGE_REFERENCE',
    });
  }
  const target = parseRegistryTarget(at < 0 ? text : text.slice(0, at));
  return { registry: target.registry, repository: target.repository, manifest: digest ?? target.tag ?? 'latest', name: text };
}
