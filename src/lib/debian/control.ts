// Debian control data (deb822 stanzas) and the relation fields of binary package indices.
import type { RelationOperator } from './version.ts';

export type Stanza = Map<string, string>;

/** Splits deb822 text into stanzas; field names keep their case, continuation lines are joined with "\n". */
export function parseStanzas(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza = new Map();
  let lastField: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      lastField = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (lastField !== undefined) current.set(lastField, `${current.get(lastField)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    lastField = line.slice(0, colon);
    current.set(lastField, line.slice(colon + 1).trim());
  }
  if (current.size > 0) stanzas.push(current);
  return stanzas;
}

export interface Relation {
  name: string;
  /** `:any` or `:native` from a Multi-Arch qualifier; brl resolves one architecture, so it only notes it. */
  qualifier?: string;
  version?: { operator: RelationOperator; value: string };
}

/** One clause of a relation field: any one alternative satisfies it. */
export type Alternatives = Relation[];

const relationPattern = /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>)?$/;

/** Parses `Depends:`-style text: comma-separated clauses of `|`-separated alternatives. */
export function parseRelations(text: string | undefined, field = 'relation'): Alternatives[] {
  if (text === undefined || text.trim() === '') return [];
  return text.split(',').map((clause) =>
    clause.split('|').map((alternative) => {
      const trimmed = alternative.trim().replace(/\s+/g, ' ');
      const match = relationPattern.exec(trimmed);
      if (match === null) throw new Error(`cannot parse ${field} "${trimmed}"`);
      const [, name = '', qualifier, operator, value] = match;
      const relation: Relation = { name };
      if (qualifier !== undefined) relation.qualifier = qualifier;
      // `<` and `>` are obsolete spellings of `<=` and `>=`.
      if (operator !== undefined && value !== undefined) {
        relation.version = { operator: operator === '<' ? '<=' : operator === '>' ? '>=' : (operator as RelationOperator), value };
      }
      return relation;
    }),
  );
}

export function formatRelation(relation: Relation): string {
  return relation.version === undefined ? relation.name : `${relation.name} (${relation.version.operator} ${relation.version.value})`;
}
