import type { ChatHistoryItem } from 'node-llama-cpp';
import type { HistoryTurn } from '../domain.js';
import { mergeUserTurns } from './OwnTemplateChatWrapper.js';

// The parts of a reply's prompt that do not depend on where the model runs: shared by the
// in-process replies (ChatReplies) and the inference-server engine (server/ServerEngine).

/** Tokens a chat template adds around one turn, for the history budget (an estimate). */
export const TEMPLATE_TOKENS_PER_TURN = 10;
const MAX_NAME_LENGTH = 32;

/** A user turn as the model reads it: "Name: text". */
export function userLine(name: string, text: string): string {
  return `${cleanName(name)}: ${text}`;
}

/** Names go into the prompt as "Name: text", so they must stay one short line. */
export function cleanName(name: string): string {
  const clean = name.replace(/[\s\u200b-\u200d\ufeff]+/g, ' ').replace(/:/g, '').trim().slice(0, MAX_NAME_LENGTH);
  return clean || 'user';
}

/**
 * The conversation of one reply: the persona, the window's turns (an unanswered message is a user
 * turn of its own), the new message and the open model turn, consecutive user turns merged (Gemma's
 * and Mistral's templates refuse two in a row).
 */
export function replyChatHistory(systemPrompt: string, window: readonly HistoryTurn[], userName: string, userText: string): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [{ type: 'system', text: systemPrompt }];
  for (const turn of window) {
    history.push({ type: 'user', text: userLine(turn.userName, turn.userText) });
    if (turn.reply !== undefined) history.push({ type: 'model', response: [turn.reply] });
  }
  history.push({ type: 'user', text: userLine(userName, userText) });
  return mergeUserTurns(history);
}

/**
 * Whose "Name:" a reply may not open with: the names of people (in the prompt, seen lately in the
 * server, the bot's own), as the prompt writes them. "Warning:" or "Step 1:" open a reply; they are
 * nobody's name, so they stay.
 */
export function replySpeakers({ userName, window, otherNames = [], botName }: { userName: string; window: readonly HistoryTurn[]; otherNames?: readonly string[]; botName?: string }): string[] {
  return [...new Set([userName, ...window.map((turn) => turn.userName), ...otherNames, ...(botName ? [botName] : [])].map(cleanName))];
}

/** The history's token budget: HISTORY_MAX_TOKENS, or less when the context has no more room beside the reply and `fixedTokens` (message, persona). */
export function historyBudget({ contextSize, replyMaxTokens, thoughtRoom = 0, fixedTokens, historyMaxTokens }: { contextSize: number; replyMaxTokens: number; thoughtRoom?: number; fixedTokens: number; historyMaxTokens: number }): number {
  const contextRoom = contextSize - replyMaxTokens - thoughtRoom - fixedTokens - 2 * TEMPLATE_TOKENS_PER_TURN;
  return Math.max(0, Math.min(historyMaxTokens, contextRoom));
}
