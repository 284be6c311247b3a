/**
 * The `nightshift` command (package.json bin). Built to dist/cli/nightshift.mjs by `npm run build`;
 * `npm run cli -- <args>` runs it from source.
 */
import './defaults.ts';
import confirm from '@inquirer/confirm';
import ora from 'ora';
import { interruptLocalRuns, invokesInFlight } from './invoke.ts';
import { releaseHeldLeases } from './local.ts';
import { EXIT, runCli } from './program.ts';

const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
const say = (text: string) => process.stderr.write(`${text}\n`);

/**
 * Ctrl-C (SIGINT) or SIGTERM: a Lambda is never interrupted between its statements, a local run is.
 * Its leases are released rather than left to block their clusters, groups and targets until they
 * expire; the in-process run starts nothing new meanwhile. A second signal exits at once.
 */
let stopping = false;
const onSignal = (signal: 'SIGINT' | 'SIGTERM', code: number) =>
  process.on(signal, () => {
    if (stopping) process.exit(code);
    stopping = true;
    interruptLocalRuns();
    for (const name of invokesInFlight)
      say(
        `nightshift: ${signal}: ${name} was invoked and goes on running in Lambda; its outcome is unknown here. ` +
          'Look with `nightshift status` and the same command with --dry-run before you run it again.',
      );
    void releaseHeldLeases()
      .then(({ runs, problems }) => {
        if (runs > 0)
          say(
            `nightshift: ${signal}: stopped; released the leases this local run held. What it changed so far ` +
              'stays changed: look with `nightshift status`, and run the same command again to finish.',
          );
        for (const problem of problems)
          say(`nightshift: a lease was not released (it expires on its own): ${problem}`);
      })
      .finally(() => process.exit(code));
  });
onSignal('SIGINT', EXIT.interrupted);
onSignal('SIGTERM', EXIT.terminated);

const code = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: say,
  interactive,
  confirm: (message) => confirm({ message, default: false }, { output: process.stderr }),
  progress: (text) => {
    const spinner = ora({ text, stream: process.stderr }).start();
    return () => spinner.stop();
  },
  width: process.stdout.columns ?? 120,
  env: process.env,
});
process.exitCode = code;
