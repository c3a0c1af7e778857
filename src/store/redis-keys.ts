/**
 * Key names (DESIGN.md section 4) and Redis Cluster slot arithmetic.
 *
 * Every key of one user carries the hash tag `{base64url(sub)}`, so the keys a multi-key command or Lua
 * script touches for one user share one Cluster slot. base64url never contains `{` or `}`, so a `sub`
 * cannot break its own tag; the prefix must not contain braces either (checked for Cluster in connect()).
 */

export class Keys {
  readonly epoch: string
  readonly channel: string
  constructor (private readonly prefix: string) {
    this.epoch = `${prefix}epoch`
    this.channel = `${prefix}revocations`
  }

  tag (sub: string): string { return `{${Buffer.from(sub, 'utf8').toString('base64url')}}` }
  ver (sub: string): string { return `${this.prefix}ver:${this.tag(sub)}` }
  deny (sub: string, sid: string): string { return `${this.prefix}deny:${this.tag(sub)}:${sid}` }
  dev (sub: string, sid: string): string { return `${this.prefix}dev:${this.tag(sub)}:${sid}` }
  /** The sealed token bundle of a device record: its own string key, read only when needed. */
  tok (sub: string, sid: string): string { return `${this.prefix}tok:${this.tag(sub)}:${sid}` }
  devs (sub: string): string { return `${this.prefix}devs:${this.tag(sub)}` }
  /** The user's last revocation time (epoch seconds), for bearer tokens; beside `ver` in the user's slot. */
  revat (sub: string): string { return `${this.prefix}revat:${this.tag(sub)}` }
  /** Marker of a logged-out IdP session, for bearer tokens carrying its `sid`. */
  idpout (iss: string, idpSid: string): string { return `${this.prefix}idpout:${iss}:${idpSid}` }
  idpsid (iss: string, idpSid: string): string { return `${this.prefix}idpsid:${iss}:${idpSid}` }
  sidx (sid: string): string { return `${this.prefix}sidx:${sid}` }
  jti (kind: string, id: string): string { return `${this.prefix}jti:${kind}:${id}` }
  /** A lock: beside the claims, so `lock('refresh:<sid>')` is the key of `claimOnce('refresh', sid)`. */
  lock (name: string): string { return `${this.prefix}jti:${name}` }
  /** The email index (members `[sub, sid]`): its own slot, like the other indexes. Lower-cased address. */
  email (address: string): string { return `${this.prefix}email:${address.toLowerCase()}` }
  lease (name: string): string { return `${this.prefix}lease:${name}` }
  note (kind: string, id: string): string { return `${this.prefix}note:${kind}:${id}` }
}

export const SLOTS = 16384

/** The Cluster slot of a key (or shard channel): CRC16/XMODEM of the hash tag if any, else of the key. */
export function keySlot (key: string | Buffer): number {
  const buf = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  const open = buf.indexOf(0x7b) // {
  if (open >= 0) {
    const close = buf.indexOf(0x7d, open + 1) // }
    if (close > open + 1) return crc16(buf.subarray(open + 1, close)) % SLOTS
  }
  return crc16(buf) % SLOTS
}

function crc16 (buf: Buffer): number {
  let crc = 0
  for (const byte of buf) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}
