/**
 * Builders for the Discord API objects the emulator hands out. They produce complete objects
 * (every field discord-api-types marks as required) so discord.js sees what real Discord sends.
 */
import {
  ChannelType,
  GuildDefaultMessageNotifications,
  GuildExplicitContentFilter,
  GuildMFALevel,
  GuildNSFWLevel,
  GuildPremiumTier,
  GuildSystemChannelFlags,
  GuildVerificationLevel,
  Locale,
  type APIDMChannel,
  type ChannelFlags,
  type GuildMemberFlags,
  type RoleFlags,
  type APIGuild,
  type APIGuildMember,
  type APIRole,
  type APITextChannel,
  type APIUser,
} from 'discord-api-types/v10';

export interface UserInit {
  id: string;
  username: string;
  globalName?: string | null;
  bot?: boolean;
}

export function buildUser(init: UserInit): APIUser {
  const user: APIUser = {
    id: init.id,
    username: init.username,
    discriminator: '0',
    global_name: init.globalName ?? null,
    avatar: null,
  };
  if (init.bot) {
    user.bot = true;
    // Bots still have a legacy discriminator.
    user.discriminator = '0000';
  }
  return user;
}

export function buildMember(user: APIUser, roles: string[], joinedAt: string): APIGuildMember {
  return {
    user,
    nick: null,
    avatar: null,
    banner: null,
    roles,
    joined_at: joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0 as GuildMemberFlags,
    pending: false,
    communication_disabled_until: null,
  };
}

export function buildRole(init: {
  id: string;
  name: string;
  permissions: string;
  position: number;
  managed?: boolean;
  botId?: string;
}): APIRole {
  const role: APIRole = {
    id: init.id,
    name: init.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position: init.position,
    permissions: init.permissions,
    managed: init.managed ?? false,
    mentionable: false,
    flags: 0 as RoleFlags,
  };
  if (init.botId) role.tags = { bot_id: init.botId };
  return role;
}

export function buildTextChannel(init: { id: string; guildId: string; name: string; position: number; topic?: string | null }): APITextChannel {
  return {
    id: init.id,
    type: ChannelType.GuildText,
    guild_id: init.guildId,
    name: init.name,
    position: init.position,
    permission_overwrites: [],
    parent_id: null,
    nsfw: false,
    topic: init.topic ?? null,
    last_message_id: null,
    last_pin_timestamp: null,
    rate_limit_per_user: 0,
    default_auto_archive_duration: 1440,
    default_thread_rate_limit_per_user: 0,
    flags: 0 as ChannelFlags,
  };
}

export function buildDMChannel(id: string, recipient: APIUser): APIDMChannel {
  return {
    id,
    type: ChannelType.DM,
    name: null,
    recipients: [recipient],
    last_message_id: null,
    flags: 0 as ChannelFlags,
  };
}

export function buildGuild(init: { id: string; name: string; ownerId: string; applicationId: string; roles: APIRole[] }): APIGuild {
  return {
    id: init.id,
    name: init.name,
    icon: null,
    splash: null,
    discovery_splash: null,
    banner: null,
    description: null,
    owner_id: init.ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    widget_enabled: false,
    widget_channel_id: null,
    verification_level: GuildVerificationLevel.None,
    default_message_notifications: GuildDefaultMessageNotifications.OnlyMentions,
    explicit_content_filter: GuildExplicitContentFilter.Disabled,
    roles: init.roles,
    emojis: [],
    stickers: [],
    features: [],
    mfa_level: GuildMFALevel.None,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: GuildSystemChannelFlags.SuppressJoinNotifications,
    rules_channel_id: null,
    public_updates_channel_id: null,
    safety_alerts_channel_id: null,
    max_presences: null,
    max_members: 500_000,
    vanity_url_code: null,
    premium_tier: GuildPremiumTier.None,
    premium_subscription_count: 0,
    preferred_locale: Locale.EnglishUS,
    max_video_channel_users: 25,
    max_stage_video_channel_users: 50,
    nsfw_level: GuildNSFWLevel.Default,
    premium_progress_bar_enabled: false,
    hub_type: null,
    incidents_data: null,
  };
}
