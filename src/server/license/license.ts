import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey, randomUUID } from 'node:crypto';
import {
  CompactSign,
  compactVerify,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  importPKCS8,
  importSPKI,
} from 'jose';
import { isPlan, type Plan } from './plans.js';

/**
 * Licenses are compact JWS (EdDSA / Ed25519) over `{ v, jti, plan, org, iat, exp }`, verified
 * offline against a public key the operator configures. `org` is an org id or `*`.
 */
export interface LicenseClaims {
  v: 1;
  jti: string;
  plan: Plan;
  org: string;
  iat: number;
  exp: number | null;
}

export type LicenseCheck =
  | { ok: true; claims: LicenseClaims }
  | {
      ok: false;
      reason: 'malformed' | 'bad_signature' | 'expired' | 'wrong_org' | 'no_public_key';
      /** When an expired license expired: what an operator needs to know next. */
      expiredAt?: Date;
    };

export async function writeKeyPair(
  dir: string,
): Promise<{ privatePath: string; publicPath: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const privatePath = join(dir, 'private.pem');
  const publicPath = join(dir, 'public.pem');
  if (existsSync(privatePath)) {
    throw new Error(`${privatePath} already exists; refusing to overwrite a signing key`);
  }
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', {
    crv: 'Ed25519',
    extractable: true,
  });
  writeFileSync(privatePath, await exportPKCS8(privateKey), { mode: 0o600 });
  writeFileSync(publicPath, await exportSPKI(publicKey), { mode: 0o644 });
  return { privatePath, publicPath };
}

export async function issueLicense(opts: {
  privateKeyPem: string;
  plan: Plan;
  org: string;
  days?: number;
  now?: Date;
}): Promise<string> {
  const key = await importPKCS8(opts.privateKeyPem, 'EdDSA');
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const claims: LicenseClaims = {
    v: 1,
    jti: randomUUID(),
    plan: opts.plan,
    org: opts.org,
    iat,
    exp: opts.days ? iat + Math.round(opts.days * 86400) : null,
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'EdDSA', typ: 'gatepool-license' })
    .sign(key);
}

/** Accepts a PEM string or a path to a PEM file. */
export function readPublicKeyPem(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
}

export class LicenseVerifier {
  private keyPromise: ReturnType<typeof importSPKI> | null;

  /** Throws at once for a key that is not an Ed25519 public key (the platform must not start). */
  constructor(publicKeyPem: string | undefined) {
    if (publicKeyPem) {
      if (publicKeyPem.includes('PRIVATE KEY'))
        throw new Error('this is a private key; give the public key (public.pem)');
      const type = createPublicKey(publicKeyPem).asymmetricKeyType;
      if (type !== 'ed25519')
        throw new Error(`expected an Ed25519 public key, got ${type ?? 'an unknown'} key`);
    }
    this.keyPromise = publicKeyPem ? importSPKI(publicKeyPem, 'EdDSA') : null;
  }

  async verify(license: string, orgId: string, now = new Date()): Promise<LicenseCheck> {
    if (!this.keyPromise) return { ok: false, reason: 'no_public_key' };
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(license.trim(), await this.keyPromise));
    } catch (err) {
      const code = (err as { code?: string }).code;
      return {
        ok: false,
        reason: code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'bad_signature' : 'malformed',
      };
    }
    let claims: LicenseClaims;
    try {
      claims = JSON.parse(new TextDecoder().decode(payload)) as LicenseClaims;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    // An expiry no date can hold (a license issued for 1e9 days) is as unusable as no expiry field.
    const expiry = claims.exp === null ? 0 : new Date(claims.exp * 1000).getTime();
    if (
      claims.v !== 1 ||
      !isPlan(claims.plan) ||
      typeof claims.org !== 'string' ||
      (claims.exp !== null && (typeof claims.exp !== 'number' || !Number.isFinite(expiry)))
    ) {
      return { ok: false, reason: 'malformed' };
    }
    if (claims.org !== '*' && claims.org !== orgId) return { ok: false, reason: 'wrong_org' };
    if (claims.exp !== null && claims.exp * 1000 <= now.getTime())
      return { ok: false, reason: 'expired', expiredAt: new Date(claims.exp * 1000) };
    return { ok: true, claims };
  }
}
