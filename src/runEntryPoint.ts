import { UserError } from './errors.js';
import { maskCredentials } from './logger.js';

/**
 * Runs a program's main function: a UserError is printed as it is (it says what to fix), anything
 * else with its stack; both exit non-zero.
 */
export function runEntryPoint(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      const text = error instanceof UserError ? `Error: ${error.message}` : `Fatal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
      process.stderr.write(maskCredentials(text) + '\n');
      process.exit(1);
    },
  );
}
