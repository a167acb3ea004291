import type { StartedService } from '../global-setup.js';
import { RESTRICTED_SETUP_ACTIONS, createRestrictedUser, startMotoServer } from '../support/moto-server.js';

// moto (the AWS emulator) for the AWS Secrets Manager tests, started once per run (service
// `moto`). Two servers: an open one, and one that enforces IAM policies (moto's
// INITIAL_NO_AUTH_ACTION_COUNT) with a user whose policy lacks secretsmanager:PutSecretValue.

export interface MotoServiceInfo {
  endpoint: string;
  region: string;
  /** Fake credentials for the open server. */
  env: Record<string, string>;
  restricted: { endpoint: string; env: Record<string, string>; deniedAction: string };
}

export const names = ['moto'];

/** The IAM policy for pgrotate in docs/providers.md, less secretsmanager:PutSecretValue. */
const RESTRICTED_ALLOWED = [
  'GetSecretValue',
  'DescribeSecret',
  'CreateSecret',
  'TagResource',
  'UpdateSecretVersionStage',
];

export async function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('moto')) return {};
  const open = await startMotoServer();
  let iam;
  try {
    iam = await startMotoServer({ env: { INITIAL_NO_AUTH_ACTION_COUNT: String(RESTRICTED_SETUP_ACTIONS) } });
  } catch (err) {
    await open.stop();
    throw err;
  }
  const key = await createRestrictedUser(iam.endpoint, RESTRICTED_ALLOWED);
  const info: MotoServiceInfo = {
    endpoint: open.endpoint,
    region: 'us-east-1',
    env: {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_SESSION_TOKEN: 'testing',
      AWS_REGION: 'us-east-1',
    },
    restricted: {
      endpoint: iam.endpoint,
      env: { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_REGION: 'us-east-1' },
      deniedAction: 'PutSecretValue',
    },
  };
  return {
    moto: {
      info,
      stop: async () => {
        await Promise.all([open.stop(), iam.stop()]);
      },
    },
  };
}
