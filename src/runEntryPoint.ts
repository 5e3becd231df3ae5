import { UserError } from './errors.js';

/**
 * Runs a program's main function: a UserError is printed as it is (it says what to fix), anything
 * else with its stack; both exit non-zero.
 */
export function runEntryPoint(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      if (error instanceof UserError) process.stderr.write(`Error: ${error.message}\n`);
      else process.stderr.write(`Fatal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
