import { runCli, type Io } from '#scripts/cli/program.ts';

export interface CliRun {
  code: number;
  out: string;
  err: string;
  questions: string[];
  /** What progress displays showed (spinner texts and their updates), at a terminal only. */
  progress: string[];
}

/** Runs the nightshift CLI in-process, as a terminal (interactive, answering `answer`) or a pipeline. */
export const cli = async (
  argv: string[],
  options: { interactive?: boolean; answer?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<CliRun> => {
  const out: string[] = [];
  const err: string[] = [];
  const questions: string[] = [];
  const progress: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    interactive: options.interactive ?? false,
    confirm: async (q) => {
      questions.push(q);
      return options.answer ?? false;
    },
    progress: (text) => {
      progress.push(text);
      return Object.assign(() => undefined, { update: (next: string) => void progress.push(next) });
    },
    width: 160,
    env: options.env ?? {},
  };
  const code = await runCli(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n'), questions, progress };
};
