/** Base class of the scms commands: errors printed unwrapped (paths and offsets stay on one line). */
import { Command } from '@oclif/core';
import chalk from 'chalk';

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

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof ReportedFailure) {
      process.exitCode = err.exit;
      return undefined;
    }
    return super.catch(err);
  }
}
