// os-release(5) parsing: KEY=value assignments with shell-style quoting; comments and blank lines skipped.

/**
 * The assignments in an os-release file, quotes removed. In double quotes a backslash escapes
 * `"`, `\`, `$` and a backquote (shell style, as os-release(5) asks of writers); in single quotes
 * nothing is special. Lines that are not assignments are skipped; the last assignment of a key wins.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(trimmed);
    if (match) fields[match[1] as string] = unquote(match[2] as string);
  }
  return fields;
}

function unquote(value: string): string {
  const quote = value[0];
  if (value.length < 2 || (quote !== '"' && quote !== "'") || !value.endsWith(quote)) return value;
  const inner = value.slice(1, -1);
  return quote === '"' ? inner.replace(/\\(["\\$`])/g, '$1') : inner;
}
