// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import {
  defaultChoice,
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
      (screen.getByRole('radio', { name: /^No gateway \(direct\)/ }) as HTMLInputElement).checked,
    ).toBe(true);
  });

  it('is usable with the keyboard alone: arrows move the choice', async () => {
    const picks: GatewayChoice[] = [];
    render(<Harness onPick={(c) => picks.push(c)} />);
    const user = userEvent.setup();
    await user.tab();
    expect(document.activeElement).toBe(
      screen.getByRole('radio', { name: /^No gateway \(direct\)/ }),
    );
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

  it('with many choices: a search box narrows them, the chosen one stays, online gateways first', async () => {
    const many = [
      ...Array.from({ length: 30 }, (_, i) =>
        gw(`edge-${String(i).padStart(2, '0')}`, 'never-connected'),
      ),
      gw('zz-online', 'healthy'),
    ];
    const pools = Array.from({ length: 60 }, (_, i) => ({
      ...pool,
      id: `p${i}`,
      name: `pool-${i}`,
    }));
    render(<Harness gateways={many} pools={pools} />);
    const radios = () => screen.getAllByRole('radio').map((r) => r.closest('label')?.textContent);
    // Pools first, then the online gateway ahead of thirty pending ones.
    expect(radios()[0]).toMatch(/^pool-0/);
    expect(radios()[60]).toMatch(/^zz-online/);
    const user = userEvent.setup();
    await user.click(screen.getByRole('radio', { name: /^pool-3\b/ }));
    await user.type(
      screen.getByRole('searchbox', { name: /Search pools and gateways/ }),
      'pool-59',
    );
    expect(radios().map((t) => /^(pool-\d+|No)/.exec(t ?? '')?.[1])).toEqual([
      'pool-3',
      'pool-59',
      'No',
    ]);
    expect(screen.getByText('No gateway matches “pool-59”.')).toBeTruthy();
  });

  it('starts with nothing chosen unless there is exactly one usable pool', () => {
    expect(defaultChoice([], true)).toEqual({ kind: 'none' });
    expect(defaultChoice([{ id: 'p1' }], true)).toEqual({ kind: 'pool', id: 'p1' });
    expect(defaultChoice([{ id: 'p1' }], false)).toEqual({ kind: 'none' });
    expect(defaultChoice([{ id: 'p1' }, { id: 'p2' }], true)).toEqual({ kind: 'none' });
    render(
      <GatewayPicker
        value={{ kind: 'none' }}
        onChange={() => undefined}
        gateways={[]}
        pools={[pool]}
        poolsLicensed
        requirePools={false}
      />,
    );
    expect(screen.getByText('Choose a pool or a gateway.')).toBeTruthy();
    expect(screen.getAllByRole('radio').filter((r) => (r as HTMLInputElement).checked)).toEqual([]);
  });

  it('shows the platform refusal of the choice inside the picker', () => {
    render(<Harness error="gatewayPoolId: no such pool" />);
    const group = screen.getByRole('group', { name: /Reach through/ });
    expect(group.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByRole('alert').textContent).toBe('gatewayPoolId: no such pool');
  });

  it('Enter in its search box does not submit the form around it', async () => {
    const submitted: number[] = [];
    const many = Array.from({ length: 10 }, (_, i) => gw(`gw-${i}`, 'healthy'));
    render(
      <form
        onSubmit={(e) => {
          e.preventDefault();
          submitted.push(1);
        }}
      >
        <Harness gateways={many} />
      </form>,
    );
    const user = userEvent.setup();
    await user.type(screen.getByRole('searchbox'), 'gw-3{Enter}');
    expect(submitted).toEqual([]);
    expect(screen.getAllByRole('radio')).toHaveLength(2);
  });
});
