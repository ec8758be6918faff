/**
 * How the `sluice` command fails: one line on stderr naming what is wrong and what to do, and a
 * documented exit code. Stack traces only with `--debug` (or `SLUICE_DEBUG=1`), because an
 * operator reading a terminal needs the cause, not our call stack.
 */

/** Exit codes of the `sluice` command (documented in README "CLI"). */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** The command ran and failed: invalid config, port in use, gateway unreachable, refused calls. */
  failure: 1,
  /** Bad usage: unknown command or option, missing or malformed argument. */
  usage: 2,
} as const;

/** An error the CLI reports as is: `message` says what is wrong, `hint` what to do. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
  }
}

let debug = process.env.SLUICE_DEBUG === '1';

/** Turn stack traces on (the global `--debug` flag). */
export function setDebug(on: boolean): void {
  debug = debug || on;
}

/** The one line printed for an error (without the trailing newline). */
export function describeError(err: unknown, context = 'sluice'): string {
  const e = err as { name?: string; message?: string; field?: string; code?: string; path?: string; hint?: string };
  if (err instanceof CliError) return `${context}: ${err.message}${err.hint ? `; ${err.hint}` : ''}`;
  if (e?.name === 'SluiceConfigError') {
    // The field path is the useful part; the generic "Invalid option" prefix repeats it.
    const reason = String(e.message).replace(/^Invalid option "[^"]*": /, '');
    return `${context}: invalid config at ${e.field}: ${reason}`;
  }
  if (e?.code === 'EADDRINUSE') return `${context}: port in use (${e.message}); pick free ports with --port and --admin-port (0 = any)`;
  if (e?.code === 'ENOENT' && typeof e.path === 'string') return `${context}: file not found: ${e.path}`;
  const message = e?.message ?? String(err);
  return `${context}: ${message.split('\n')[0]}${debug ? '' : ' (run with --debug for the stack trace)'}`;
}

/** Print one line (and the stack with --debug), then exit with `code`. */
export function fail(err: unknown, context?: string, code?: number): never {
  process.stderr.write(`${describeError(err, context)}\n`);
  if (debug && err instanceof Error && err.stack && !(err instanceof CliError)) process.stderr.write(`${err.stack}\n`);
  process.exit(code ?? (err instanceof CliError ? err.exitCode : EXIT.failure));
}

/** Print a config error: file, field path, reason, and what to do, on one line. */
export function configError(file: string, err: unknown): never {
  const e = err as { name?: string; field?: string; message?: string };
  if (e?.name === 'SluiceConfigError') {
    const reason = String(e.message).replace(/^Invalid option "[^"]*": /, '');
    if (e.field === '(file)') fail(new CliError(reason, 'give --config <file> (YAML or JSON); `sluice schema` prints the format'));
    fail(new CliError(`invalid config ${file} at ${e.field}: ${reason}`, `fix it, then run: sluice check --config ${file}`));
  }
  fail(err);
}
