import os from 'node:os';
import { createCore, type Core } from './app.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { runEntryPoint } from './runEntryPoint.js';
import { runTerminalChat } from './terminal/terminalChat.js';

const SHUTDOWN_LIMIT_MS = 9000;

// `npm run chat`: the same engine and store as the bot, as the channel CHAT_CHANNEL; no Discord token needed.
// SIGINT/SIGTERM end it in order: the running reply is cut, answered turns are saved, exit 0.
runEntryPoint(async () => {
  const config = await loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const stop = new AbortController();
  let loaded = false;
  const onSignal = (signal: string) => {
    logger.info('shutting down', { signal });
    // Said on the terminal too: a Ctrl+C that ends the chat without a word looks like a crash.
    if (!loaded) {
      process.stderr.write('\nStopped before the chat started (nothing was changed).\n');
      process.exit(0);
    }
    const learning = core?.engine.calibrationStatus?.learning;
    process.stderr.write(
      `\nStopping: the reply in progress is cut; the turns answered so far are saved.${learning ? ` The sentiment calibration (${learning.done}/${learning.total}) is learned again at the next start.` : ''}\n`,
    );
    // Past the limit, exit anyway: a hung write must not keep the process alive.
    setTimeout(() => {
      logger.error('shutdown took too long; exiting now');
      process.exit(0);
    }, SHUTDOWN_LIMIT_MS).unref();
    stop.abort();
  };
  // Installed before loading: Ctrl+C while the model loads says so instead of ending silently.
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  let core: Core | undefined;
  core = await createCore(config, logger);
  loaded = true;
  try {
    await runTerminalChat({
      sessions: core.sessions,
      store: core.store,
      config,
      logger,
      userName: os.userInfo().username || 'you',
      input: process.stdin,
      output: process.stdout,
      interactive: Boolean(process.stdin.isTTY),
      signal: stop.signal,
    });
  } finally {
    await core.dispose();
  }
});
