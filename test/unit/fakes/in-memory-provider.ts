import { PendingConflictError } from '../../../src/core/provider/pending-conflict-error.js';
import { ProviderError } from '../../../src/core/errors.js';
import {
  parseSecretObject,
  secretPayload,
  type RotatedSecretValue,
  type SecretProvider,
  type SecretValue,
} from '../../../src/core/provider/secret-provider.js';

// An in-memory SecretProvider that keeps the interface's guarantees (the provider conformance
// suite runs against it in rotation-state-machine-fakes.test.ts) and records every call, so a
// unit test can assert which provider operations the engine asked for, in which order.

/** One recorded provider call: the operation, the secret, and the rotation id it named (if any). */
export interface ProviderCall {
  op: 'getCurrent' | 'getPending' | 'getPrevious' | 'stagePending' | 'promotePending' | 'discardPending';
  secret: string;
  rotationId?: string | undefined;
}

interface Slot {
  current: SecretValue | null;
  pending: SecretValue | null;
  previous: SecretValue | null;
}

/** An in-memory secret store with a call log and one-shot fault injection per operation. */
export class InMemoryProvider implements SecretProvider {
  readonly calls: ProviderCall[] = [];
  private readonly slots = new Map<string, Slot>();
  private readonly faults = new Map<ProviderCall['op'], Error>();

  constructor(readonly name = 'mem') {}

  /** Put values in place as if earlier rotations (or a person) had written them. */
  seed(secret: string, values: Partial<Slot>): void {
    this.slots.set(secret, { ...this.slot(secret), ...values });
  }

  /** The stored values, without recording a call (for assertions). */
  peek(secret: string): Slot {
    return { ...this.slot(secret) };
  }

  /** The next call of `op` fails with `error` (once). */
  failNext(op: ProviderCall['op'], error: Error = new Error(`injected ${op} failure`)): void {
    this.faults.set(op, error);
  }

  /** The operations recorded so far, in order. */
  ops(): string[] {
    return this.calls.map((c) => c.op);
  }

  async getCurrent(secret: string): Promise<SecretValue | null> {
    this.record({ op: 'getCurrent', secret });
    return copy(this.slot(secret).current);
  }

  async getPending(secret: string): Promise<SecretValue | null> {
    this.record({ op: 'getPending', secret });
    return copy(this.slot(secret).pending);
  }

  async getPrevious(secret: string): Promise<SecretValue | null> {
    this.record({ op: 'getPrevious', secret });
    return copy(this.slot(secret).previous);
  }

  async stagePending(secret: string, value: RotatedSecretValue): Promise<SecretValue> {
    this.record({ op: 'stagePending', secret, rotationId: value.rotationId });
    const slot = this.slot(secret);
    if (slot.pending) {
      if (slot.pending.rotationId === value.rotationId) return copy(slot.pending) as SecretValue;
      throw new PendingConflictError(
        `provider ${this.name}: secret ${secret} already has a pending value of rotation ${slot.pending.rotationId ?? '(unknown)'}`,
        copy(slot.pending) as SecretValue,
        { secret },
      );
    }
    // Stored and read back as a real store would: the owned fields and the kept keys only.
    slot.pending = parseSecretObject(secretPayload(value), { provider: this.name, secret });
    return copy(slot.pending) as SecretValue;
  }

  async promotePending(secret: string, rotationId: string): Promise<void> {
    this.record({ op: 'promotePending', secret, rotationId });
    const slot = this.slot(secret);
    if (slot.current?.rotationId === rotationId) {
      if (slot.pending?.rotationId === rotationId) slot.pending = null;
      return;
    }
    if (slot.pending?.rotationId !== rotationId) {
      throw new ProviderError(
        `provider ${this.name}: secret ${secret} has no pending value of rotation ${rotationId} to promote`,
        { secret },
      );
    }
    if (slot.current) slot.previous = slot.current;
    slot.current = slot.pending;
    slot.pending = null;
  }

  async discardPending(secret: string, rotationId: string): Promise<void> {
    this.record({ op: 'discardPending', secret, rotationId });
    const slot = this.slot(secret);
    if (slot.pending?.rotationId === rotationId) slot.pending = null;
  }

  async close(): Promise<void> {}

  private record(call: ProviderCall): void {
    this.calls.push(call);
    const fault = this.faults.get(call.op);
    if (fault) {
      this.faults.delete(call.op);
      throw fault;
    }
  }

  private slot(secret: string): Slot {
    let slot = this.slots.get(secret);
    if (!slot) {
      slot = { current: null, pending: null, previous: null };
      this.slots.set(secret, slot);
    }
    return slot;
  }
}

function copy(v: SecretValue | null): SecretValue | null {
  return v ? { ...v } : null;
}
