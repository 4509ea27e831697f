import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';

/**
 * Incremental SHA-256 (FIPS 180-4) from @noble/hashes: the same digests as node:crypto, but it also runs in the
 * browser and synchronously (Web Crypto is async and missing outside secure contexts), so ids computed by the CLI
 * and by the web page agree.
 */
export class Sha256 {
  private readonly h = sha256.create();

  /** Adds bytes, or a string as its UTF-8 bytes (like node:crypto's update). */
  update(data: Uint8Array | string): this {
    this.h.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    return this;
  }

  /** The digest as lowercase hex (64 chars); the hasher cannot be used afterwards. */
  hex(): string {
    return bytesToHex(this.h.digest());
  }
}
