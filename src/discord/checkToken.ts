import { DiscordAPIError, REST, Routes } from 'discord.js';
import { UserError } from '../errors.js';

export interface CheckTokenOptions {
  token: string;
  /** DISCORD_API_URL (the emulator in tests); default Discord's own API. */
  apiUrl?: string;
  /** How long to wait for Discord. Default 10 s. */
  timeoutMs?: number;
}

/** Where to get a bot token, said by every token message. */
export const TOKEN_HELP =
  'Copy the bot token from https://discord.com/developers/applications (your app -> Bot -> Reset Token) into .env as DISCORD_TOKEN=... ' +
  'To talk to the model without Discord, run `npm run chat`.';

/**
 * Asks Discord who the token belongs to (GET /users/@me), before the model downloads and loads:
 * a wrong token or no way to reach Discord is told in seconds, and the two are told apart.
 */
export async function checkDiscordToken({ token, apiUrl, timeoutMs = 10_000 }: CheckTokenOptions): Promise<{ id: string; username: string }> {
  const rest = new REST({ ...(apiUrl ? { api: apiUrl } : {}), timeout: timeoutMs, retries: 0 }).setToken(token);
  try {
    return (await rest.get(Routes.user())) as { id: string; username: string };
  } catch (error) {
    if (error instanceof DiscordAPIError && error.status === 401) {
      throw new UserError(`Discord refused DISCORD_TOKEN (401 Unauthorized): it is wrong, was reset, or is not a bot token. ${TOKEN_HELP}`);
    }
    const where = apiUrl ?? 'https://discord.com/api';
    throw new UserError(`Cannot reach Discord at ${where} (${reasonOf(error)}), so DISCORD_TOKEN could not be checked. Check the network connection${apiUrl ? ' and DISCORD_API_URL' : ''}, then start again.`);
  }
}

/** A short reason without a trailing period: a network code, an HTTP status, or a timeout. */
export function reasonOf(error: unknown): string {
  if (error instanceof DiscordAPIError) return `HTTP ${error.status}`;
  const cause = (error as { cause?: { code?: string } }).cause;
  const code = (error as NodeJS.ErrnoException).code ?? cause?.code;
  if (code) return code;
  if (error instanceof Error && error.name === 'AbortError') return 'no answer in time';
  return (error instanceof Error ? error.message : String(error)).replace(/\.+$/, '');
}
