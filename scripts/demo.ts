/**
 * The demos, on an embedded local AWS: each starts a private moto server and runs the built bundles
 * against a sample estate, printing every report.
 *
 * - `npm run demo`: the whole night shift (scripts/demo/night.ts);
 * - `npm run demo -- environment`: the environment shop through one night with ecs-scheduler and
 *   rds-scheduler alone (scripts/demo/environment.ts);
 * - `npm run demo -- ecs`: ecs-scheduler alone stops and starts a stage cluster (scripts/demo/ecs.ts).
 */
import { ecsDemo } from './demo/ecs.ts';
import { environmentDemo } from './demo/environment.ts';
import { nightDemo } from './demo/night.ts';
import { ToolUnavailableError } from './tools.ts';

const DEMOS: Record<string, () => Promise<void>> = {
  night: nightDemo,
  environment: environmentDemo,
  ecs: ecsDemo,
};
const which = process.argv[2] ?? 'night';
const demo = DEMOS[which];
if (!demo) {
  console.error(`no demo "${which}": npm run demo [-- ${Object.keys(DEMOS).join('|')}]`);
  process.exit(2);
}
try {
  await demo();
} catch (error) {
  // moto_server neither found nor installable: the one line that says what to install, no stack.
  if (!(error instanceof ToolUnavailableError)) throw error;
  console.error(`npm run demo: ${error.message}`);
  process.exit(1);
}
