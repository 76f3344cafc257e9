// How host-ctr turns a container's output into journal lines: split, cut, prefixed, read no faster
// than the sink takes them.
import test from 'ava';
import { cutMarker, forwardLines, LineCutter } from '../../../src/lib/host/host-ctr/output.ts';

test('lines across chunks, a CR before the newline dropped, an empty line kept, the last line without a newline passed at the end', (t) => {
  const cutter = new LineCutter(64);
  t.deepEqual(cutter.push(Buffer.from('one\ntw')), ['one']);
  t.deepEqual(cutter.push(Buffer.from('o\r\n\nthr')), ['two', '']);
  t.deepEqual(cutter.push(Buffer.from('ee')), []);
  t.deepEqual(cutter.end(), ['three']);
  t.deepEqual(cutter.end(), [], 'nothing held any more');
});

test('a line longer than the limit is passed at once, cut with the marker; its rest is dropped up to its newline, across chunks', (t) => {
  const cutter = new LineCutter(8);
  t.deepEqual(cutter.push(Buffer.from('12345678')), [], 'exactly the limit: still whole');
  t.deepEqual(cutter.push(Buffer.from('\n')), ['12345678']);
  t.deepEqual(cutter.push(Buffer.from('abcdefghij')), [`abcdefgh${cutMarker(8)}`], 'passed on when cut, not at its newline');
  t.deepEqual(cutter.push(Buffer.from('x'.repeat(100_000))), [], 'the rest is dropped, nothing held');
  t.deepEqual(cutter.push(Buffer.from('yyy\nnext\n')), ['next']);
  t.deepEqual(cutter.push(Buffer.from('zzzzzzzzzzzz')), [`zzzzzzzz${cutMarker(8)}`]);
  t.deepEqual(cutter.end(), [], 'a cut line ending with the stream is not passed twice');
});

test('a cut never splits a UTF-8 character', (t) => {
  // "ü" is two bytes, "€" three, "𝄞" four: each straddles the 8-byte limit.
  for (const [input, kept] of [['1234567ü', '1234567'], ['123456€', '123456'], ['12345𝄞', '12345'], ['123456ü', '123456ü']] as const) {
    const cutter = new LineCutter(8);
    t.deepEqual(cutter.push(Buffer.from(`${input}tail\n`)), [`${kept}${cutMarker(8)}`], input);
  }
});

test('forwardLines prefixes each line and reads the next chunk only once the sink has taken the last one\'s lines', async (t) => {
  let pulled = 0;
  async function* source(): AsyncGenerator<Buffer> {
    for (let index = 0; index < 100; index++) {
      pulled++;
      yield Buffer.from(`line ${index}\n`);
    }
    yield Buffer.from('no newline');
  }
  const lines: string[] = [];
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const done = forwardLines(source(), 'admin: ', async (line) => {
    lines.push(line);
    if (lines.length === 1) await held;
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(pulled, 1, 'one chunk read while the sink is behind');
  t.deepEqual(lines, ['admin: line 0']);
  release();
  await done;
  t.is(lines.length, 101);
  t.is(lines[99], 'admin: line 99');
  t.is(lines[100], 'admin: no newline');
});
