import { Duplex, PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { firstReply, MAX_AGE_MS, Predial, type PredialEnd, type Predialed } from './predial.js';

/** A stream to a target: what the target sends is `push`ed; what is written goes nowhere. */
function fakeStream(): Duplex {
  return new Duplex({ read() {}, write: (_chunk, _enc, cb) => cb() });
}

/** A client stream as firstReply sees it. */
function fakeClient(): PassThrough & { peerEnded: boolean } {
  return Object.assign(new PassThrough(), { peerEnded: false });
}

describe('Predial', () => {
  let opened: Predialed[];
  let ends: PredialEnd[];
  let answer: () => Predialed | undefined;
  const deps = {
    open: () => {
      const p = answer();
      if (p) opened.push(p);
      return Promise.resolve(p);
    },
    now: () => Date.now(),
  };
  const member = (): Predialed => ({ stream: fakeStream(), gatewayId: 'g1', gatewayName: 'one' });
  const flush = () => vi.advanceTimersByTimeAsync(0);

  beforeEach(() => {
    vi.useFakeTimers();
    opened = [];
    ends = [];
    answer = member;
  });
  afterEach(() => vi.useRealTimers());

  it('opens at once; the client takes it, and no other is opened', async () => {
    const p = new Predial(deps, (e) => ends.push(e));
    await flush();
    expect(opened).toHaveLength(1);
    const taken = p.take(() => true);
    expect(taken).toBe(opened[0]);
    expect(taken?.stream.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(MAX_AGE_MS * 2);
    expect(opened).toHaveLength(1);
    expect(ends).toEqual(['used']);
  });

  it('is replaced, unused, before the target would end it; closing it ends the last', async () => {
    const p = new Predial(deps, (e) => ends.push(e));
    await flush();
    await vi.advanceTimersByTimeAsync(MAX_AGE_MS + 1);
    expect(opened).toHaveLength(2);
    expect(opened[0]!.stream.destroyed).toBe(true);
    expect(ends).toEqual(['expired']);
    p.close();
    expect(opened[1]!.stream.destroyed).toBe(true);
    expect(ends).toEqual(['expired', 'unused']);
    expect(p.take(() => true)).toBeUndefined();
  });

  it('one the target or member ends is replaced; after two ended young in a row, none is opened', async () => {
    const p = new Predial(deps, (e) => ends.push(e));
    await flush();
    // Bytes before the client's first packet: not a PostgreSQL server's doing, so not usable.
    opened[0]!.stream.push(Buffer.from('?'));
    await flush();
    expect(opened[0]!.stream.destroyed).toBe(true);
    await vi.advanceTimersByTimeAsync(300);
    expect(opened).toHaveLength(2);
    opened[1]!.stream.push(null);
    await vi.advanceTimersByTimeAsync(300);
    expect(opened).toHaveLength(2);
    expect(ends).toEqual(['lost', 'lost']);
    expect(p.take(() => true)).toBeUndefined();
  });

  it('a member found untrusted at take, or nothing opened, gives the client none', async () => {
    const p = new Predial(deps, (e) => ends.push(e));
    await flush();
    expect(p.take(() => false)).toBeUndefined();
    expect(opened[0]!.stream.destroyed).toBe(true);
    expect(ends).toEqual(['unused']);

    answer = () => undefined;
    const none = new Predial(deps, (e) => ends.push(e));
    await flush();
    expect(none.take(() => true)).toBeUndefined();
  });

  it('one that opens after the standby ended is closed at once', async () => {
    let release: (p: Predialed) => void = () => undefined;
    const slow = {
      open: () => new Promise<Predialed>((r) => (release = r)),
      now: () => Date.now(),
    };
    const p = new Predial(slow, (e) => ends.push(e));
    p.close();
    const late = member();
    release(late);
    await flush();
    expect(late.stream.destroyed).toBe(true);
    expect(ends).toEqual(['unused']);
  });
});

describe('firstReply', () => {
  it("is 'replied' once the target's bytes are readable, and leaves them to read", async () => {
    const stream = fakeStream();
    const waiting = firstReply(stream, fakeClient(), () => true, 1000);
    stream.push(Buffer.from('R'));
    expect(await waiting).toBe('replied');
    expect((stream.read() as Buffer).toString()).toBe('R');
  });

  it("is 'client' when the client sends more or ends its side first", async () => {
    const more = fakeClient();
    const waiting = firstReply(fakeStream(), more, () => true, 1000);
    more.push(Buffer.from('Q'));
    expect(await waiting).toBe('client');
    expect((more.read() as Buffer).toString()).toBe('Q');

    const ended = fakeClient();
    ended.peerEnded = true;
    expect(await firstReply(fakeStream(), ended, () => true, 1000)).toBe('client');
  });

  it("is 'failed' when the stream ends or breaks, the member stops being trusted, or time runs out", async () => {
    const ending = fakeStream();
    const a = firstReply(ending, fakeClient(), () => true, 1000);
    ending.push(null);
    expect(await a).toBe('failed');

    const breaking = fakeStream();
    const b = firstReply(breaking, fakeClient(), () => true, 1000);
    breaking.destroy(new Error('tunnel lost'));
    expect(await b).toBe('failed');

    let trusted = true;
    const c = firstReply(fakeStream(), fakeClient(), () => trusted, 5000, 10);
    trusted = false;
    expect(await c).toBe('failed');

    expect(await firstReply(fakeStream(), fakeClient(), () => true, 20)).toBe('failed');
  });
});
