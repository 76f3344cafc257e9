// `npm run test:vm`: the VM suite (test/vm/), booted under TCG. `npm test` runs the boot smoke test
// in test/e2e/ only; the package.json "ava" section is the main suite's configuration.
export default {
  files: ['test/vm/**/*.test.ts'],
  extensions: { ts: 'module' },
  require: ['./test/helpers/temp-dir.ts'],
  timeout: '20m',
  workerThreads: false,
  // Each VM takes a core under TCG: two at a time on the 2-core machines this project runs on.
  concurrency: 2,
};
