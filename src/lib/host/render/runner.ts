// Runs applies one at a time after the API has answered, and keeps their reports for GET /apply-status.
import type { Datastore } from '../datastore/store.ts';
import type { JsonObject } from '../datastore/tree.ts';
import { applyFailed, executePlan, planApply, type ApplyReport } from './apply.ts';

const HISTORY = 20;

export class ApplyRunner {
  private nextId = 1;
  private tail: Promise<void> = Promise.resolve();
  private readonly reports: ApplyReport[] = [];

  private readonly store: Datastore;
  private readonly root: string;
  private readonly os: () => Promise<JsonObject>;

  constructor(store: Datastore, root: string, os: () => Promise<JsonObject>) {
    this.store = store;
    this.root = root;
    this.os = os;
  }

  /** Queues an apply; the returned report is filled in as it runs. */
  schedule(keys: readonly string[] | 'all'): ApplyReport {
    const report: ApplyReport = {
      id: this.nextId++,
      keys: keys === 'all' ? 'all' : [...keys],
      state: 'running',
      startedAt: new Date().toISOString(),
      files: [],
      services: [],
    };
    this.reports.push(report);
    if (this.reports.length > HISTORY) this.reports.shift();
    this.tail = this.tail.then(() => this.run(report));
    return report;
  }

  /** Resolves once every apply scheduled so far has finished. */
  async idle(): Promise<void> {
    await this.tail;
  }

  /** Most recent last. */
  history(): ApplyReport[] {
    return [...this.reports];
  }

  private async run(report: ApplyReport): Promise<void> {
    try {
      const plan = planApply(this.store, this.root, report.keys);
      await executePlan(
        this.store,
        plan,
        {
          root: this.root,
          os: await this.os(),
          strict: report.keys !== 'all',
          changedKeys: report.keys === 'all' ? [] : report.keys,
        },
        report,
      );
    } catch (error) {
      report.error = (error as Error).message;
    }
    report.state = applyFailed(report) ? 'failed' : 'succeeded';
    report.finishedAt = new Date().toISOString();
  }
}
