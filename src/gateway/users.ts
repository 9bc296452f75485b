/**
 * The users who may log in (SMTP AUTH): the public API of src/gateway/users/, re-exported so
 * importers need one path.
 *
 * - users/hash.ts: scrypt/argon2id hashes, constant-time verification
 * - users/store.ts: the loaded users (lookup by name and certificate, constant-cost checks)
 * - users/file.ts: the YAML users file (load, atomic locked rewrites: add, passwd, remove, list)
 * - users/limiter.ts: failed-login limits per IP and per user, attempts counted while in flight
 * - users/watch.ts: reload the users file in a running server when it changes
 */
export {
  DUMMY_HASH,
  hashPassword,
  MAX_PASSWORD_BYTES,
  parseHash,
  SCRYPT_PARAMS,
  verifyPassword,
} from './users/hash.ts';
export type { ParsedHash } from './users/hash.ts';
export { canonicalUserName, UserStore } from './users/store.ts';
export type { UserRecord } from './users/store.ts';
export { addUser, listUsers, loadUsers, removeUser, setPassword } from './users/file.ts';
export { AuthRateLimiter, checkLogin } from './users/limiter.ts';
export type { LoginRefusal, LoginResult, LoginTicket, RateLimitRule } from './users/limiter.ts';
export { watchUsers, watchUsersFile } from './users/watch.ts';
export type { UsersWatcher } from './users/watch.ts';
