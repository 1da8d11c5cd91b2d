/**
 * A `postgres` target opened ahead of the client (a standby's predial): while a `gatepool
 * connect` standby waits, the platform keeps one tunnel stream to the target open, so a client
 * that arrives finds the gateway's dial done and PostgreSQL's backend already forked. Its
 * set-up is then the startup exchange alone, the same work a direct connection does after its
 * TCP handshake and fork.
 *
 * Why only PostgreSQL, and why it stays safe (DESIGN §5, "nothing reached the target"):
 *  - the server speaks only after the client's first packet, and a connection closed before
 *    any byte is neither logged nor acted on by the server (PostgreSQL skips its "incomplete
 *    startup packet" complaint when nothing arrived), so an unused predial leaves no trace but
 *    a connection with `log_connections` on;
 *  - the first packet is replay-safe (replay-safe.ts): a predial is used only with one, and if
 *    its member dies or goes quiet before the target's first reply, the connection opens
 *    afresh through the pool with the same packet, as an open that failed over would;
 *  - the server's authentication timeout (authentication_timeout, 60 s by default) would end
 *    an unused predial: it is replaced after MAX_AGE_MS, well inside it. A target that ends
 *    predials sooner (a shorter timeout) gets a few more, then none for that standby.
 * Cost: one idle backend per waiting standby (one per running `gatepool connect`, more while
 * connections arrive faster than standbys are made), a fork every MAX_AGE_MS while idle.
 * GATEPOOL_ACCESS_PREDIAL=false turns it off.
 */
import type { Duplex } from 'node:stream';

/** A stream to the target, open and unused, and the member it runs through. */
export interface Predialed {
  stream: Duplex;
  gatewayId: string;
  gatewayName: string;
}

export interface PredialDeps {
  /** Opens a stream to the target through a trusted member; undefined when none opened. */
  open(): Promise<Predialed | undefined>;
  now(): number;
}

/** An unused predial is replaced this long after it opened (PostgreSQL ends it at 60 s). */
export const MAX_AGE_MS = 40_000;
/** A predial that ends sooner than this, unused, counts as cut short by the target. */
const SHORT_LIVED_MS = 5_000;
/** Predials cut short in a row after which the standby stops opening them. */
const MAX_SHORT_LIVED = 2;
/** Opens per standby, all reasons together (a standby lives 5 min: ~8 replacements). */
const MAX_OPENS = 12;
/** Before the next open after one ended early, so a flapping member is not hammered. */
const REOPEN_DELAY_MS = 250;

export type PredialEnd = 'used' | 'expired' | 'lost' | 'unused';

/** One standby's predial: open now, replaced as it ages or dies, taken once by the client. */
export class Predial {
  private ready: { p: Predialed; detach: () => void } | undefined;
  private opening = false;
  private stopped = false;
  private opens = 0;
  private shortLived = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: PredialDeps,
    /** Each predial's end, for metrics; every one opened ends once. */
    private readonly onEnd: (end: PredialEnd) => void = () => undefined,
    private readonly onOpen: () => void = () => undefined,
  ) {
    this.open();
  }

  private open(): void {
    if (this.stopped || this.opening || this.ready || this.opens >= MAX_OPENS) return;
    this.opening = true;
    this.opens += 1;
    this.deps.open().then(
      (p) => this.opened(p),
      () => this.opened(undefined),
    );
  }

  private opened(p: Predialed | undefined): void {
    this.opening = false;
    // Nothing opened (no trusted member, a refusal): the client's open will say why, if it fails.
    if (!p) return;
    this.onOpen();
    if (this.stopped) {
      p.stream.destroy();
      this.onEnd('unused');
      return;
    }
    const at = this.deps.now();
    // Before its use nothing may arrive: the server speaks after the client's first packet, so
    // bytes, an end or an error mean the target or the member ended it.
    const lost = () => {
      if (this.ready?.p !== p) return;
      this.discard('lost');
      this.shortLived = this.deps.now() - at < SHORT_LIVED_MS ? this.shortLived + 1 : 0;
      if (this.shortLived < MAX_SHORT_LIVED) this.later(REOPEN_DELAY_MS);
    };
    p.stream.on('readable', lost);
    p.stream.on('close', lost);
    p.stream.on('error', lost);
    const detach = () => {
      p.stream.off('readable', lost);
      p.stream.off('close', lost);
      p.stream.off('error', lost);
    };
    this.ready = { p, detach };
    this.later(MAX_AGE_MS, () => {
      if (this.ready?.p !== p) return;
      this.discard('expired');
      this.open();
    });
  }

  private later(ms: number, fn: () => void = () => this.open()): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(fn, ms);
    this.timer.unref();
  }

  private discard(end: PredialEnd): void {
    const ready = this.ready;
    if (!ready) return;
    this.ready = undefined;
    ready.detach();
    ready.p.stream.destroy();
    this.onEnd(end);
  }

  /**
   * The predial for the client, if one is open and `usable` agrees (its member still trusted);
   * none is opened after. The caller owns the stream from here.
   */
  take(usable: (p: Predialed) => boolean): Predialed | undefined {
    const ready = this.ready;
    if (!ready || ready.p.stream.destroyed || !usable(ready.p)) {
      this.close();
      return undefined;
    }
    this.ready = undefined;
    ready.detach();
    this.close();
    this.onEnd('used');
    return ready.p;
  }

  /** Closes the open predial, if any, and opens no more. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.discard('unused');
  }
}

/**
 * Waits, after the client's replay-safe first packet was written to a predial, until the
 * connection may be committed to it: `replied` once the target's first bytes are readable on
 * `stream` (left in its buffer for the relay), or `client` once the client sent more or ended
 * its side (nothing to wait for: the target may never answer before that, and those bytes are
 * not replay-safe, so the predial serves as is). `failed` when the stream ends or errors, when
 * `trusted` stops holding (checked every `checkMs`), or after `timeoutMs`: until then nothing
 * but the replay-safe packet can have reached the target, so the connection opens afresh.
 */
export function firstReply(
  stream: Duplex,
  client: Duplex & { readonly peerEnded: boolean },
  trusted: () => boolean,
  timeoutMs: number,
  checkMs = 100,
): Promise<'replied' | 'client' | 'failed'> {
  return new Promise((resolve) => {
    const done = (outcome: 'replied' | 'client' | 'failed') => {
      clearInterval(check);
      clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('close', onGone);
      stream.off('error', onGone);
      client.off('readable', onClient);
      resolve(outcome);
    };
    const onReadable = () => done(stream.readableLength > 0 ? 'replied' : 'failed');
    const onGone = () => done('failed');
    const onClient = () => (client.readableLength > 0 || client.peerEnded) && done('client');
    const check = setInterval(() => trusted() || done('failed'), checkMs);
    const timer = setTimeout(() => done('failed'), timeoutMs);
    stream.on('readable', onReadable);
    stream.once('close', onGone);
    stream.once('error', onGone);
    client.on('readable', onClient);
    if (stream.readableLength > 0) done('replied');
    else if (stream.destroyed) done('failed');
    else onClient();
  });
}
