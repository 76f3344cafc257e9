// OVA for vmdk variants: the variant's template.ovf filled in, a SHA256 manifest, the disks, in one tar.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { XMLValidator } from 'fast-xml-parser';
import tar from 'tar-stream';
import { BrlError, ExitCode } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';

export const ovfTemplateName = 'template.ovf';

export interface OvaInput {
  templatePath: string;
  /** `P`; the OVA holds `P.ovf`, `P.mf` and the vmdks. */
  prefix: string;
  osVmdk: string;
  dataVmdk: string | undefined;
  /** Publish sizes (image-layout.md §10) in bytes. */
  osDiskBytes: number;
  dataDiskBytes: number | undefined;
  epoch: number;
}

/**
 * Refuses a template that is not well-formed XML, naming the line and column: hypervisors reject such
 * an OVA at import, long after the build. Checked before filling, so positions are the template's own.
 */
export function requireWellFormedOvf(template: string, source: string): void {
  const result = XMLValidator.validate(template);
  if (result === true) return;
  const { line, col, msg } = result.err;
  throw new BrlError(`${source}:${line}:${col}: not well-formed XML: ${msg}`, {
    hint: 'fix the template (xmllint --noout shows the same error), then build again',
    exitCode: ExitCode.badInput,
    code: 'BAD_OVF_TEMPLATE',
  });
}

/** Fills the placeholders; a placeholder left over (or one that does not apply) is an error. */
export function renderOvf(template: string, input: Omit<OvaInput, 'templatePath' | 'prefix' | 'epoch'>, source: string): string {
  requireWellFormedOvf(template, source);
  if (input.dataVmdk === undefined && /\{\{DATA_DISK(_BYTES)?\}\}/.test(template)) {
    throw new BrlError(`${source} refers to {{DATA_DISK}}, but the unified partition plan has no data disk`, {
      hint: 'remove the data disk from the template, or use partition-plan = "split"',
      exitCode: ExitCode.badInput,
      code: 'BAD_OVF_TEMPLATE',
    });
  }
  const values: Record<string, string> = {
    OS_DISK: basename(input.osVmdk),
    OS_DISK_BYTES: String(input.osDiskBytes),
    ...(input.dataVmdk === undefined ? {} : { DATA_DISK: basename(input.dataVmdk), DATA_DISK_BYTES: String(input.dataDiskBytes) }),
  };
  const filled = template.replace(/\{\{([A-Z_]+)\}\}/g, (match, name: string) => values[name] ?? match);
  const leftover = /\{\{[^}]*\}\}|\{\{|\}\}/.exec(filled);
  if (leftover) {
    throw new BrlError(`${source}: placeholder ${leftover[0]} is left after filling the template`, {
      hint: 'brl fills {{OS_DISK}}, {{OS_DISK_BYTES}}, {{DATA_DISK}} and {{DATA_DISK_BYTES}}; Secure Boot placeholders need uefi-secure-boot, which brl does not implement',
      exitCode: ExitCode.badInput,
      code: 'BAD_OVF_TEMPLATE',
    });
  }
  return filled;
}

/** Writes `<dir>/<prefix>.ova`; entries are owned by root and dated at the epoch, so the tar is reproducible. */
export async function writeOva(dir: string, input: OvaInput): Promise<string> {
  const ovf = Buffer.from(renderOvf(await readFile(input.templatePath, 'utf8'), input, input.templatePath));
  const disks = [input.osVmdk, ...(input.dataVmdk === undefined ? [] : [input.dataVmdk])];
  const ovfName = `${input.prefix}.ovf`;
  const lines = [`SHA256(${ovfName})= ${createHash('sha256').update(ovf).digest('hex')}`];
  for (const disk of disks) {
    lines.push(`SHA256(${basename(disk)})= ${(await hashFile(disk)).hex}`);
  }
  const manifest = Buffer.from(`${lines.join('\n')}\n`);
  const ovaPath = join(dir, `${input.prefix}.ova`);
  const pack = tar.pack();
  const header = (name: string, size: number) => ({ name, size, mode: 0o644, mtime: new Date(input.epoch * 1000), uid: 0, gid: 0, uname: 'root', gname: 'root' });
  const written = pipeline(pack, createWriteStream(ovaPath));
  pack.entry(header(ovfName, ovf.length), ovf);
  pack.entry(header(`${input.prefix}.mf`, manifest.length), manifest);
  for (const disk of disks) {
    const entry = pack.entry(header(basename(disk), (await stat(disk)).size));
    await pipeline(createReadStream(disk), entry);
  }
  pack.finalize();
  await written;
  return ovaPath;
}
