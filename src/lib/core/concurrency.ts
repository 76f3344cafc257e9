// Bounded concurrency: an async function over a list with at most N calls in flight; bounded waits.

/**
 * Calls `fn` on every item, at most `limit` at a time; the results keep the input order. After the
 * first failure no further call starts, and that failure is rethrown once the calls already running
 * have settled, so nothing is left working in the background when the caller moves on.
 */
export async function mapLimit<Item, Result>(
  items: readonly Item[],
  limit: number,
  fn: (item: Item, index: number) => Promise<Result>,
): Promise<Result[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`mapLimit: limit must be a positive integer, got ${limit}`);
  const results: Result[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as Item, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== undefined) throw failure.error;
  return results;
}

/**
 * Awaits every promise; when some reject, rethrows the rejection of the first in list order (not
 * the first in time), so the error a user sees for the same input does not depend on timing.
 */
export async function allInOrder<Result>(promises: readonly Promise<Result>[]): Promise<Result[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<Result>).value);
}

/** Waits for `promise` (its failure is thrown), or `ms` at most; no timer is left behind to hold the process. */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
