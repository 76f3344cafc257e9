// Adding signatures to a metadata document with any Signer (local or remote, so asynchronous).
import type { Signer } from '../signing/signer.ts';
import { signedBytes, type Envelope, type SignedCommon } from './metadata.ts';

/**
 * Signs `envelope.signed` with each signer, replacing an older signature by the same key and
 * keeping the others (so several parties can sign one root in turn).
 */
export async function signEnvelope<Signed extends SignedCommon>(envelope: Envelope<Signed>, signers: readonly Signer[]): Promise<Envelope<Signed>> {
  const bytes = signedBytes(envelope);
  const fresh = await Promise.all(signers.map(async (signer) => ({ keyid: signer.keyId, sig: Buffer.from(await signer.sign(bytes)).toString('hex') })));
  const replaced = new Set(fresh.map((signature) => signature.keyid));
  return { signed: envelope.signed, signatures: [...envelope.signatures.filter((signature) => !replaced.has(signature.keyid)), ...fresh] };
}
