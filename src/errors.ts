/** A mistake the user or operator can fix; its message is fit to show as it is. */
export class UserError extends Error {
  override name = 'UserError';
}

/** The generation queue is full: the job was refused and nothing of it was recorded. */
export class QueueFullError extends UserError {
  override name = 'QueueFullError';
  constructor(readonly pending: number) {
    super('I am busy with other messages right now; please send that again in a minute.');
  }
}

/** Work stopped because the bot is shutting down (or the caller aborted it). */
export class AbortedError extends Error {
  override name = 'AbortedError';
  constructor(message = 'The generation was aborted.') {
    super(message);
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof AbortedError || (error instanceof Error && error.name === 'AbortError');
}

/** A user stopped the reply (the Stop button); not a failure and not a shutdown. */
/** A /reset stopped the channel's running reply: what was shown stays, nothing of the turn is kept. */
export class ChannelResetError extends Error {
  override name = 'ChannelResetError';
  constructor() {
    super('The channel was reset.');
  }
}

export class StoppedError extends Error {
  override name = 'StoppedError';
  constructor() {
    super('The reply was stopped.');
  }
}

/**
 * The inference server (INFERENCE_URL) cannot be reached, failed, or did not answer in time. Front
 * ends answer with a short "model server unavailable" notice; the message is kept as context.
 */
export class ModelUnavailableError extends Error {
  override name = 'ModelUnavailableError';
  constructor(readonly detail: string) {
    super(`The model server is unavailable (${detail}).`);
  }
}
