// RFC 3339 times and "2 days"-style offsets as manifests, wave policies and pubsys flags write them.

const rfc3339Pattern = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Milliseconds since the epoch of an RFC 3339 time; fractional seconds beyond milliseconds are
 * truncated (pubsys can write nanoseconds). Undefined when the text is not RFC 3339.
 */
export function parseRfc3339(text: string): number | undefined {
  const match = rfc3339Pattern.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction, zone] = match;
  const fields = [year, month, day, hour, minute, second].map(Number) as [number, number, number, number, number, number];
  const [y, mo, d, h, mi, s] = fields;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const base = Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59));
  if (new Date(base).getUTCDate() !== d) return undefined;
  const millis = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  let offsetMinutes = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  return base + millis - offsetMinutes * 60_000;
}

/** `YYYY-MM-DDTHH:MM:SSZ`, whole seconds (brl never writes fractional seconds). */
export function formatRfc3339(epochMillis: number): string {
  return new Date(Math.floor(epochMillis / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

const unitMillis: Record<string, number> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
};

/** Parses `"1 hour"`, `"30 minutes"`, `"in 2 days"` (pubsys offset syntax) to milliseconds. */
export function parseOffset(text: string): number | undefined {
  const match = /^\s*(?:in\s+)?(\d+)\s*(second|minute|hour|day|week)s?\s*$/i.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * unitMillis[match[2]!.toLowerCase()]!;
}
