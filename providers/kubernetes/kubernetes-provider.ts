import { CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { ProviderError } from '../../src/core/errors.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import { PendingConflictError } from '../../src/core/provider/pending-conflict-error.js';
import type { RotatedSecretValue, SecretProvider, SecretValue } from '../../src/core/provider/secret-provider.js';
import type { ProviderDeps } from '../provider-deps.js';
import type { KubernetesProviderConfig } from './kubernetes-config.js';
import { ConcurrentWriteError, kubeError, statusOf, type KubeCall } from './kubernetes-errors.js';
import { companionName } from './kubernetes-names.js';
import {
  companionEntry,
  companionValue,
  credentialData,
  credentialOf,
  type SecretData,
} from './kubernetes-secret-data.js';

// Kubernetes Secrets in one namespace.
//  - current:  the Secret `<secret>`, one data key per field of the secret format: what pods mount
//    or read as env. Keys pgrotate does not own (and the Secret's type, labels, annotations) stay.
//  - pending, previous: the companion Secret `<secret>-pgrotate` (labelled as pgrotate's), keys
//    `pending` and `previous`, each the JSON of the secret format. Consumers never read it; their
//    RBAC should not cover it. Pending is cleared by an update, never a delete, so pgrotate's Role
//    needs no delete verb; the companion stays, holding `previous`.
// Every update is a replace carrying the resourceVersion pgrotate read, so a concurrent writer
// gets the API server's 409 Conflict instead of being overwritten. A promote that meets one reads
// the Secret again and merges once more (a controller touching a label keeps its change); a
// second conflict fails the promote (ConcurrentWriteError), and the rotation resumes it later.
// A rotation costs six calls: stage (get companion, create or replace it), promote (get
// companion, get current, replace or create current, replace companion).

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const COMPANION_OF_LABEL = 'pgrotate.io/companion-of';

export interface KubernetesProviderOptions {
  name: string;
  namespace: string;
  /** The API client (built from the ServiceAccount or a kubeconfig). */
  api: CoreV1Api;
  redactor?: Redactor | undefined;
}

/** Secret store on Kubernetes Secrets. */
export class KubernetesProvider implements SecretProvider {
  readonly name: string;
  private readonly namespace: string;
  private readonly api: CoreV1Api;
  private readonly redactor: Redactor | undefined;

  constructor(opts: KubernetesProviderOptions) {
    this.name = opts.name;
    this.namespace = opts.namespace;
    this.api = opts.api;
    this.redactor = opts.redactor;
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    const s = await this.read(secret, secret);
    return s ? this.remember(credentialOf(s.data, this.where(secret))) : null;
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    const c = await this.read(companionName(secret), secret);
    return this.remember(companionValue(c?.data, 'pending', this.where(secret)));
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    const c = await this.read(companionName(secret), secret);
    return this.remember(companionValue(c?.data, 'previous', this.where(secret)));
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    this.redactor?.add(value.password);
    // One retry: a 409 means another process staged or cleared at the same time; reading again
    // shows which (its own rotation id, another one, or none).
    for (let attempt = 0; ; attempt++) {
      const c = await this.read(companionName(secret), secret);
      const existing = companionValue(c?.data, 'pending', this.where(secret));
      if (existing?.rotationId === value.rotationId) return this.remember(existing) as SecretValue;
      if (existing) {
        this.remember(existing);
        throw new PendingConflictError(
          `provider ${this.name}: secret ${this.namespace}/${secret} already has a pending value (in ${companionName(secret)}) of rotation ${existing.rotationId ?? '(none)'}`,
          existing,
          { secret },
        );
      }
      try {
        await this.writeCompanion(secret, c, { ...(c?.data ?? {}), pending: companionEntry(value) });
        return value;
      } catch (err) {
        if (!(err instanceof ConcurrentWriteError) || attempt > 0) throw err;
      }
    }
  }

  async promotePending(secret: string, rotationId: string): Promise<void> {
    const c = await this.read(companionName(secret), secret);
    const pending = companionValue(c?.data, 'pending', this.where(secret));
    const current = await this.read(secret, secret);
    const currentValue = current ? credentialOf(current.data, this.where(secret)) : null;
    if (pending?.rotationId !== rotationId) {
      if (currentValue?.rotationId === rotationId) return; // promoted already
      throw new ProviderError(
        `provider ${this.name}: secret ${this.namespace}/${secret} has no pending value of rotation ${rotationId} to promote`,
        { secret },
      );
    }
    this.remember(pending);
    let previous = currentValue;
    if (currentValue?.rotationId !== rotationId) previous = await this.writeCurrent(secret, current, pending);
    // Clear pending (an update: pgrotate needs no delete) and keep what it replaced as previous.
    const data: SecretData = { ...(c?.data ?? {}) };
    delete data.pending;
    if (previous && previous.rotationId !== rotationId) data.previous = companionEntry(previous);
    await this.writeCompanion(secret, c, data).catch(async (err: unknown) => {
      if (!(err instanceof ConcurrentWriteError)) throw err;
      await this.clearPending(secret, rotationId, previous?.rotationId !== rotationId ? previous : null);
    });
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    await this.clearPending(secret, rotationId, null);
  }

  async close(): Promise<void> {
    // client-node keeps no connection state that needs closing.
  }

  /** Remove `rotationId`'s pending value (re-reading once on a conflict), optionally setting previous. */
  private async clearPending(secret: string, rotationId: string, previous: SecretValue | null): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.read(companionName(secret), secret);
      if (companionValue(c?.data, 'pending', this.where(secret))?.rotationId !== rotationId) return;
      const data: SecretData = { ...(c?.data ?? {}) };
      delete data.pending;
      if (previous) data.previous = companionEntry(previous);
      try {
        await this.writeCompanion(secret, c, data);
        return;
      } catch (err) {
        if (!(err instanceof ConcurrentWriteError) || attempt > 0) throw err;
      }
    }
  }

  /**
   * Write `value` as the account Secret, keeping its other keys; returns the credential it
   * replaced. A conflict re-reads and merges once more, so a concurrent change is kept, not lost.
   */
  private async writeCurrent(secret: string, read: V1Secret | null, value: SecretValue): Promise<SecretValue | null> {
    let current = read;
    for (let attempt = 0; ; attempt++) {
      const replaced = current ? credentialOf(current.data, this.where(secret)) : null;
      if (replaced?.rotationId === value.rotationId) return null; // a concurrent promote of the same rotation
      const call = this.call(current ? 'update' : 'create', secret, secret);
      try {
        if (current) {
          const { stringData: _ignored, ...rest } = current;
          await this.api.replaceNamespacedSecret({
            name: secret,
            namespace: this.namespace,
            body: { ...rest, data: credentialData(value, current.data ?? {}) },
          });
        } else {
          await this.api.createNamespacedSecret({
            namespace: this.namespace,
            body: { metadata: { name: secret }, type: 'Opaque', data: credentialData(value, null) },
          });
        }
        return replaced;
      } catch (err) {
        const e = kubeError(call, err, this.redactor);
        if (!(e instanceof ConcurrentWriteError) || attempt > 0) throw e;
        current = await this.read(secret, secret);
      }
    }
  }

  /** Create the companion, or replace it at the resourceVersion `read` carries. */
  private async writeCompanion(secret: string, read: V1Secret | null, data: SecretData): Promise<void> {
    const name = companionName(secret);
    const call = this.call(read ? 'update' : 'create', name, secret);
    const metadata = {
      name,
      labels: { [MANAGED_BY_LABEL]: 'pgrotate', [COMPANION_OF_LABEL]: secret },
      annotations: {
        'pgrotate.io/note': `pending and previous credentials of Secret ${secret}; written by pgrotate, not for applications`,
      },
    };
    try {
      if (read) {
        await this.api.replaceNamespacedSecret({
          name,
          namespace: this.namespace,
          body: {
            ...read,
            metadata: { ...read.metadata, labels: { ...read.metadata?.labels, ...metadata.labels } },
            data,
          },
        });
      } else {
        await this.api.createNamespacedSecret({ namespace: this.namespace, body: { metadata, type: 'Opaque', data } });
      }
    } catch (err) {
      throw kubeError(call, err, this.redactor);
    }
  }

  /** GET a Secret; null when it does not exist. */
  private async read(name: string, secret: string): Promise<V1Secret | null> {
    try {
      return await this.api.readNamespacedSecret({ name, namespace: this.namespace });
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw kubeError(this.call('get', name, secret), err, this.redactor);
    }
  }

  private call(verb: KubeCall['verb'], name: string, secret: string): KubeCall {
    return { provider: this.name, verb, namespace: this.namespace, name, secret };
  }

  private where(secret: string): { provider: string; secret: string } {
    return { provider: this.name, secret: `${this.namespace}/${secret}` };
  }

  private remember(value: SecretValue | null): SecretValue | null {
    if (value) this.redactor?.add(value.password);
    return value;
  }
}

/** Build the provider: the pod's ServiceAccount, or `kubeconfig` (and `context`) from outside. */
export function createKubernetesProvider(
  name: string,
  config: KubernetesProviderConfig,
  deps: ProviderDeps,
): KubernetesProvider {
  const kc = new KubeConfig();
  try {
    if (config.kubeconfig) {
      kc.loadFromFile(config.kubeconfig);
      if (config.context) kc.setCurrentContext(config.context);
    } else {
      kc.loadFromCluster();
    }
  } catch (err) {
    throw new ProviderError(
      `provider ${name}: cannot load ${config.kubeconfig ? `kubeconfig ${config.kubeconfig}` : 'the in-cluster ServiceAccount'}: ${deps.redactor.scrub((err as Error).message)}`,
      { permanent: true, cause: err },
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new ProviderError(
      `provider ${name}: ${config.kubeconfig ? `kubeconfig ${config.kubeconfig}` : 'the in-cluster ServiceAccount'} names no cluster${config.context ? ` for context ${config.context}` : ''}`,
      { permanent: true },
    );
  }
  return new KubernetesProvider({
    name,
    namespace: config.namespace,
    api: kc.makeApiClient(CoreV1Api),
    redactor: deps.redactor,
  });
}
