import { z } from 'zod';

/** `type: file`: a JSON file of secrets (development, tests, single-host installs). */
export const fileProviderSchema = z.strictObject({ type: z.literal('file'), path: z.string().min(1) });
export type FileProviderConfig = z.output<typeof fileProviderSchema>;
