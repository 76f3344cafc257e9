// Bottlerocket's gptprio attribute bits (GRUB gptprio.next, signpost) as pure functions on 64-bit GPT attributes.

/** Bits 48–51 of a BOOT entry: boot priority, 0 = never boot. */
export const PRIORITY_SHIFT = 48n;
/** Bits 52–55 of a BOOT entry: boot attempts left before the bank is given up. */
export const TRIES_LEFT_SHIFT = 52n;
/** Bit 56 of a BOOT entry: the bank has booted successfully. */
export const SUCCESSFUL_BIT = 56n;
/** Bit 57 of the PRIVATE entry: any boot of this disk has ever succeeded. */
export const BOOT_EVER_SUCCEEDED_BIT = 57n;

const NIBBLE = 0xfn;
const ATTRIBUTE_MASK = (1n << 64n) - 1n;

export interface GptPrioFlags {
  priority: number;
  triesLeft: number;
  successful: boolean;
}

function field(attributes: bigint, shift: bigint): number {
  return Number((attributes >> shift) & NIBBLE);
}

function withField(attributes: bigint, shift: bigint, value: number, name: string): bigint {
  if (!Number.isInteger(value) || value < 0 || value > 15) throw new RangeError(`gptprio ${name} must be 0–15, got ${value}`);
  return ((attributes & ~(NIBBLE << shift)) | (BigInt(value) << shift)) & ATTRIBUTE_MASK;
}

function withBit(attributes: bigint, bit: bigint, on: boolean): bigint {
  return (on ? attributes | (1n << bit) : attributes & ~(1n << bit)) & ATTRIBUTE_MASK;
}

export function priority(attributes: bigint): number {
  return field(attributes, PRIORITY_SHIFT);
}

export function setPriority(attributes: bigint, value: number): bigint {
  return withField(attributes, PRIORITY_SHIFT, value, 'priority');
}

export function triesLeft(attributes: bigint): number {
  return field(attributes, TRIES_LEFT_SHIFT);
}

export function setTriesLeft(attributes: bigint, value: number): bigint {
  return withField(attributes, TRIES_LEFT_SHIFT, value, 'tries left');
}

export function successful(attributes: bigint): boolean {
  return ((attributes >> SUCCESSFUL_BIT) & 1n) === 1n;
}

export function setSuccessful(attributes: bigint, value: boolean): bigint {
  return withBit(attributes, SUCCESSFUL_BIT, value);
}

export function bootEverSucceeded(privateAttributes: bigint): boolean {
  return ((privateAttributes >> BOOT_EVER_SUCCEEDED_BIT) & 1n) === 1n;
}

export function setBootEverSucceeded(privateAttributes: bigint, value: boolean): bigint {
  return withBit(privateAttributes, BOOT_EVER_SUCCEEDED_BIT, value);
}

export function decodeGptPrio(attributes: bigint): GptPrioFlags {
  return { priority: priority(attributes), triesLeft: triesLeft(attributes), successful: successful(attributes) };
}

/** Sets the three gptprio fields, keeping every other attribute bit. */
export function encodeGptPrio(attributes: bigint, flags: GptPrioFlags): bigint {
  return setSuccessful(setTriesLeft(setPriority(attributes, flags.priority), flags.triesLeft), flags.successful);
}

/** signpost's `will_boot`: (priority > 0 and tries left) or successful. */
export function willBoot(flags: GptPrioFlags): boolean {
  return (flags.priority > 0 && flags.triesLeft > 0) || flags.successful;
}

/** Whether GRUB's gptprio.next may pick the bank: priority > 0 and (tries left or successful). */
export function grubCandidate(flags: GptPrioFlags): boolean {
  return flags.priority > 0 && (flags.triesLeft > 0 || flags.successful);
}

/** BOOT-A of a fresh image: priority 1, no tries, successful (bits 48 and 56). */
export const FRESH_BOOT_A_ATTRIBUTES = encodeGptPrio(0n, { priority: 1, triesLeft: 0, successful: true });
