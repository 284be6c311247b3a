/**
 * The schedules document (infra/schedules.yml), as parsed YAML. Read from the project's file when the
 * code runs from source (tests, `npm run cli -- --local`); `npm run build` replaces this module in
 * dist/ecs-scheduler/index.mjs with the document itself, read and validated at build time
 * (scripts/build.ts): a deployed function never fetches schedules at run time.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const SCHEDULES_ORIGIN = 'infra/schedules.yml';

export const schedulesDocument = (): unknown =>
  parse(readFileSync(fileURLToPath(new URL('../../infra/schedules.yml', import.meta.url)), 'utf8'));
