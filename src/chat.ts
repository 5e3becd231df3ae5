import os from 'node:os';
import { createCore } from './app.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { runEntryPoint } from './runEntryPoint.js';
import { runTerminalChat } from './terminal/terminalChat.js';

// `npm run chat`: the same engine and store as the bot, as the channel CHAT_CHANNEL; no Discord token needed.
runEntryPoint(async () => {
  const config = await loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const core = await createCore(config, logger);
  try {
    await runTerminalChat({
      sessions: core.sessions,
      config,
      logger,
      userName: os.userInfo().username || 'you',
      input: process.stdin,
      output: process.stdout,
      interactive: Boolean(process.stdin.isTTY),
    });
  } finally {
    await core.dispose();
  }
});
