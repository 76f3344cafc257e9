// thar-be-updates inside the apiserver: the update state machine, its status file, and updog calls.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'smol-toml';
import { errnoCode, isBrlError } from '../../core/errors.ts';
import type { Bank } from '../../image/banks.ts';
import { brlInstallDir } from '../../core/paths.ts';
import { writeFileAtomic } from '../../core/fs.ts';
import { runHostCommand } from '../commands.ts';
import { compareVersions } from '../datastore/layout.ts';
import type { OsInfo } from '../os-release.ts';
import { HttpError } from './http.ts';

/** brl's own updog host program, for `brl` commands run outside a host image. */
export const BRL_UPDOG = join(brlInstallDir, 'bin', 'updog');

export type UpdateState = 'Idle' | 'Available' | 'Staged' | 'Ready';
export type UpdateCommand = 'refresh' | 'prepare' | 'activate' | 'deactivate';

export interface UpdateImage {
  arch: string;
  version: string;
  variant: string;
}

export interface PartitionInfo {
  image: UpdateImage;
  next_to_boot: boolean;
}

export interface UpdateStatus {
  update_state: UpdateState;
  available_updates: string[];
  chosen_update: UpdateImage | null;
  active_partition: PartitionInfo;
  staging_partition: PartitionInfo | null;
  /**
   * brl: set when the host came up after GRUB gave up on the inactive set (an activated update that
   * did not boot); kept until an update is staged again. Upstream cannot tell a fallback from a boot.
   */
  failed_update?: FailedUpdate | null;
  most_recent_command: {
    cmd_type: UpdateCommand;
    cmd_status: 'Success' | 'Failed' | 'Unknown';
    timestamp: string;
    exit_status: number;
    stderr: string;
  } | null;
}

export interface FailedUpdate {
  /** The release that did not boot, from updog's record of what it staged; null if that is gone. */
  image: UpdateImage | null;
  partition_set: Bank;
  reason: string;
}

export interface UpdateControllerOptions {
  root: string;
  statusPath: string;
  configPath: string;
  /** The updog program and leading arguments; `--root <root>` is appended to every call. */
  updogCommand: readonly string[];
  os: () => Promise<OsInfo>;
  /** The OS disk; default: the disk holding the booted BOOT partition. */
  disk?: string;
  /** Where each action's outcome and updog's messages go (the server's log, i.e. the journal). */
  log?: (line: string) => void;
}

const ALLOWED_FROM: Record<UpdateCommand, readonly UpdateState[]> = {
  refresh: ['Idle', 'Available', 'Staged', 'Ready'],
  prepare: ['Available', 'Staged'],
  activate: ['Staged'],
  deactivate: ['Ready'],
};

/**
 * One update action at a time (423 while one runs, and for status reads meanwhile); the action is
 * checked against the state first (409/404), answered 204, then runs updog in the background.
 */
export class UpdateController {
  private running: Promise<void> | undefined;
  private readonly options: UpdateControllerOptions;

