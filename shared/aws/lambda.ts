import { LambdaClient } from '@aws-sdk/client-lambda';
import { clientFactory } from './config.ts';

/** The kill switch check of fleet iterations (a function's own reserved concurrency). */
export const lambdaClient = clientFactory((config) => new LambdaClient(config));
