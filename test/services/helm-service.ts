import type { StartedService } from '../global-setup.js';
import { locateHelm } from '../support/helm.js';

// Helm for the chart tests: not a server, just the binary that scripts/install/60-helm.sh built.
// A missing binary is not fatal to the whole run; the chart tests fail with the reason.

export const names = ['helm'];

export function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('helm')) return Promise.resolve({});
  return Promise.resolve({ helm: { info: locateHelm(), stop: () => undefined } });
}
