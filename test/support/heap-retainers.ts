import { readFileSync } from 'node:fs';

// Why a string is still in a heap snapshot: the shortest chain of strong references from the
// snapshot's root to a string node holding it (V8's .heapsnapshot format: flat node and edge
// arrays described by snapshot.meta). A heap test that finds a password prints this path, so a
// failure says what kept it instead of only that something did.

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Retainer paths (root first, one line per hop) of the first string node containing each needle. */
export function retainerPaths(snapshotFile: string, needles: readonly string[], maxPaths = 5): string[] {
  const snap = JSON.parse(readFileSync(snapshotFile, 'utf8')) as Snapshot;
  const { node_fields, node_types, edge_fields, edge_types } = snap.snapshot.meta;
  const nf = node_fields.length;
  const ef = edge_fields.length;
  const nType = node_fields.indexOf('type');
  const nName = node_fields.indexOf('name');
  const nEdges = node_fields.indexOf('edge_count');
  const eType = edge_fields.indexOf('type');
  const eName = edge_fields.indexOf('name_or_index');
  const eTo = edge_fields.indexOf('to_node');
  const nodeTypes = node_types[0];
  const edgeTypes = edge_types[0];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / nf;
  const firstEdge = new Int32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += (nodes[i * nf + nEdges] as number) * ef;
    firstEdge[i + 1] = e;
  }
  const typeOf = (i: number) => nodeTypes[nodes[i * nf + nType] as number] ?? '?';
  const nameOf = (i: number) => strings[nodes[i * nf + nName] as number] ?? '?';

  // Breadth-first from the root (node 0) over strong edges; parent edge of each reached node.
  const parent = new Int32Array(count).fill(-1);
  const parentEdge = new Int32Array(count).fill(-1);
  parent[0] = 0;
  const queue = new Int32Array(count);
  let head = 0;
  let tail = 0;
  queue[tail++] = 0;
  while (head < tail) {
    const i = queue[head++] as number;
    for (let e = firstEdge[i] as number; e < (firstEdge[i + 1] as number); e += ef) {
      if (edgeTypes[edges[e + eType] as number] === 'weak') continue;
      const to = (edges[e + eTo] as number) / nf;
      if (parent[to] !== -1) continue;
      parent[to] = i;
      parentEdge[to] = e;
      queue[tail++] = to;
    }
  }

  const out: string[] = [];
  for (const needle of needles) {
    if (out.length >= maxPaths) break;
    let hit = -1;
    for (let i = 0; i < count && hit === -1; i++) {
      const t = typeOf(i);
      if ((t === 'string' || t === 'concatenated string' || t === 'sliced string') && nameOf(i).includes(needle))
        hit = i;
    }
    if (hit === -1) {
      out.push('(in the snapshot, but not as the name of a string node)');
      continue;
    }
    if (parent[hit] === -1) {
      out.push(`${typeOf(hit)} node: not reachable from the root over strong edges`);
      continue;
    }
    const hops: string[] = [];
    for (let i = hit; i !== 0; i = parent[i] as number) {
      const e = parentEdge[i] as number;
      const et = edgeTypes[edges[e + eType] as number];
      const en = edges[e + eName] as number;
      const label = et === 'element' || et === 'hidden' ? `[${en}]` : (strings[en] ?? '?');
      const from = parent[i] as number;
      hops.unshift(`${typeOf(from)} ${nameOf(from).slice(0, 60)} --${et}:${label}-->`);
    }
    out.push(`${hops.join('\n  ')}\n  ${typeOf(hit)} (the password)`);
  }
  return out;
}
