/**
 * Where pylibmc (libmemcached's defaults: hash "default", distribution "modula") puts a key: Jenkins one-at-a-time
 * over the key's UTF-8 bytes, each byte sign-extended as a C `char`, modulo the number of servers in the order they
 * were given. test/golden/golden-memcached/hashing.json holds the observed placements this reproduces.
 */
export function oneAtATime(key: string): number {
  let hash = 0;
  for (const byte of Buffer.from(key, "utf8")) {
    hash = (hash + (byte >= 0x80 ? (0xffff_ff00 | byte) >>> 0 : byte)) >>> 0;
    hash = (hash + (hash << 10)) >>> 0;
    hash = (hash ^ (hash >>> 6)) >>> 0;
  }
  hash = (hash + (hash << 3)) >>> 0;
  hash = (hash ^ (hash >>> 11)) >>> 0;
  return (hash + (hash << 15)) >>> 0;
}

/** The index of the server holding `key` among `count` servers; with one server there is no hashing. */
export function serverIndex(key: string, count: number): number {
  return count <= 1 ? 0 : oneAtATime(key) % count;
}
