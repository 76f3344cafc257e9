// `brl doctor`: which host tools are present, and the command that installs the missing ones.
import { BrlError, ExitCode } from '../core/errors.ts';
import { checkHostTools, hostTools, installCommand, type HostTool, type HostToolUse, type ToolStatus } from './host-tools.ts';

export interface DoctorResult {
  tools: ToolStatus[];
  /** Missing tools by what they are needed for; brl cannot build while `build` is not empty. */
  missing: Record<HostToolUse, string[]>;
  /** Installs every missing tool; absent when nothing is missing. */
  installCommand?: string;
}

export function runDoctor(tools: readonly HostTool[] = hostTools): DoctorResult {
  const statuses = checkHostTools(tools);
  const absent = statuses.filter((tool) => tool.path === undefined);
  const missingFor = (use: HostToolUse) => absent.filter((tool) => tool.use === use).map((tool) => tool.command);
  return {
    tools: statuses,
    missing: { build: missingFor('build'), test: missingFor('test'), vm: missingFor('vm') },
    ...(absent.length > 0 ? { installCommand: installCommand(absent, process.getuid?.() === 0) } : {}),
  };
}

/** Throws the doctor message when any of `commands` is missing; used before work that needs them. */
export function requireHostTools(commands: readonly string[]): void {
  const wanted = hostTools.filter((tool) => commands.includes(tool.command));
  const missing = checkHostTools(wanted).filter((tool) => tool.path === undefined);
  if (missing.length === 0) return;
  const names = missing.map((tool) => tool.command).join(', ');
  throw new BrlError(`missing host tools: ${names}`, {
    hint: `install them with: ${installCommand(missing, process.getuid?.() === 0)} (brl doctor lists every tool)`,
    exitCode: ExitCode.missingTool,
    code: 'MISSING_HOST_TOOL',
  });
}
