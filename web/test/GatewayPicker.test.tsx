// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GatewayPicker,
  type GatewayChoice,
  type GatewayPickerProps,
} from '../src/components/GatewayPicker';

afterEach(cleanup);

// jsdom has no CSS.escape; user-event needs it to walk a radio group.
const g = globalThis as { CSS?: { escape?: (s: string) => string } };
g.CSS ??= {};
g.CSS.escape ??= (s: string) => s.replace(/[^\w-]/g, (c) => `\\${c}`);

const gw = (
  id: string,
  health: GatewayPickerProps['gateways'][number]['health'],
): GatewayPickerProps['gateways'][number] => ({ id, name: id, health });
const pool: GatewayPickerProps['pools'][number] = {
  id: 'p1',
  name: 'dc1',
  minHealthy: 1,
  memberCount: 2,
  healthyMemberCount: 1,
  health: 'healthy',
};

function Harness(props: Partial<GatewayPickerProps> & { onPick?: (c: GatewayChoice) => void }) {
  const [value, setValue] = useState<GatewayChoice>({ kind: 'direct' });
  return (
    <GatewayPicker
      value={value}
      onChange={(c) => {
        setValue(c);
        props.onPick?.(c);
      }}
      gateways={[gw('gw-a', 'healthy'), gw('gw-b', 'unreachable')]}
      pools={[pool]}
      poolsLicensed
      requirePools={false}
      {...props}
    />
  );
}

describe('GatewayPicker', () => {
  it('lists pools with HA and health, gateways online/offline, and direct', () => {
    render(<Harness />);
    expect(screen.getByText('Gateway pools')).toBeTruthy();
    expect(screen.getByText('Individual gateways')).toBeTruthy();
    const poolRadio = screen.getByRole('radio', { name: /dc1/ });
    expect(poolRadio.closest('label')?.textContent).toMatch(/HA.*1\/2 healthy/);
    expect(screen.getByRole('radio', { name: /gw-a/ }).closest('label')?.textContent).toContain(
      'online',
    );
    expect(screen.getByRole('radio', { name: /gw-b/ }).closest('label')?.textContent).toContain(
      'offline',
    );
    expect(
      (screen.getByRole('radio', { name: 'No gateway (direct)' }) as HTMLInputElement).checked,
    ).toBe(true);
  });

  it('is usable with the keyboard alone: arrows move the choice', async () => {
    const picks: GatewayChoice[] = [];
    render(<Harness onPick={(c) => picks.push(c)} />);
    const user = userEvent.setup();
    await user.tab();
    expect(document.activeElement).toBe(screen.getByRole('radio', { name: 'No gateway (direct)' }));
    await user.keyboard('{ArrowDown}');
    expect(picks.at(-1)).toEqual({ kind: 'pool', id: 'p1' });
    expect((screen.getByRole('radio', { name: /dc1/ }) as HTMLInputElement).checked).toBe(true);
    await user.keyboard('{ArrowDown}');
    expect(picks.at(-1)).toEqual({ kind: 'gateway', id: 'gw-a' });
  });

  it('disables individual gateways with the reason when the org requires pools', () => {
    render(<Harness requirePools />);
    expect((screen.getByRole('radio', { name: /gw-a/ }) as HTMLInputElement).disabled).toBe(true);
    expect(screen.getByText(/requires gateway pools/)).toBeTruthy();
    expect((screen.getByRole('radio', { name: /dc1/ }) as HTMLInputElement).disabled).toBe(false);
  });

  it('shows the upgrade prompt instead of pools on the free plan', () => {
    render(<Harness poolsLicensed={false} />);
    expect(screen.queryByRole('radio', { name: /dc1/ })).toBeNull();
    expect(screen.getByText(/Upgrade to Enterprise/)).toBeTruthy();
  });

  it('names a missing permission on disabled pools', () => {
    render(<Harness poolsDisabledReason='Your role "Viewer" lacks GatewayPool:attach.' />);
    expect((screen.getByRole('radio', { name: /dc1/ }) as HTMLInputElement).disabled).toBe(true);
    expect(screen.getByText(/GatewayPool:attach/)).toBeTruthy();
  });
});
