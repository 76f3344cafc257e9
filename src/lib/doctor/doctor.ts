// `brl doctor`: which host tools are present, and the command that installs the missing ones.
import { BrlError, ExitCode } from '../core/errors.ts';
import { checkHostTools, hostTools, installCommand, type HostTool, type ToolStatus } from './host-tools.ts';

export interface DoctorResult {
  tools: ToolStatus[];
  missingRequired: string[];
  missingOptional: string[];
  /** Installs every missing tool, required or optional; absent when nothing is missing. */
  installCommand?: string;
}

export function runDoctor(tools: readonly HostTool[] = hostTools): DoctorResult {
  const statuses = checkHostTools(tools);
  const missing = statuses.filter((tool) => tool.path === undefined);
  const isRoot = process.getuid?.() === 0;
  return {
    tools: statuses,
    missingRequired: missing.filter((tool) => !tool.optional).map((tool) => tool.command),
    missingOptional: missing.filter((tool) => tool.optional).map((tool) => tool.command),
    ...(missing.length > 0 ? { installCommand: installCommand(missing, isRoot) } : {}),
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
