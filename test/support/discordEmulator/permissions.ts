/**
 * Discord's permission computation (roles, then channel overwrites for @everyone, roles and the
 * member), the way Discord itself and discord.js's `permissionsFor` do it, so the emulator refuses
 * exactly what Discord would with 403 50013 Missing Permissions.
 */
import { OverwriteType, PermissionFlagsBits, type APIGuildMember, type APIOverwrite, type APIRole } from 'discord-api-types/v10';
import { ALL_PERMISSIONS, DiscordHttpError } from './util.js';

const ALL = BigInt(ALL_PERMISSIONS);

export interface PermissionContext {
  guildId: string;
  ownerId: string;
  roles: readonly APIRole[];
  member: APIGuildMember;
  overwrites: readonly APIOverwrite[];
}

/** The member's permissions in a channel. */
export function channelPermissions({ guildId, ownerId, roles, member, overwrites }: PermissionContext): bigint {
  if (member.user.id === ownerId) return ALL;
  const roleBits = (id: string) => BigInt(roles.find((role) => role.id === id)?.permissions ?? '0');
  let bits = roleBits(guildId);
  for (const id of member.roles) bits |= roleBits(id);
  if ((bits & PermissionFlagsBits.Administrator) !== 0n) return ALL;
  const apply = (list: readonly APIOverwrite[]) => {
    let allow = 0n;
    let deny = 0n;
    for (const overwrite of list) {
      allow |= BigInt(overwrite.allow);
      deny |= BigInt(overwrite.deny);
    }
    bits = (bits & ~deny) | allow;
  };
  apply(overwrites.filter((o) => o.type === OverwriteType.Role && o.id === guildId));
  apply(overwrites.filter((o) => o.type === OverwriteType.Role && member.roles.includes(o.id)));
  apply(overwrites.filter((o) => o.type === OverwriteType.Member && o.id === member.user.id));
  return bits;
}

/** Throws Discord's 403 50013 unless `bits` hold every permission in `needed`. */
export function requirePermissions(bits: bigint, needed: bigint): void {
  if ((bits & needed) !== needed) throw new DiscordHttpError(403, { code: 50013, message: 'Missing Permissions' });
}
