// A tiny XML writer for the fake's EC2 and STS Query responses.

/** A value the writer turns into elements: scalars become text, arrays become `<item>` lists. */
export type XmlValue = string | number | boolean | undefined | XmlValue[] | { [tag: string]: XmlValue };

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

export function toXml(value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((item) => `<item>${toXml(item)}</item>`).join('');
  if (typeof value === 'object') {
    return Object.entries(value)
      .filter(([, child]) => child !== undefined)
      .map(([tag, child]) => `<${tag}>${toXml(child)}</${tag}>`)
      .join('');
  }
  return escapeXml(String(value));
}

export function xmlDocument(root: string, namespace: string, body: XmlValue): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${namespace}">${toXml(body)}</${root}>`;
}
