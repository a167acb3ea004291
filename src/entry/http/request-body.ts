import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';

/** Largest request body the API accepts. */
export const MAX_BODY_BYTES = 16 * 1024;

/** A request the API refuses, with the status to answer. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Read at most MAX_BODY_BYTES; a larger body is refused without reading the rest. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parse a JSON body (empty means `{}`) and validate it; problems become 4xx HttpErrors. */
export async function readJsonBody<S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> {
  // Any content type is read as JSON: `curl -d` and many HTTP clients label JSON as form data or text.
  const raw = await readBody(req);
  let value: unknown = {};
  if (raw.length > 0) {
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'request body is not valid JSON');
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    // Paths and messages only: a client's values are never echoed back.
    const problems = parsed.error.issues.map((i) => {
      const keys = i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : '';
      return `${i.path.join('.') || '(body)'}: ${i.message}${keys}`;
    });
    throw new HttpError(400, 'invalid request body', problems);
  }
  return parsed.data;
}
