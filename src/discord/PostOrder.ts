import { TurnLine } from '../turnLine.js';

/** One message's place in its channel's post order (see {@link PostOrder}). */
export interface PostTurn {
  /** Settles once the reply to every earlier message of the channel has made its first post (or ended without one). */
  readonly earlierPosted: Promise<void>;
  /** This message's reply has made its first post, or will make none; idempotent. */
  posted(): void;
}

/**
 * Per channel, the order in which answers may make their first post: the order their messages
 * arrived. A reply waiting behind an earlier one would otherwise post its "Waiting for my turn…"
 * placeholder above the earlier reply. Its ⏳ reaction is not a post and shows at once.
 */
export class PostOrder {
  private readonly line = new TurnLine();

  /** Takes the message's place; call it on arrival, before anything is awaited. */
  enter(channelId: string): PostTurn {
    const { previous, done } = this.line.enter(channelId);
    return { earlierPosted: previous, posted: done };
  }
}
