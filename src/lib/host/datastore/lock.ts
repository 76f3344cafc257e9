// An in-process readers/writer lock: many readers, or one writer, in arrival order.

export class ReadWriteLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: { write: boolean; grant: () => void }[] = [];

  /** Nobody holds or waits for the lock: work done synchronously now cannot overlap a holder's. */
  get free(): boolean {
    return !this.writer && this.readers === 0 && this.waiting.length === 0;
  }

  async read<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await work();
    } finally {
      this.readers -= 1;
      this.pump();
    }
  }

  async write<T>(work: () => Promise<T>): Promise<T> {
    // Uncontended (the common case: every PATCH and commit batch), the lock is taken at once
    // rather than through a queued grant and its extra promise.
    if (this.writer || this.readers > 0 || this.waiting.length > 0) await this.acquire(true);
    else this.writer = true;
    try {
      return await work();
    } finally {
      this.writer = false;
      this.pump();
    }
  }

  private acquire(write: boolean): Promise<void> {
    return new Promise((grant) => {
      this.waiting.push({ write, grant });
      this.pump();
    });
  }

  /** Grants waiters in order; a waiting writer blocks later readers so writers never starve. */
  private pump(): void {
    while (this.waiting.length > 0 && !this.writer) {
      const next = this.waiting[0] as { write: boolean; grant: () => void };
      if (next.write) {
        if (this.readers > 0) return;
        this.writer = true;
      } else {
        this.readers += 1;
      }
      this.waiting.shift();
      next.grant();
    }
  }
}
