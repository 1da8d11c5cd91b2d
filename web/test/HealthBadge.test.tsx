// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthBadge, PoolHealthBadge } from '../src/components/HealthBadge';

afterEach(cleanup);

describe('HealthBadge', () => {
  it.each([
    ['healthy', 'Healthy'],
    ['draining', 'Draining'],
    ['unreachable', 'Unreachable'],
    ['never-connected', 'Pending'],
    ['degraded', 'Degraded'],
  ] as const)('shows the server word %s as "%s"', (health, label) => {
    render(<HealthBadge health={health} />);
    expect(screen.getByText(label).closest('[data-health]')?.getAttribute('data-health')).toBe(
      health,
    );
  });

  it('carries the last-resort reason as its title', () => {
    render(<HealthBadge health="healthy" title="quiet tunnel" />);
    expect(screen.getByText('Healthy').closest('span')?.getAttribute('title')).toBe('quiet tunnel');
  });
});

describe('PoolHealthBadge', () => {
  const cls = (text: string) => screen.getByText(text).className;

  it('is green when every member is healthy', () => {
    render(<PoolHealthBadge health="healthy" healthy={2} total={2} />);
    expect(cls('2/2 healthy')).toContain('green');
  });

  it('is yellow when some are, and names "below min healthy" when the server says degraded', () => {
    render(<PoolHealthBadge health="degraded" healthy={1} total={2} minHealthy={2} />);
    expect(cls('1/2 healthy')).toContain('yellow');
    expect(screen.getByText('below min healthy (2)')).toBeTruthy();
  });

  it('is red when none is, and says down', () => {
    render(<PoolHealthBadge health="down" healthy={0} total={3} />);
    expect(cls('0/3 healthy')).toContain('red');
    expect(screen.getByText('down')).toBeTruthy();
  });

  it('says "No members" for an empty pool', () => {
    render(<PoolHealthBadge health="empty" healthy={0} total={0} />);
    expect(screen.getByText('No members')).toBeTruthy();
    expect(screen.queryByText(/healthy/)).toBeNull();
  });
});
