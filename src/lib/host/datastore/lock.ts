// The datastore's writer lock: one holder at a time, in arrival order (PATCHes and discards that
// write pending/ files, and commit batches, which must not interleave with them).

export class WriteLock {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  /** Nobody holds the lock (waiters queue only behind a holder): work done synchronously now cannot overlap a holder's. */
  get free(): boolean {
    return !this.held;
  }

  async write<T>(work: () => Promise<T>): Promise<T> {
    // Uncontended, the lock is taken at once; otherwise the holder hands it over when it is done.
    if (this.held) await new Promise<void>((grant) => this.waiting.push(grant));
    else this.held = true;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next === undefined) this.held = false;
      else next();
    }
  }
}
