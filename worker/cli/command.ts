/** One `troupe` subcommand: its help text and what it does with its arguments (returns the exit code). */
export interface Command {
  readonly summary: string;
  readonly help: string;
  /** Help of a subcommand named in argv (`troupe dead-letters requeue --help`), when the command has some. */
  helpFor?(argv: string[]): string | undefined;
  run(argv: string[]): Promise<number>;
}

/** Thrown for bad command-line input: printed without a stack, exit code 2. */
export class UsageError extends Error {}
