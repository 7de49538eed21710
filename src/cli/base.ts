/** Base class of the scms commands: errors printed unwrapped (paths and offsets stay on one line). */
import { Command } from '@oclif/core';
import chalk from 'chalk';
import { describeError } from './errors.js';

/** Thrown by `fail()` after the error was printed; `catch` swallows it and the process exits with `exit`. */
class ReportedFailure extends Error {
  constructor(readonly exit: number) {
    super(`exit ${exit}`);
  }
}

export abstract class ScmsCommand extends Command {
  /** Prints the error (JSON `{ error: { message, exit } }` on stdout with --json, else on stderr) and exits. */
  protected fail(message: string, exit: number, details?: Record<string, unknown>): never {
    if (this.jsonEnabled()) this.logJson({ error: { message, exit, ...details } });
    else process.stderr.write(`${chalk.red('Error:')} ${message}\n`);
    throw new ReportedFailure(exit);
  }

  /**
   * `read()`: the command reading and decoding its input. What it throws is printed as describeError (cli/errors.ts)
   * words it for `what`, and the command exits with `exit` (default: the code describeError chooses).
   */
  protected readInput<T>(read: () => T, what: string, exit?: number): T {
    try {
      return read();
    } catch (err) {
      const d = describeError(err, what);
      return this.fail(d.message, exit ?? d.exit);
    }
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof ReportedFailure) {
      process.exitCode = err.exit;
      return undefined;
    }
    return super.catch(err);
  }
}
