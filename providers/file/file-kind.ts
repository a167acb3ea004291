import type { StoreKind } from '../store-kind.js';
import { fileProviderSchema, type FileProviderConfig } from './file-config.js';

/** The file store: a JSON file on local disk. */
export const fileKind: StoreKind<FileProviderConfig> = {
  type: 'file',
  schema: fileProviderSchema,
  async create(name, config) {
    const { FileProvider } = await import('./file-provider.js');
    return new FileProvider({ name, path: config.path });
  },
};