  constructor(options: UpdateControllerOptions) {
    this.options = options;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  async status(): Promise<UpdateStatus> {
    if (this.running) throw new HttpError(423, 'Unable to obtain shared lock for reading update status');
    const status = await this.readStatus();
    if (status) return status;
    // A host that fell back says so at once; otherwise the status starts at the first action, as upstream's.
    const failed = await this.bootFailure();
    if (!failed) throw new HttpError(404, 'Update status is uninitialized, refresh-updates to initialize it');
    const initial = await this.initialStatus(failed);
    await this.writeStatus(initial);
    return initial;
  }

  /** Validates and starts `command`; resolves once it has started (the API answers 204 then). */
  async start(command: UpdateCommand): Promise<void> {
    if (this.running) throw new HttpError(423, 'Update lock held: another update action is in progress');
    const status = (await this.readStatus()) ?? (await this.initialStatus(await this.bootFailure()));
    if (!ALLOWED_FROM[command].includes(status.update_state)) {
      throw new HttpError(409, `Update action '${command}' is not allowed in state '${status.update_state}'`);
    }
    if (command === 'prepare' && !status.chosen_update) throw new HttpError(404, 'Update does not exist');
    if (command === 'activate' && !status.staging_partition) throw new HttpError(404, 'No staged image');
    const work = this.run(command, status).finally(() => {
      this.running = undefined;
    });
    this.running = work;
  }

  /** Resolves when no action is running (for tests and shutdown). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(command: UpdateCommand, status: UpdateStatus): Promise<void> {
    const next: UpdateStatus = structuredClone(status);
    const os = await this.options.os();
    let args: string[];
    switch (command) {
      case 'refresh':
        args = ['whats', '--all', '--json'];
        break;
      case 'prepare':
        args = ['update-image', '--image', (status.chosen_update as UpdateImage).version, '--json'];
        break;
      case 'activate':
        args = ['update-apply'];
        break;
      case 'deactivate':
        args = ['update-revert'];
        break;
    }
    const outcome = await runHostCommand([...this.options.updogCommand, ...args, '--root', this.options.root], {
      root: '/',
      timeoutMs: 3_600_000,
    });
    let exitStatus = outcome.exitCode ?? 1;
    let stderr = outcome.stderr.trim() || outcome.note || '';
    if (outcome.status === 'ok') {
      try {
        this.transition(command, next, outcome.stdout, os);
      } catch (error) {
        exitStatus = 1;
        stderr = `could not read updog output: ${(error as Error).message}`;
      }
    }
    const succeeded = outcome.status === 'ok' && exitStatus === 0;
    this.options.log?.(`update action ${command}: ${succeeded ? 'Success' : `Failed (exit ${exitStatus})`}`);
    for (const line of outcome.stderr.split('\n').filter((text) => text.trim() !== '')) this.options.log?.(`updog: ${line}`);
    const final = succeeded ? next : status;
    final.most_recent_command = {
      cmd_type: command,
      cmd_status: succeeded ? 'Success' : 'Failed',
      timestamp: nanoTimestamp(),
      exit_status: succeeded ? 0 : exitStatus,
      stderr: succeeded ? '' : stderr,
    };
    await this.writeStatus(final);
  }

  private transition(command: UpdateCommand, status: UpdateStatus, stdout: string, os: OsInfo): void {
    switch (command) {
      case 'refresh': {
        const updates = parseUpdates(stdout);
        status.available_updates = [...new Set(updates.map((update) => update.version))].sort((a, b) =>
          compareVersions(b, a),
        );
        if (status.update_state === 'Idle' || status.update_state === 'Available') {
          status.chosen_update = this.choose(updates, os);
          status.update_state = status.chosen_update ? 'Available' : 'Idle';
        }
        return;
      }
      case 'prepare':
        status.failed_update = null;
        status.staging_partition = { image: status.chosen_update as UpdateImage, next_to_boot: false };
        status.update_state = 'Staged';
        return;
      case 'activate':
        (status.staging_partition as PartitionInfo).next_to_boot = true;
        status.active_partition.next_to_boot = false;
        status.update_state = 'Ready';
        return;
      case 'deactivate':
        if (status.staging_partition) status.staging_partition.next_to_boot = false;
        status.active_partition.next_to_boot = true;
        status.update_state = 'Staged';
        return;
    }
  }

  private choose(updates: UpdateImage[], os: OsInfo): UpdateImage | null {
    const lock = this.versionLock;
    const candidates = updates.filter((update) => update.version !== os.version_id);
    if (lock === 'latest') {
      const newer = candidates.filter((update) => compareVersions(update.version, os.version_id) > 0);
      newer.sort((a, b) => compareVersions(b.version, a.version));
      return newer[0] ?? null;
    }
    return candidates.find((update) => update.version === lock.replace(/^v/, '')) ?? null;
  }

  private versionLock = 'latest';

  private bootFailureRead: Promise<FailedUpdate | null> | undefined;

  /**
   * Whether GRUB gave up on the inactive set; read once per server (per boot): until an action runs
   * (and writes the status) nothing changes the flags, and a 404 must not read the disk each time.
   */
  private bootFailure(): Promise<FailedUpdate | null> {
    this.bootFailureRead ??= this.readBootFailure().catch((error: unknown) => {
      this.bootFailureRead = undefined;
      throw error;
    });
    return this.bootFailureRead;
  }

  /** The GPT's answer: null when GRUB did not give up on the inactive set (or there is no A/B disk). */
  private async readBootFailure(): Promise<FailedUpdate | null> {
    // Loaded here, not at start-up: the GPT code is only needed once per boot.
    const [{ failedInactiveSet }, { readStagedRecord }] = await Promise.all([import('../../signpost/signpost.ts'), import('../../updog/staged-record.ts')]);
    let failure;
    try {
      failure = await failedInactiveSet({ root: this.options.root, ...(this.options.disk === undefined ? {} : { disk: this.options.disk }) });
    } catch (error) {
      // No booted disk to read (a root directory in tests, a host without A/B sets): nothing failed.
      if (isBrlError(error)) return null;
      throw error;
    }
    if (!failure) return null;
    const { inactive, active } = failure;
    const record = await readStagedRecord(this.options.root);
    const image = record?.set === inactive.label && record.bootPartUuid === inactive.boot.uniqueGuid ? record.image : null;
    const what = image ? `update ${image.version}` : 'the update';
    return {
      image,
      partition_set: inactive.label,
      reason: `${what} in partition set ${inactive.label} was tried and did not boot; the host fell back to set ${active.label}`,
    };
  }

  private async initialStatus(failed: FailedUpdate | null): Promise<UpdateStatus> {
    const os = await this.options.os();
    this.versionLock = await this.readVersionLock();
    return {
      update_state: 'Idle',
      available_updates: [],
      chosen_update: null,
      active_partition: { image: { arch: os.arch, version: os.version_id, variant: os.variant_id }, next_to_boot: true },
      staging_partition: null,
      failed_update: failed,
      most_recent_command: null,
    };
  }

  private async readVersionLock(): Promise<string> {
    try {
      const config = parse(await readFile(this.options.configPath, 'utf8')) as { 'version-lock'?: unknown; version_lock?: unknown };
      const lock = config['version-lock'] ?? config.version_lock;
      return typeof lock === 'string' ? lock : 'latest';
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return 'latest';
      throw error;
    }
  }

  private async readStatus(): Promise<UpdateStatus | undefined> {
    this.versionLock = await this.readVersionLock();
    try {
      return JSON.parse(await readFile(this.options.statusPath, 'utf8')) as UpdateStatus;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  private async writeStatus(status: UpdateStatus): Promise<void> {
    await mkdir(dirname(this.options.statusPath), { recursive: true, mode: 0o755 });
    await writeFileAtomic(this.options.statusPath, `${JSON.stringify(status)}\n`);
  }
}

/** `updog whats --all --json`: an array of Update objects (or one object); only arch/version/variant are kept. */
function parseUpdates(stdout: string): UpdateImage[] {
  const trimmed = stdout.trim();
  if (trimmed.length === 0) return [];
  const parsed = JSON.parse(trimmed) as unknown;
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.map((item) => {
    const update = item as Partial<UpdateImage>;
    if (typeof update.version !== 'string' || typeof update.variant !== 'string' || typeof update.arch !== 'string') {
      throw new Error('an update lacks arch, version or variant');
    }
    return { arch: update.arch, version: update.version, variant: update.variant };
  });
}

let lastNanos = 0n;

/** RFC 3339 UTC with nanoseconds, strictly increasing so clients can tell two commands apart. */
function nanoTimestamp(): string {
  let nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  if (nanos <= lastNanos) nanos = lastNanos + 1n;
  lastNanos = nanos;
  const millis = Number(nanos / 1_000_000n);
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(millis).toISOString().slice(0, 19)}.${fraction}Z`;
}
