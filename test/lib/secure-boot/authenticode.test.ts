// Authenticode signatures written by brl, checked by sbverify (sbsigntool) against the project's db certificate.
import test from 'ava';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signPeImage, type CodeSigningIdentity } from '../../../src/lib/secure-boot/authenticode.ts';
import { authenticodeHash, readPeLayout } from '../../../src/lib/secure-boot/pe-image.ts';
import { createCertificate, distinguishedName, toPem } from '../../../src/lib/secure-boot/x509.ts';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';
import { publicKeyObject } from '../../../src/lib/tuf/key.ts';
import { makePeImage } from './pe-fixture.ts';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'brl-authenticode-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const rsaSigner = (name: string) => new PrivateKeySigner(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, `test:${name}`);
const validity = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2036-01-01T00:00:00Z') };

/** A db CA and a code-signing certificate it issued, as `brl keys secure-boot init` makes them. */
async function chain(organization: string): Promise<{ dbPem: string; identity: CodeSigningIdentity }> {
  const db = rsaSigner('db');
  const dbName = distinguishedName(organization, 'db');
  const dbCertificate = await createCertificate({ subject: dbName, subjectPublicKey: publicKeyObject(db.publicKey), serial: 1n, ...validity, ca: true, selfSigner: db });
  const signer = rsaSigner('code-sign');
  const certificate = await createCertificate({
    subject: distinguishedName(organization, 'code signing'),
    subjectPublicKey: publicKeyObject(signer.publicKey),
    serial: 2n,
    ...validity,
    ca: false,
    issuer: { name: dbName, signer: db },
  });
  return { dbPem: toPem(dbCertificate), identity: { signer, certificate } };
}

const project = chain('brl test');
const other = chain('someone else');

async function sbverify(image: Buffer, certificatePem: string): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(join(scratch, 'verify-'));
  writeFileSync(join(dir, 'image.efi'), image);
  writeFileSync(join(dir, 'db.crt'), certificatePem);
  try {
    const { stdout, stderr } = await run('sbverify', ['--cert', join(dir, 'db.crt'), join(dir, 'image.efi')]);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const failure = error as { stdout: string; stderr: string };
    return { ok: false, output: failure.stdout + failure.stderr };
  }
}

test('sbverify accepts a signed PE image with the db certificate that issued the code-signing certificate', async (t) => {
  const { dbPem, identity } = await project;
  const signed = await signPeImage(makePeImage(), identity, 'fixture.efi');
  const result = await sbverify(signed, dbPem);
  t.true(result.ok, result.output);
  t.regex(result.output, /Signature verification OK/);
});

test('the image hash covers sections and trailing data: sbverify refuses a signed image with one byte changed in either', async (t) => {
  const { dbPem, identity } = await project;
  const signed = await signPeImage(makePeImage([0x1000, 0x600], 40), identity, 'fixture.efi');
  const layout = readPeLayout(signed);
  for (const offset of [layout.sections[1]!.offset + 5, layout.sections[1]!.offset + layout.sections[1]!.size + 3]) {
    const altered = Buffer.from(signed);
    altered[offset]! ^= 0x01;
    const result = await sbverify(altered, dbPem);
    t.false(result.ok, `offset ${offset}`);
    t.regex(result.output, /Image fails hash check|Signature verification failed/);
  }
});

test('sbverify refuses an image signed under another db certificate', async (t) => {
  const { identity } = await other;
  const signed = await signPeImage(makePeImage(), identity, 'fixture.efi');
  t.false((await sbverify(signed, (await project).dbPem)).ok);
});

test('signing is deterministic and replaces an existing signature instead of adding one', async (t) => {
  const { dbPem, identity } = await project;
  const image = makePeImage();
  const once = await signPeImage(image, identity, 'fixture.efi');
  t.deepEqual(await signPeImage(image, identity, 'fixture.efi'), once);
  const foreign = await signPeImage(image, (await other).identity, 'fixture.efi');
  const resigned = await signPeImage(foreign, identity, 'fixture.efi');
  t.deepEqual(resigned, once);
  const { stdout } = await run('sbverify', ['--list', writeTemp('resigned.efi', resigned)]);
  t.is(stdout.match(/^signature \d+/gm)?.length, 1);
  t.true((await sbverify(resigned, dbPem)).ok);
});

test('brl pads and lays out the signed image as sbsign does: both signed copies have the same image hash', async (t) => {
  const { identity } = await project;
  const image = makePeImage();
  const dir = mkdtempSync(join(scratch, 'sbsign-'));
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=sbsign', '-days', '1']);
  writeFileSync(join(dir, 'in.efi'), image);
  await run('sbsign', ['--key', join(dir, 'k.pem'), '--cert', join(dir, 'c.pem'), '--output', join(dir, 'out.efi'), join(dir, 'in.efi')]);
  const bySbsign = readFileSync(join(dir, 'out.efi'));
  const byBrl = await signPeImage(image, identity, 'fixture.efi');
  t.deepEqual(authenticodeHash(byBrl), authenticodeHash(bySbsign));
});

test('a file that is not a PE image is refused with its name', async (t) => {
  const { identity } = await project;
  const error = await t.throwsAsync(signPeImage(Buffer.from('#!/bin/sh\necho not efi\n'), identity, 'vmlinuz'));
  t.is((error as { code?: string }).code, 'NOT_A_PE_IMAGE');
  t.regex(error!.message, /vmlinuz/);
});

test('an Ed25519 key cannot sign Authenticode or OpenPGP: WRONG_KEY_TYPE naming the key', async (t) => {
  const ed25519 = new PrivateKeySigner(generateKeyPairSync('ed25519').privateKey, 'test:ed25519');
  const error = await t.throwsAsync(ed25519.sign(Buffer.from('data'), 'rsa-pkcs1v15-sha256'));
  t.is((error as { code?: string }).code, 'WRONG_KEY_TYPE');
  t.regex(error!.message, /test:ed25519: ed25519 keys cannot sign/);
});

test('a code-signing certificate that does not hold the signer\'s key is refused before signing', async (t) => {
  const { identity } = await project;
  const error = await t.throwsAsync(signPeImage(makePeImage(), { ...identity, signer: rsaSigner('stranger') }, 'fixture.efi'));
  t.is((error as { code?: string }).code, 'KEY_MISMATCH');
});

function writeTemp(name: string, bytes: Buffer): string {
  const path = join(mkdtempSync(join(scratch, 'file-')), name);
  writeFileSync(path, bytes);
  return path;
}
