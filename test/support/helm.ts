import { spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { REPO_ROOT } from './pg-fixture.js';
import { service } from './provided.js';

// Runs the real helm binary against helm/pgrotate and validates what it renders against the
// Kubernetes API schemas shipped in the kubernetes-models packages (no cluster, no download).

export const CHART_DIR = join(REPO_ROOT, 'helm', 'pgrotate');

export interface HelmInfo {
  bin: string | null;
  version: string | null;
  /** Why no usable helm was found. */
  problem: string | null;
}

/** Where scripts/install/60-helm.sh puts helm; $PGROTATE_HELM and PATH are tried too. */
export function locateHelm(env: NodeJS.ProcessEnv = process.env): HelmInfo {
  const candidates = [
    env.PGROTATE_HELM,
    join(homedir(), '.cache', 'pgrotate', 'bin', 'helm'),
    ...(env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((d) => join(d, 'helm')),
  ].filter((c): c is string => Boolean(c));
  for (const bin of candidates) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      continue;
    }
    const v = spawnSync(bin, ['version', '--short'], { encoding: 'utf8', timeout: 30_000 });
    if (v.status === 0 && v.stdout.startsWith('v3.')) return { bin, version: v.stdout.trim(), problem: null };
  }
  return {
    bin: null,
    version: null,
    problem: `no helm v3 binary found (tried ${candidates.join(', ')}); run scripts/install/60-helm.sh or set PGROTATE_HELM`,
  };
}

/** The helm binary the test run found, or an error saying how to install it. */
export function helmBin(): string {
  const info = service<HelmInfo>('helm');
  if (!info.bin) throw new Error(`helm is not installed: ${info.problem ?? 'unknown reason'}`);
  return info.bin;
}

export interface HelmRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run helm with the given arguments (HOME-independent: its cache and config go to a temp dir). */
export function runHelm(args: string[]): HelmRun {
  const home = mkdtempSync(join(tmpdir(), 'pgrotate-helm-home-'));
  try {
    const r = spawnSync(helmBin(), args, {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '',
        // Against an API server helm caches discovery under $HOME/.kube (else ./.kube in the cwd).
        HOME: home,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
      },
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A Kubernetes object as rendered (loosely typed: tests read it by path). */
export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

export interface Rendered extends HelmRun {
  manifests: Manifest[];
}

/** `helm template` the chart with values files and/or a values object (written to a temp file). */
export function helmTemplate(
  opts: { valuesFiles?: string[]; values?: Record<string, unknown>; release?: string; namespace?: string } = {},
): Rendered {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-helm-values-'));
  try {
    const files = [...(opts.valuesFiles ?? [])];
    if (opts.values) {
      const path = join(dir, 'values.json');
      writeFileSync(path, JSON.stringify(opts.values));
      files.push(path);
    }
    const args = [
      'template',
      opts.release ?? 'rot',
      CHART_DIR,
      '--namespace',
      opts.namespace ?? 'pgrotate',
      ...files.flatMap((f) => ['-f', f]),
    ];
    const run = runHelm(args);
    const manifests = run.code === 0 ? parseManifests(run.stdout) : [];
    return { ...run, manifests };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * NOTES.txt as `helm install` would print it. `helm install --dry-run` needs a cluster, so a copy
 * of the chart renders the notes as an ordinary template instead.
 */
export function renderNotes(values: Record<string, unknown>): HelmRun {
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-helm-notes-'));
  try {
    const chart = join(dir, 'pgrotate');
    cpSync(CHART_DIR, chart, { recursive: true });
    const notes = join(chart, 'templates', 'NOTES.txt');
    // The notes become a named template, emitted as one JSON string in a YAML document.
    writeFileSync(
      join(chart, 'templates', 'notes-as-text.yaml'),
      `{{- define "test.notes" }}${readFileSync(notes, 'utf8')}{{ end -}}\nnotes: {{ include "test.notes" . | toJson }}\n`,
    );
    rmSync(notes);
    const valuesFile = join(dir, 'values.json');
    writeFileSync(valuesFile, JSON.stringify(values));
    const run = runHelm([
      'template',
      'rot',
      chart,
      '--namespace',
      'pgrotate',
      '-f',
      valuesFile,
      '--show-only',
      'templates/notes-as-text.yaml',
    ]);
    const text = run.code === 0 ? (parseYaml(run.stdout) as { notes: string }).notes : '';
    return { ...run, stdout: text };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Split helm's multi-document output into objects; any YAML error fails the test. */
export function parseManifests(text: string): Manifest[] {
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as Manifest | null;
    if (value) out.push(value);
  }
  return out;
}

type Validator = (obj: Manifest) => void;
const VALIDATORS: Record<string, Validator> = {
  'v1/ConfigMap': (o) => new ConfigMap(o as never).validate(),
  'v1/Service': (o) => new Service(o as never).validate(),
  'v1/ServiceAccount': (o) => new ServiceAccount(o as never).validate(),
  'apps/v1/Deployment': (o) => new Deployment(o as never).validate(),
  'batch/v1/CronJob': (o) => new CronJob(o as never).validate(),
  'networking.k8s.io/v1/NetworkPolicy': (o) => new NetworkPolicy(o as never).validate(),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o as never).validate(),
  'monitoring.coreos.com/v1/ServiceMonitor': (o) => new ServiceMonitor(o as never).validate(),
  'monitoring.coreos.com/v1/PrometheusRule': (o) => new PrometheusRule(o as never).validate(),
  'rbac.authorization.k8s.io/v1/Role': (o) => new Role(o as never).validate(),
  'rbac.authorization.k8s.io/v1/RoleBinding': (o) => new RoleBinding(o as never).validate(),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': (o) => new ClusterRoleBinding(o as never).validate(),
};

/** Validate one rendered object against its API schema; throws naming the object and the field. */
export function validateManifest(obj: Manifest): void {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const validate = VALIDATORS[key];
  if (!validate) throw new Error(`no schema for ${key} (${obj.metadata.name}): add it to test/support/helm.ts`);
  try {
    validate(obj);
  } catch (err) {
    throw new Error(`${key} ${obj.metadata.name} is not valid: ${(err as Error).message}`, { cause: err });
  }
  // Names the API server would refuse (the schemas do not check them).
  const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  if (!dns1123.test(obj.metadata.name) || obj.metadata.name.length > (obj.kind === 'CronJob' ? 52 : 63)) {
    throw new Error(`${key} name "${obj.metadata.name}" is not a valid DNS-1123 label for its kind`);
  }
}

/** The one rendered object of this kind (and name suffix), or a failure listing what was rendered. */
export function findManifest(manifests: Manifest[], kind: string, nameSuffix = ''): Manifest {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name.endsWith(nameSuffix));
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${nameSuffix ? ` named *${nameSuffix}` : ''}, got ${found.length} (rendered: ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')})`,
    );
  }
  return found[0] as Manifest;
}

/** Read a nested field by path, e.g. at(cronJob, 'spec', 'jobTemplate', 'spec'). */
export function at<T = unknown>(obj: unknown, ...path: Array<string | number>): T {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') throw new Error(`no ${path.join('.')} (stopped at ${String(p)})`);
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur as T;
}
