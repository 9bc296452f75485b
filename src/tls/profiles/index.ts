/**
 * The built-in grading profiles by id. `bsi` is postern's default.
 */
import { PosternError } from '../../core/errors.ts';
import { BSI_PROFILE } from './bsi.ts';
import { MOZILLA_INTERMEDIATE_PROFILE, MOZILLA_MODERN_PROFILE } from './mozilla.ts';
import { NCSC_NL_PROFILE } from './ncsc-nl.ts';
import type { Profile } from './types.ts';

export type ProfileId = 'bsi' | 'ncsc-nl' | 'mozilla-intermediate' | 'mozilla-modern';

/** Built-in profile ids, the default first. */
export const PROFILE_IDS: readonly ProfileId[] = Object.freeze([
  'bsi',
  'ncsc-nl',
  'mozilla-intermediate',
  'mozilla-modern',
] as const);

const PROFILES: Readonly<Record<ProfileId, Profile>> = {
  bsi: BSI_PROFILE,
  'ncsc-nl': NCSC_NL_PROFILE,
  'mozilla-intermediate': MOZILLA_INTERMEDIATE_PROFILE,
  'mozilla-modern': MOZILLA_MODERN_PROFILE,
};

/** Is `id` the id of a built-in profile? */
export function isProfileId(id: string): id is ProfileId {
  return (PROFILE_IDS as readonly string[]).includes(id);
}

/** A built-in profile (frozen, shared). Throws PosternError 'profile-unknown' for an id that is not one. */
export function getProfile(id: ProfileId): Profile {
  if (!isProfileId(id)) {
    throw new PosternError('profile-unknown', `unknown profile '${String(id)}'`, {
      hint: `built-in profiles: ${PROFILE_IDS.join(', ')}; or give a YAML profile file`,
    });
  }
  return PROFILES[id];
}
