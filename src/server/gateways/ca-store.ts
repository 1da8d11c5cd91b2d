import { eq, inArray } from 'drizzle-orm';
import type { SecretBox } from '../crypto/envelope.js';
import type { Db } from '../db/client.js';
import { gatewayCas, platformSettings } from '../db/schema.js';
import {
  createOrgCa,
  createTunnelServerCa,
  createTunnelServerCert,
  type KeyAndCert,
} from './pki.js';

const SERVER_CA_CERT = 'tunnel.server_ca.cert';
/** Sealed with the root key: a database holding it cannot take a new key (crypto/root-key). */
export const SERVER_CA_KEY = 'tunnel.server_ca.key_enc';

/**
 * Certificate authorities, created on first use. Creation is race-safe: two requests (or two
 * platform nodes) creating the same CA insert with ON CONFLICT DO NOTHING and both read back
 * the one that won, so no gateway is ever signed by a CA that was then discarded.
 */
export class CaStore {
  private readonly orgCas = new Map<string, KeyAndCert>();
  private serverCa: KeyAndCert | undefined;

  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  /** Loads every org CA certificate so the tunnel can verify gateways of any org. */
  async load(): Promise<void> {
    const rows = await this.db.select().from(gatewayCas);
    for (const row of rows) this.orgCas.set(row.orgId, this.decode(row));
  }

  /** Current org CA certificates, for the tunnel listener's trust list. */
  caPems(): string[] {
    return [...this.orgCas.values()].map((ca) => ca.certPem);
  }

  async forOrg(orgId: string): Promise<KeyAndCert> {
    const cached = this.orgCas.get(orgId);
    if (cached) return cached;
    let [row] = await this.db.select().from(gatewayCas).where(eq(gatewayCas.orgId, orgId));
    if (!row) {
      const ca = await createOrgCa(orgId);
      await this.db
        .insert(gatewayCas)
        .values({ orgId, certPem: ca.certPem, keyEnc: this.box.encrypt(ca.keyPem) })
        .onConflictDoNothing();
      [row] = await this.db.select().from(gatewayCas).where(eq(gatewayCas.orgId, orgId));
    }
    if (!row) throw new Error(`gateway CA for org ${orgId} could not be created`);
    const ca = this.decode(row);
    this.orgCas.set(orgId, ca);
    return ca;
  }

  /** The platform-wide CA that signs the tunnel listener's certificate. */
  async tunnelServerCa(): Promise<KeyAndCert> {
    if (this.serverCa) return this.serverCa;
    const read = async () => {
      const rows = await this.db
        .select()
        .from(platformSettings)
        .where(inArray(platformSettings.key, [SERVER_CA_CERT, SERVER_CA_KEY]));
      const cert = rows.find((r) => r.key === SERVER_CA_CERT)?.value;
      const keyEnc = rows.find((r) => r.key === SERVER_CA_KEY)?.value;
      return cert && keyEnc ? { certPem: cert, keyPem: openWithHint(this.box, keyEnc) } : undefined;
    };
    let ca = await read();
    if (!ca) {
      const fresh = await createTunnelServerCa();
      await this.db.transaction(async (tx) => {
        await tx
          .insert(platformSettings)
          .values([
            { key: SERVER_CA_CERT, value: fresh.certPem },
            { key: SERVER_CA_KEY, value: this.box.encrypt(fresh.keyPem) },
          ])
          .onConflictDoNothing();
      });
      ca = await read();
    }
    if (!ca) throw new Error('tunnel server CA could not be created');
    this.serverCa = ca;
    return ca;
  }

  /** A fresh listener certificate each start; gateways pin the CA, not the leaf. */
  async tunnelServerCert(hostnames: string[]): Promise<KeyAndCert> {
    return createTunnelServerCert(await this.tunnelServerCa(), { hostnames });
  }

  private decode(row: typeof gatewayCas.$inferSelect): KeyAndCert {
    return { certPem: row.certPem, keyPem: openWithHint(this.box, row.keyEnc) };
  }
}

/** The usual cause of a failed decryption is a platform node started with another root key. */
function openWithHint(box: SecretBox, envelope: string): string {
  try {
    return box.decrypt(envelope);
  } catch {
    throw new Error(
      'cannot decrypt secrets stored in the database: this platform runs with a different root key ' +
        'than the one that stored them. Every platform node on one database must share the same ' +
        'GATEPOOL_ENCRYPTION_KEY (or data-dir root.key).',
    );
  }
}
