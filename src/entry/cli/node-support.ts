/** The oldest Node.js major pgrotate supports: package.json's engines.node is `>=22` (test/unit/node-support.test.ts). */
export const MIN_NODE_MAJOR = 22;

/**
 * The one line pgrotate writes to stderr when it runs on a Node.js older than it supports
 * (`version` as in process.versions.node); null on a supported one. It still runs there (npm
 * installs it with only a warning), so the demo works, but nothing is tested on such a Node.
 */
export function unsupportedNodeNotice(version: string): string | null {
  const major = Number(version.replace(/^v/, '').split('.')[0]);
  if (!Number.isInteger(major) || major >= MIN_NODE_MAJOR) return null;
  return (
    `pgrotate: Node.js v${version.replace(/^v/, '')} is not supported (end of life); ` +
    `pgrotate needs Node.js >=${MIN_NODE_MAJOR}, Node 24 LTS recommended: install it ` +
    `(https://nodejs.org/, or in a checkout: PATH="$(scripts/node-runtime.sh 24):$PATH") and run pgrotate with it\n`
  );
}
