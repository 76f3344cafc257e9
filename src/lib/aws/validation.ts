// What `brl ami validate` and `brl ssm validate` share: per-region checks run in parallel, a region the
// credentials cannot reach reported as such, the table, and the one error naming every mismatch.
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode, isBrlError } from '../core/errors.ts';
import { explainAwsError } from './errors.ts';

/** One compared value: an AMI field, or an SSM parameter's value. */
export interface Check {
  field: string;
  expected: string;
  actual: string;
  ok: boolean;
}

export type RegionStatus = 'ok' | 'mismatch' | 'unreachable';

export interface RegionValidation {
  region: string;
  status: RegionStatus;
  checks: Check[];
  /** Why the region could not be validated (status `unreachable`). */
  error?: string;
}

export interface ValidationResult {
  ok: boolean;
  regions: RegionValidation[];
}

export function check(field: string, expected: string, actual: string): Check {
  return { field, expected, actual, ok: expected === actual };
}

/**
 * Runs `checksFor` on every region, at most `concurrency` at a time. An AWS failure in one region (refused,
 * unreachable, still throttled after the SDK's retries) becomes that region's `unreachable` status, so the
 * other regions are still reported; missing credentials fail the whole run, and anything else is a bug.
 */
export async function validateRegions(regions: string[], concurrency: number, checksFor: (region: string) => Promise<Check[]>): Promise<ValidationResult> {
  const results = await mapLimit(regions, concurrency, async (region): Promise<RegionValidation> => {
    try {
      const checks = await checksFor(region);
      return { region, status: checks.every((c) => c.ok) ? 'ok' : 'mismatch', checks };
    } catch (error) {
      return { region, status: 'unreachable', checks: [], error: regionFailure(error) };
    }
  });
  return { ok: results.every((r) => r.status === 'ok'), regions: results };
}

function regionFailure(error: unknown): string {
  const explained = explainAwsError(error);
  if (isBrlError(explained)) {
    if (explained.code === 'NO_AWS_CREDENTIALS') throw explained;
    return explained.message;
  }
  const sdkError = explained as { name?: string; message?: string; $metadata?: { attempts?: number; httpStatusCode?: number }; $fault?: string };
  if (sdkError.$metadata === undefined && sdkError.$fault === undefined && sdkError.name !== 'TimeoutError') throw explained;
  const attempts = sdkError.$metadata?.attempts;
  return `${sdkError.name ?? 'Error'}: ${sdkError.message ?? ''}${attempts !== undefined && attempts > 1 ? ` (after ${attempts} attempts)` : ''}`;
}

/** One line per problem, naming the region and the field. */
export function describeProblems(result: ValidationResult): string[] {
  return result.regions.flatMap((r) =>
    r.status === 'unreachable'
      ? [`${r.region}: cannot validate: ${r.error ?? 'unknown error'}`]
      : r.checks.filter((c) => !c.ok).map((c) => `${r.region}: ${c.field} is ${c.actual}, expected ${c.expected}`),
  );
}

/** The error the command exits with: mismatches are a failed verification; only unreachable regions a plain failure. */
export function validationFailure(what: string, result: ValidationResult, hint: string): BrlError | undefined {
  const problems = describeProblems(result);
  if (problems.length === 0) return undefined;
  const mismatched = result.regions.some((r) => r.status === 'mismatch');
  return new BrlError(`${what} do not match in ${problems.length} place(s): ${problems.join('; ')}`, {
    hint: result.regions.some((r) => r.status === 'unreachable')
      ? `${hint}; for a region that cannot be validated, check that it is enabled for the account and that the credentials may read it there`
      : hint,
    exitCode: mismatched ? ExitCode.verifyFailed : ExitCode.failure,
    code: mismatched ? 'VALIDATION_MISMATCH' : 'VALIDATION_INCOMPLETE',
  });
}

/** The human table: one row per check, and one per region that could not be validated. */
export function validationTable(result: ValidationResult, fieldHeading: string): string[] {
  const rows: string[][] = [['REGION', fieldHeading, 'EXPECTED', 'ACTUAL', 'RESULT']];
  for (const r of result.regions) {
    if (r.status === 'unreachable') rows.push([r.region, '-', '-', '-', `unreachable: ${r.error ?? ''}`]);
    for (const c of r.checks) rows.push([r.region, c.field, c.expected, c.actual, c.ok ? 'ok' : 'MISMATCH']);
  }
  const widths = (rows[0] as string[]).map((_, column) => Math.max(...rows.map((row) => (row[column] as string).length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] as number))).join('  '));
}
