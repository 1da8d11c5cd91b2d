import type { TunnelMetrics } from '../tunnel/session.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per platform instance (not prom-client's global one), so several platforms in
 * one process — as in tests — never share or double-register metrics.
 */
export class PlatformMetrics {
  readonly registry = new Registry();
  readonly gatewaysByHealth: Gauge<'health'>;
  readonly streamOpens: Counter<'result'>;
  readonly streamOpenSeconds: Histogram;
  readonly tunnelBytes: Counter<'direction'>;
  readonly tunnelConnects: Counter<'kind'>;
  readonly tunnelQuiet: Counter;
  readonly poolHealthyMembers: Gauge<'pool' | 'pool_id'>;
  readonly poolSelections: Counter<'pool' | 'pool_id'>;
  readonly poolFailovers: Counter<'pool' | 'pool_id'>;

  constructor(gatewayHealthCounts: () => Promise<Record<string, number>>) {
    // Default metric names already start with process_/nodejs_: one prefix, not two.
    collectDefaultMetrics({ register: this.registry, prefix: 'gatepool_' });
    this.gatewaysByHealth = new Gauge({
      name: 'gatepool_gateways',
      help: 'Gateways by health (healthy, draining, unreachable, never-connected)',
      labelNames: ['health'],
      registers: [this.registry],
      async collect() {
        const counts = await gatewayHealthCounts();
        for (const health of ['healthy', 'draining', 'unreachable', 'never-connected']) {
          this.set({ health }, counts[health] ?? 0);
        }
      },
    });
    this.streamOpens = new Counter({
      name: 'gatepool_tunnel_stream_opens_total',
      help: 'Tunnel stream opens by result (ok, refused, unreachable, draining, timeout, ...)',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.streamOpenSeconds = new Histogram({
      name: 'gatepool_tunnel_stream_open_seconds',
      help: 'Time from openStream to the gateway answering 200 (successful opens)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    this.tunnelBytes = new Counter({
      name: 'gatepool_tunnel_bytes_total',
      help: 'Payload bytes through tunnel streams; in = from gateways, out = to gateways',
      labelNames: ['direction'],
      registers: [this.registry],
    });
    this.tunnelConnects = new Counter({
      name: 'gatepool_tunnel_connects_total',
      help: 'Gateway tunnel connections; kind=reconnect when the gateway had connected before',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.tunnelQuiet = new Counter({
      name: 'gatepool_tunnel_quiet_total',
      help: 'Times a connected gateway went quiet (a keepalive unanswered): pools routed around it',
      registers: [this.registry],
    });
    this.poolHealthyMembers = new Gauge({
      name: 'gatepool_pool_healthy_members',
      help: 'Healthy members per gateway pool',
      labelNames: ['pool', 'pool_id'],
      registers: [this.registry],
    });
    this.poolSelections = new Counter({
      name: 'gatepool_pool_selections_total',
      help: 'Members selected to serve an operation, per pool',
      labelNames: ['pool', 'pool_id'],
      registers: [this.registry],
    });
    this.poolFailovers = new Counter({
      name: 'gatepool_pool_failovers_total',
      help: 'Operations moved to another member after a failed stream open, per pool',
      labelNames: ['pool', 'pool_id'],
      registers: [this.registry],
    });
  }

  /** Drops every series of a pool that was deleted or renamed. */
  forgetPool(labels: { pool: string; pool_id: string }): void {
    this.poolHealthyMembers.remove(labels);
    this.poolSelections.remove(labels);
    this.poolFailovers.remove(labels);
  }
}

/** Adapts the hub's metric callbacks to the Prometheus registry. */
export function tunnelMetrics(m: PlatformMetrics): TunnelMetrics {
  return {
    onStreamOpen(result, ms) {
      m.streamOpens.inc({ result });
      if (result === 'ok') m.streamOpenSeconds.observe(ms / 1000);
    },
    onBytes(direction, bytes) {
      m.tunnelBytes.inc({ direction }, bytes);
    },
    onConnect(reconnect) {
      m.tunnelConnects.inc({ kind: reconnect ? 'reconnect' : 'first' });
    },
    onQuiet() {
      m.tunnelQuiet.inc();
    },
  };
}
