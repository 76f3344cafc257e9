// Finds repeated keys inside one JSON object, which JSON.parse silently collapses to the last one.

/** The JSON path (`$.updates[0].waves`) and key of the first repeated object key, if any. */
export function findDuplicateKey(text: string): { path: string; key: string } | undefined {
  // Each open container: its path, whether it is an object, the keys seen, the next array index.
  const stack: { path: string; isObject: boolean; keys: Set<string>; index: number; pendingKey?: string }[] = [];
  let expectKey = false;
  let position = 0;
  const childPath = (): string => {
    const top = stack.at(-1);
    if (!top) return '$';
    return top.isObject ? `${top.path}.${top.pendingKey ?? ''}` : `${top.path}[${top.index}]`;
  };
  while (position < text.length) {
    const char = text[position]!;
    if (char === '"') {
      let end = position + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const top = stack.at(-1);
      if (expectKey && top) {
        const key = JSON.parse(text.slice(position, end + 1)) as string;
        if (top.keys.has(key)) return { path: top.path, key };
        top.keys.add(key);
        top.pendingKey = key;
        expectKey = false;
      }
      position = end + 1;
      continue;
    }
    if (char === '{' || char === '[') {
      stack.push({ path: childPath(), isObject: char === '{', keys: new Set(), index: 0 });
      expectKey = char === '{';
    } else if (char === '}' || char === ']') {
      stack.pop();
      expectKey = false;
    } else if (char === ',') {
      const top = stack.at(-1);
      if (top?.isObject) expectKey = true;
      else if (top) top.index += 1;
    }
    position += 1;
  }
  return undefined;
}
