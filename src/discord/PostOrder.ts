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
  /** Per channel, settles when every message that entered so far has posted. */
  private readonly last = new Map<string, Promise<void>>();

  /** Takes the message's place; call it on arrival, before anything is awaited. */
  enter(channelId: string): PostTurn {
    const earlierPosted = this.last.get(channelId) ?? Promise.resolve();
    let posted!: () => void;
    const own = new Promise<void>((resolve) => (posted = resolve));
    const allPosted = Promise.all([earlierPosted, own]).then(() => undefined);
    this.last.set(channelId, allPosted);
    void allPosted.then(() => {
      if (this.last.get(channelId) === allPosted) this.last.delete(channelId);
    });
    return { earlierPosted, posted };
  }
}
