// TUF times: `expires` as whole-second UTC strings, human durations ("2 weeks") and limits ("in 3 days").
import { BrlError, ExitCode, isBrlError } from '../core/errors.ts';

const expiresPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/;

/** `YYYY-MM-DDTHH:MM:SSZ`; tough re-serializes this exact shape, so never `.000Z`. */
export function formatExpires(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Seconds since the epoch, fractions kept (pubsys may write nanoseconds). Parsed by hand so that
 * a stored string is compared, never rewritten.
 */
export function parseExpires(text: string): number | undefined {
  const match = expiresPattern.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction] = match;
  const whole = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  if (Number.isNaN(whole)) return undefined;
  return whole / 1000 + (fraction ? Number(`0${fraction}`) : 0);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const unitSeconds: Record<string, number> = {
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86_400, day: 86_400, days: 86_400,
  w: 604_800, week: 604_800, weeks: 604_800,
};

/** "2 weeks", "30m", "1 day 12 hours" → seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const pattern = /(\d+)\s*([a-z]+)/giy;
  const trimmed = text.trim();
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(trimmed)) !== null) {
    const unit = unitSeconds[match[2]!.toLowerCase()];
    if (unit === undefined) break;
    total += Number(match[1]) * unit;
    consumed = pattern.lastIndex;
    while (trimmed[pattern.lastIndex] === ' ') pattern.lastIndex += 1;
  }
  if (consumed === 0 || consumed !== trimmed.length) {
    throw new BrlError(`${what} ${JSON.stringify(text)} is not a duration`, {
      hint: 'write a number and a unit, e.g. "2 weeks", "3 days", "12 hours" or "30m"',
      exitCode: ExitCode.badInput,
      code: 'BAD_DURATION',
    });
  }
  return total;
}

/** An RFC 3339 time, "in 3 days" or "3 days" (from `now`) → epoch seconds. */
export function parseTimeSpec(text: string, now: number, what = 'time'): number {
  const trimmed = text.trim();
  if (/^\d{4}-\d{2}-\d{2}T/.test(trimmed)) {
    const milliseconds = Date.parse(trimmed);
    if (Number.isNaN(milliseconds)) {
      throw new BrlError(`${what} ${JSON.stringify(text)} is not an RFC 3339 time`, {
        hint: 'write e.g. 2026-12-01T00:00:00Z or "in 3 days"',
        exitCode: ExitCode.badInput,
        code: 'BAD_TIME',
      });
    }
    return Math.floor(milliseconds / 1000);
  }
  try {
    return now + parseDuration(trimmed.replace(/^in\s+/i, ''), what);
  } catch (error) {
    if (!isBrlError(error)) throw error;
    // Both forms are accepted here, so the message must not suggest only one.
    throw new BrlError(`${what} ${JSON.stringify(text)} is neither an RFC 3339 time nor a duration`, {
      hint: 'write e.g. 2026-12-01T00:00:00Z, "in 3 days" or "12 hours"',
      exitCode: ExitCode.badInput,
      code: 'BAD_TIME',
    });
  }
}
