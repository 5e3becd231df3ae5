/**
 * Thread channels for the emulator: public and private threads of a text channel, and forum posts
 * (public threads of a forum channel). Messages in them work like in any channel.
 */
import { ChannelType, ForumLayoutType, type APIGuildForumChannel, type APIThreadChannel, type ChannelFlags, type ThreadAutoArchiveDuration } from 'discord-api-types/v10';
import { isoNow } from './util.js';

/** What kind of thread {@link buildThreadChannel} makes. */
export type ThreadKind = 'public' | 'private' | 'forum';

export function buildThreadChannel(init: { id: string; guildId: string; parentId: string; name: string; ownerId: string; kind: ThreadKind }): APIThreadChannel {
  const now = isoNow();
  const thread: APIThreadChannel = {
    id: init.id,
    type: init.kind === 'private' ? ChannelType.PrivateThread : ChannelType.PublicThread,
    guild_id: init.guildId,
    name: init.name,
    parent_id: init.parentId,
    owner_id: init.ownerId,
    last_message_id: null,
    rate_limit_per_user: 0,
    message_count: 0,
    member_count: 2,
    total_message_sent: 0,
    flags: 0 as ChannelFlags,
    thread_metadata: { archived: false, auto_archive_duration: 1440 as ThreadAutoArchiveDuration, archive_timestamp: now, locked: false, create_timestamp: now },
  };
  if (init.kind === 'private') thread.thread_metadata!.invitable = true;
  if (init.kind === 'forum') thread.applied_tags = [];
  return thread;
}

export function buildForumChannel(init: { id: string; guildId: string; name: string; position: number }): APIGuildForumChannel {
  return {
    id: init.id,
    type: ChannelType.GuildForum,
    guild_id: init.guildId,
    name: init.name,
    position: init.position,
    parent_id: null,
    nsfw: false,
    topic: null,
    permission_overwrites: [],
    rate_limit_per_user: 0,
    last_message_id: null,
    flags: 0 as ChannelFlags,
    available_tags: [],
    default_reaction_emoji: null,
    default_sort_order: null,
    default_forum_layout: ForumLayoutType.NotSet,
    default_thread_rate_limit_per_user: 0,
  } as APIGuildForumChannel;
}

export function isThread(type: ChannelType): boolean {
  return type === ChannelType.PublicThread || type === ChannelType.PrivateThread || type === ChannelType.AnnouncementThread;
}
