import type { StartedService } from '../global-setup.js';
import { startKubeServer, stopKubeServer } from '../support/kube-server.js';

// A real Kubernetes API server (kube-apiserver + etcd, RBAC, ServiceAccount tokens) for the chart,
// the `kubernetes` provider, rollout restarts and OpenBao's kubernetes auth. One pair per run
// (~350 MB, 5–8 s to start). A missing build is not fatal to the whole run: the kube tests fail
// with the reason (scripts/install/80-kube-apiserver.sh builds it).

export const names = ['kube'];

export function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('kube')) return Promise.resolve({});
  const info = startKubeServer();
  return Promise.resolve({ kube: { info, stop: () => stopKubeServer(info) } });
}
