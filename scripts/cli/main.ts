/**
 * The `nightshift` command (package.json bin). Built to dist/cli/nightshift.mjs by `npm run build`;
 * `npm run cli -- <args>` runs it from source. What it imports up front is the command definitions
 * (program.ts) and what its signal handlers need; the prompt, the spinner and everything a command runs
 * are imported when used, so `nightshift --help` answers at once
 * (test/integration/cli-startup.test.ts keeps it so).
 */
import './defaults.ts';
import { anyLocalRun, interruptLocalRuns, invokesInFlight, localRunsInFlight } from './in-flight.ts';
import { EXIT, runCli, type Progress } from './program.ts';

const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
const say = (text: string) => process.stderr.write(`${text}\n`);

/** Stdout carried a document already (with --json: exactly one, whatever happens). */
let printed = false;
const argv = process.argv.slice(2);
const json = argv.includes('--json') && !argv.slice(0, argv.indexOf('--json')).includes('--');

/** How long the first signal waits for an in-process run to return before its leases are released anyway. */
const DRAIN_MS = 20_000;

/**
 * Ctrl-C (SIGINT) or SIGTERM: a Lambda is never interrupted between its statements, a local run is.
 * The first signal stops it starting new work and waits (up to DRAIN_MS) for its handler to return: a
 * call it already sent (an UpdateService) may still land, so its leases stay held until that call
 * settled, and the handler's own `finally` then releases them. A second signal, or the bound passing,
 * releases them at once (another run could then act while that call lands) and exits.
 */
let signals = 0;
let exiting = false;
const exitWith = (signal: 'SIGINT' | 'SIGTERM', code: number, text: string) => {
  if (exiting) return;
  exiting = true;
  if (json && !printed) {
    process.stdout.write(
      `${JSON.stringify({ error: { type: 'Interrupted', message: text, exitCode: code } }, null, 2)}\n`,
    );
  }
  say(`nightshift: ${signal}: ${text}`);
  process.exit(code);
};
const releaseAndExit = async (signal: 'SIGINT' | 'SIGTERM', code: number, why: string) => {
  // Only a handler run in this process takes leases (invoke.ts, which loaded local.ts with it). A
  // release that throws must not turn the exit into an unhandled rejection: the leases expire anyway.
  const { runs, problems } = anyLocalRun()
    ? await import('./local.ts')
        .then((local) => local.releaseHeldLeases())
        .catch((error: unknown) => ({ runs: 0, problems: [String((error as Error)?.message ?? error)] }))
    : { runs: 0, problems: [] as string[] };
  for (const problem of problems)
    say(`nightshift: a lease was not released (it expires on its own): ${problem}`);
  exitWith(
    signal,
    code,
    `${why}; ` +
      (runs > 0
        ? 'released the leases this local run held, although a call it had sent may still land. '
        : '') +
      'what it changed so far stays changed: look with `nightshift status`, and run the same command again to finish.',
  );
};
const onSignal = (signal: 'SIGINT' | 'SIGTERM', code: number) =>
  process.on(signal, () => {
    signals += 1;
    if (signals > 1) {
      void releaseAndExit(signal, code, 'stopped at once (second signal)');
      return;
    }
    interruptLocalRuns();
    for (const name of invokesInFlight)
      say(
        `nightshift: ${signal}: ${name} was invoked and goes on running in Lambda; its outcome is unknown here. ` +
          'Look with `nightshift status` and the same command with --dry-run before you run it again.',
      );
    const running = [...localRunsInFlight];
    if (running.length === 0) {
      void releaseAndExit(signal, code, 'stopped');
      return;
    }
    say(
      `nightshift: ${signal}: stopping: the local run starts nothing new and keeps its leases until the calls it ` +
        `already sent have landed (up to ${DRAIN_MS / 1000} s). Send it again to stop at once.`,
    );
    const timer = setTimeout(
      () => void releaseAndExit(signal, code, `the local run did not return within ${DRAIN_MS / 1000} s`),
      DRAIN_MS,
    );
    // The command returning (its report printed, with --json the one document) means the run returned:
    // its handler released its leases; anything left (a release that failed) goes now.
    void Promise.allSettled([...running, cliDone]).then(async () => {
      clearTimeout(timer);
      await releaseAndExit(signal, code, 'stopped; the local run returned and released its leases');
    });
  });
onSignal('SIGINT', EXIT.interrupted);
onSignal('SIGTERM', EXIT.terminated);

/**
 * A spinner on stderr until the returned function is called. ora is imported on the first one: the
 * spinner starts once it is loaded (a few milliseconds), unless the wait ended before.
 */
const spinner = (text: string): Progress => {
  let shown: { stop: () => void; text: string } | undefined;
  let current = text;
  let ended = false;
  import('ora')
    .then(({ default: ora }) => {
      if (!ended) shown = ora({ text: current, stream: process.stderr }).start();
    })
    // A spinner is only a sign of life: without one the command goes on.
    .catch(() => undefined);
  return Object.assign(
    () => {
      ended = true;
      shown?.stop();
    },
    {
      update: (next: string) => {
        current = next;
        if (shown) shown.text = next;
      },
    },
  );
};

const cliDone = runCli(argv, {
  out: (text) => {
    if (exiting) return;
    printed = true;
    process.stdout.write(`${text}\n`);
  },
  err: say,
  interactive,
  confirm: async (message) => {
    const { default: confirm } = await import('@inquirer/confirm');
    return confirm({ message, default: false }, { output: process.stderr });
  },
  progress: spinner,
  width: process.stdout.columns ?? 120,
  env: process.env,
});
const code = await cliDone;
// After a signal, the signal's code wins (set by the handler above, which exits).
if (signals === 0) process.exitCode = code;
