import { ECSClient } from '@aws-sdk/client-ecs';
import { sdkConfig } from './config.ts';

let client: ECSClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const ecsClient = (): ECSClient => (client ??= new ECSClient(sdkConfig()));
