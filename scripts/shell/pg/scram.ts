// SCRAM-SHA-256 verifiers, computed in the entrypoint: a password never appears in a statement.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** SCRAM-SHA-256 verifier for `PASSWORD '…'`, computed here so the plaintext password never
 *  appears in a statement (and so in no server log). ASCII passwords only: PostgreSQL applies
 *  SASLprep, which is the identity for printable ASCII; other passwords are sent as literals. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string | null {
  if (!/^[\x20-\x7e]*$/.test(password)) return null;
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
