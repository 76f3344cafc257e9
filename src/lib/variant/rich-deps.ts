// RPM rich (boolean) dependencies: `(A if B else C)`, `(A or B)`, … parsed into a small tree.
import { SenseFlags } from '../packages/rpm.ts';

export type DepTree =
  | { kind: 'dep'; name: string; flags: number; version: string }
  | { kind: 'and' | 'or' | 'with' | 'without'; terms: DepTree[] }
  | { kind: 'if' | 'unless'; then: DepTree; condition: DepTree; otherwise: DepTree | undefined };

const operators: Readonly<Record<string, number>> = {
  '<': SenseFlags.less,
  '<=': SenseFlags.less | SenseFlags.equal,
  '=': SenseFlags.equal,
  '==': SenseFlags.equal,
  '>=': SenseFlags.greater | SenseFlags.equal,
  '>': SenseFlags.greater,
};

/** Parses `(…)`; throws Error with the offending text on bad syntax. */
export function parseRichDependency(text: string): DepTree {
  let pos = 0;
  const skipSpace = (): void => { while (pos < text.length && text[pos] === ' ') pos++; };
  const word = (): string => {
    skipSpace();
    let depth = 0;
    const start = pos;
    while (pos < text.length) {
      const c = text[pos] as string;
      if (c === ' ' && depth === 0) break;
      if (c === '(') depth++;
      if (c === ')') {
        if (depth === 0) break;
        depth--;
      }
      pos++;
    }
    return text.slice(start, pos);
  };
  const term = (): DepTree => {
    skipSpace();
    if (text[pos] === '(') return group();
    const name = word();
    if (name === '') throw new Error(`expected a capability at offset ${pos} in "${text}"`);
    const save = pos;
    const op = word();
    const flags = operators[op];
    if (flags === undefined) {
      pos = save;
      return { kind: 'dep', name, flags: 0, version: '' };
    }
    return { kind: 'dep', name, flags, version: word() };
  };
  const group = (): DepTree => {
    pos++; // '('
    const first = term();
    skipSpace();
    if (text[pos] === ')') { pos++; return first; }
    const op = word();
    if (op === 'if' || op === 'unless') {
      const condition = term();
      skipSpace();
      let otherwise: DepTree | undefined;
      if (text.startsWith('else', pos)) { word(); otherwise = term(); }
      close();
      return { kind: op, then: first, condition, otherwise };
    }
    if (op !== 'and' && op !== 'or' && op !== 'with' && op !== 'without') {
      throw new Error(`unknown operator "${op}" in "${text}"`);
    }
    const terms = [first, term()];
    for (;;) {
      skipSpace();
      if (text[pos] === ')') break;
      const next = word();
      if (next !== op) throw new Error(`mixed operators "${op}" and "${next}" need parentheses in "${text}"`);
      terms.push(term());
    }
    close();
    return { kind: op, terms };
  };
  const close = (): void => {
    skipSpace();
    if (text[pos] !== ')') throw new Error(`expected ")" at offset ${pos} in "${text}"`);
    pos++;
  };
  const tree = group();
  skipSpace();
  if (pos !== text.length) throw new Error(`unexpected "${text.slice(pos)}" in "${text}"`);
  return tree;
}
