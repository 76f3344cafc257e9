import test from 'ava';
import { parseTarget } from '../../../src/lib/host/apiserver/http.ts';

/** What the apiserver got from WHATWG URL parsing before plain targets were split by hand. */
function byUrl(target: string): { pathname: string; search: string; query: [string, string][] } {
  const url = new URL(target, 'http://localhost');
  const query = new Map<string, string>();
  for (const [name, value] of url.searchParams) if (!query.has(name)) query.set(name, value);
  return { pathname: url.pathname, search: url.search, query: [...query] };
}

test('request targets split by hand give the path, search and first query values that URL parsing gives', (t) => {
  const targets = [
    '/',
    '/settings',
    '/tx/commit?tx=bench-1-7',
    '/settings?keys=settings.motd,settings.ntp.options&keys=ignored',
    '/settings?',
    '/settings?&',
    '/settings?&&prefix=ntp&',
    '/settings?tx',
    '/settings?tx=&prefix=a=b',
    '/a//b?x=1',
    '/metadata/affected-services?keys=settings.motd',
    // Not plain: these take URL's path (escapes, '+', dot segments, '//' authority, fragments).
    '//settings',
    '/settings?tx=a+b',
    '/settings?keys=settings%2Emotd',
    '/sett%69ngs',
    '/tx/../settings?prefix=motd',
    '/settings?prefix=motd#fragment',
    '/settings?prefix=ünïcode',
  ];
  for (const target of targets) {
    const split = parseTarget(target);
    t.deepEqual({ pathname: split.pathname, search: split.search, query: [...split.query] }, byUrl(target), target);
  }
});
