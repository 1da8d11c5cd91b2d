import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, parseListen } from './forwarder.js';

describe('what gatepool connect --verbose prints', () => {
  it('bytes in SI units, one decimal below ten', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1000)).toBe('1.0 kB');
    expect(formatBytes(1234)).toBe('1.2 kB');
    expect(formatBytes(56_789)).toBe('57 kB');
    expect(formatBytes(1_073_741_824)).toBe('1.1 GB');
    expect(formatBytes(5e15)).toBe('5000 TB');
  });

  it('durations in ms, s, then minutes', () => {
    expect(formatDuration(0.4)).toBe('0 ms');
    expect(formatDuration(35.6)).toBe('36 ms');
    expect(formatDuration(2100)).toBe('2.1 s');
    expect(formatDuration(245_000)).toBe('4 min 05 s');
  });
});

describe('--listen', () => {
  it('takes HOST:PORT, [IPv6]:PORT or PORT and refuses the rest', () => {
    expect(parseListen('15432')).toEqual({ host: '127.0.0.1', port: 15432 });
    expect(parseListen('0.0.0.0:1')).toEqual({ host: '0.0.0.0', port: 1 });
    expect(parseListen('[::1]:5432')).toEqual({ host: '::1', port: 5432 });
    for (const bad of ['', 'host', ':1', '1:2:3', '70000', 'a:-1'])
      expect(() => parseListen(bad), bad).toThrow(/must be HOST:PORT or PORT/);
  });
});
