import { EC2Client } from '@aws-sdk/client-ec2';
import { sdkConfig } from './config.ts';

let client: EC2Client | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const ec2Client = (): EC2Client => (client ??= new EC2Client(sdkConfig()));
