// Entry of a detached VM supervisor (`brl vm run --wait-ready`): node supervisor-main.(ts|js) <vm.json>.
import { readFileSync } from 'node:fs';
import { superviseVm, type VmSpec } from './supervise.ts';

const specFile = process.argv[2];
if (specFile === undefined) {
  console.error('usage: supervisor-main <vm.json>');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as VmSpec;
process.exit((await superviseVm(spec)).exitCode);
