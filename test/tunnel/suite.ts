/**
 * Per-describe set-up for hub-level tunnel tests: a TunnelHarness (and, usually, a loopback echo
 * target) started before the describe's tests and closed after them. Apart from harness.ts,
 * which the benchmarks import outside vitest.
 */
import { afterAll, beforeAll } from 'vitest';
import { startEchoServer, TunnelHarness, type HarnessOptions } from './harness.js';

export type EchoServer = Awaited<ReturnType<typeof startEchoServer>>;

export interface TunnelSuite {
  harness: TunnelHarness;
  echo: EchoServer;
}

/**
 * Registers the hooks and hands the started harness and echo target to `use` (for the
 * describe's own variables). `echo: false` skips the target.
 */
export function withTunnelHarness(
  use: (suite: TunnelSuite) => void,
  options: HarnessOptions & { echo?: boolean } = {},
): void {
  let harness: TunnelHarness | undefined;
  let echo: EchoServer | undefined;
  beforeAll(async () => {
    const { echo: wantEcho = true, ...harnessOptions } = options;
    harness = await TunnelHarness.start(harnessOptions);
    echo = wantEcho ? await startEchoServer() : undefined;
    use({ harness, echo: echo ?? { port: 0, close: async () => undefined } });
  });
  afterAll(async () => {
    await harness?.close();
    await echo?.close();
  });
}
