/**
 * The web UI with a realistic fleet, in a real Chromium: more of everything than one API page
 * holds (60 pools, 60 enrollment tokens, 55 gateways, 55 access targets, 55 identities), so
 * nothing may be cut at the first 50; searches and pickers reach the last item; a double-click
 * on a create button creates one thing; the access targets list comes before its form; a
 * confirm dialog listing 55 users of a pool fits the window; a person changes their own
 * password; the organization's id is shown for licensing. Arranged through the API, checked
 * in the browser (and with axe), on PGlite.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { createGatewayKeyAndCsr } from '../../src/protocol/csr.js';
import {
  addUser,
  api,
  bootstrap,
  issueTestLicense,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import {
  ARTIFACTS,
  ensureWebBuilt,
  launchChromium,
  screenshot,
  seriousA11yViolations,
  watchConsole,
} from './browser.js';

const PASSWORD = 'scale-admin-password';
const NEW_PASSWORD = 'scale-admin-password-2';
const T = 15_000;
const POOLS = 60;
const TOKENS = 60;
const GATEWAYS = 55;
const TARGETS = 55;
const IDENTITIES = 55;
const two = (i: number) => String(i).padStart(2, '0');

// Refusals the test provokes on purpose: a wrong current password (400), deleting a pool in
// use (409), a license for another organization (422).
const expectedErrors = (text: string, url: string) =>
  (/status of 400/.test(text) && url.endsWith('/api/v1/auth/password')) ||
  (/status of 409/.test(text) && /\/api\/v1\/gateway-pools\/[^/]+$/.test(url)) ||
  (/status of 422/.test(text) && url.endsWith('/api/v1/license')) ||
  // A signed-out context asking who it is; an identity without Kubernetes auth yet.
  (/status of 401/.test(text) && url.endsWith('/api/v1/me')) ||
  (/status of 404/.test(text) && url.endsWith('/kubernetes-auth'));

describe('web UI with more than one page of everything', () => {
  let tp: TestPlatform;
  let admin: Account;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  const a11y: Record<string, string[]> = {};
  const poolIds = new Map<string, string>();

  async function check(name: string, p: Page = page) {
    await screenshot(p, `scale-${name}`);
    const v = await seriousA11yViolations(p);
    a11y[name] = v.map(
      (x) =>
        `${x.id} (${x.impact}): ${x.help} at ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
  }
  const heading = (name: string, p: Page = page) => p.getByRole('heading', { level: 1, name });
  function onFailureShoot(name: string) {
    onTestFailed(() => screenshot(page, `FAILED-scale-${name}`));
  }
  /** POST through the API as the admin, failing loudly. */
  async function post(path: string, body: object): Promise<{ id: string; token?: string }> {
    const res = await admin.client.post(path, body);
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`POST ${path} answered ${res.status}: ${res.text}`);
    return res.body;
  }
  async function signIn(p: Page, password: string) {
    await p.goto(tp.url);
    await p.getByLabel('Email').fill(admin.email);
    await p.getByLabel('Password').fill(password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await heading('Gateways', p).waitFor();
  }

  beforeAll(async () => {
    await ensureWebBuilt();
    [tp, browser] = await Promise.all([
      startTestPlatform('pglite', { env: { GATEPOOL_ENROLL_RATE_LIMIT: '1000' } }),
      launchChromium(),
    ]);
    admin = await bootstrap(tp, { email: 'scale@example.com', password: PASSWORD });
    const key = await issueTestLicense({ plan: 'enterprise', org: admin.orgId });
    expect((await admin.client.put('/api/v1/license', { key })).status).toBe(200);
    // The oldest tokens first: newest-first paging puts them past the first page.
    for (let i = 1; i <= TOKENS; i++)
      await post('/api/v1/gateways/enrollment-tokens', {
        name: i <= 3 ? `spare-${i}` : `bulk-token-${two(i)}`,
      });
    for (let i = 1; i <= POOLS; i++) {
      const name = `pool-${two(i)}`;
      poolIds.set(name, (await post('/api/v1/gateway-pools', { name })).id);
    }
    for (let i = 1; i <= GATEWAYS; i++) {
      const name = `gw-${two(i)}`;
      const { token } = await post('/api/v1/gateways/enrollment-tokens', { name: `for-${name}` });
      const res = await api(tp).post('/api/v1/gateways/enroll', {
        token,
        name,
        csr: (await createGatewayKeyAndCsr(name)).csrPem,
      });
      if (res.status !== 201) throw new Error(`enroll ${name}: ${res.status} ${res.text}`);
    }
    for (let i = 1; i <= TARGETS; i++)
      await post('/api/v1/access-targets', {
        name: `db-${two(i)}`,
        host: `10.0.1.${i}`,
        port: 5432,
        protocol: 'postgres',
        gatewayPoolId: poolIds.get('pool-01'),
      });
    for (let i = 1; i <= IDENTITIES; i++)
      await post('/api/v1/identities', { name: `bot-${two(i)}`, role: 'member' });

    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: tp.url });
    page = await context.newPage();
    page.setDefaultTimeout(T);
    errors = watchConsole(page, expectedErrors);
    await signIn(page, PASSWORD);
  }, 240_000);

  afterAll(async () => {
    writeFileSync(join(ARTIFACTS, 'scale-a11y.json'), JSON.stringify(a11y, null, 2));
    await browser?.close();
    await tp?.close();
  });

  it('pools: all 60 listed and counted; search finds the 60th', async () => {
    onFailureShoot('pools');
    await page.goto(`${tp.url}/gateways?view=pools`);
    await page.locator('[data-pool="pool-60"]').waitFor();
    await page.getByText(`${POOLS} pools`, { exact: true }).waitFor();
    await page.getByLabel('Search pools').fill('pool-60');
    await page.getByText(`1 of ${POOLS} pools`).waitFor();
    expect(await page.locator('[data-pool]').count()).toBe(1);
    await check('pools-search');
  });

  it('gateways and identities: all listed, a search narrows them', async () => {
    onFailureShoot('gateways-identities');
    await page.goto(`${tp.url}/gateways`);
    await page.locator('[data-gateway="gw-55"]').waitFor();
    await page.getByText(`${GATEWAYS} gateways`, { exact: true }).waitFor();
    await page.getByLabel('Search gateways').fill('gw-5');
    // gw-50…gw-55.
    await page.getByText(`6 of ${GATEWAYS} gateways`).waitFor();
    await page.getByLabel('Search gateways').fill('no-such-gateway');
    await page.getByText('No gateway matches “no-such-gateway”').waitFor();
    await check('gateways-search');

    await page.getByRole('link', { name: 'Identities' }).click();
    await page.getByRole('link', { name: 'bot-55' }).waitFor();
    await page.getByText(`${IDENTITIES} identities`, { exact: true }).waitFor();
    await page.getByLabel('Search identities').fill('bot-01');
    await page.getByText(`1 of ${IDENTITIES} identities`).waitFor();
    expect(await page.getByRole('link', { name: /^bot-/ }).count()).toBe(1);
  });

  it('enrollment tokens: the oldest are listed and searchable; a pool past the first 50 can be joined; a double-click creates one token', async () => {
    onFailureShoot('tokens');
    await page.getByRole('link', { name: 'Enrollment tokens' }).click();
    const total = TOKENS + GATEWAYS;
    await page.getByText(`${total} tokens`, { exact: true }).waitFor();
    await page.getByRole('cell', { name: 'spare-1', exact: true }).waitFor();
    await page.getByLabel('Search tokens').fill('spare');
    await page.getByText(`3 of ${total} tokens`).waitFor();
    await page.getByLabel('Active only').check();
    // The used ones (for-gw-…) go; the spares stay.
    await page.getByLabel('Search tokens').fill('');
    await page.getByText(`${TOKENS} of ${total} tokens`).waitFor();

    // Pools to join: all 60, in a bounded box with a search.
    const box = page.getByTestId('join-pools');
    expect((await box.boundingBox())!.height).toBeLessThan(260);
    await page.getByLabel('Search pools to join').fill('pool-60');
    await page.getByRole('checkbox', { name: 'pool-60' }).check();
    await page.getByLabel('Token name').fill('double-click');
    await check('tokens-form');
    await page.getByRole('button', { name: 'Create token' }).dblclick();
    await page.getByTestId('enroll-command').waitFor();
    const list = await admin.client.get('/api/v1/gateways/enrollment-tokens?limit=200');
    const made = (list.body.items as { name: string; poolIds: string[] }[]).filter(
      (t) => t.name === 'double-click',
    );
    expect(made).toHaveLength(1);
    expect(made[0]!.poolIds).toEqual([poolIds.get('pool-60')]);
  });

  it('a double-click on Create pool and Create identity creates one, with no false "already exists"', async () => {
    onFailureShoot('double-click');
    await page.goto(`${tp.url}/gateways?view=pools`);
    await page.getByRole('button', { name: 'Create pool' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('dbl-pool');
    await dialog.getByRole('button', { name: 'Create pool' }).dblclick();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('[data-pool="dbl-pool"]').waitFor();
    expect(await page.getByText(/already exists/).count()).toBe(0);

    await page.getByRole('link', { name: 'Identities' }).click();
    await page.getByLabel('Identity name').fill('dbl-ident');
    await page.getByRole('button', { name: 'Create identity' }).dblclick();
    await page.getByRole('link', { name: 'dbl-ident' }).waitFor();
    // Long enough for a second answer to land.
    await page.waitForTimeout(500);
    expect(await page.getByText(/already exists/).count()).toBe(0);
    const ids = await admin.client.get('/api/v1/identities?limit=200');
    expect(
      (ids.body.items as { name: string }[]).filter((i) => i.name === 'dbl-ident'),
    ).toHaveLength(1);

    // An identity's access token: one minted, the one shown.
    await page.getByRole('link', { name: 'dbl-ident' }).click();
    await heading('dbl-ident').waitFor();
    const tokenForm = page.getByRole('form', { name: 'New access token' });
    await tokenForm.getByLabel('Token name').fill('ci');
    await tokenForm.getByRole('button', { name: 'Create token' }).dblclick();
    await page.getByText(/Shown once: store it now/).waitFor();
    await page.waitForTimeout(500);
    const id = (ids.body.items as { id: string; name: string }[]).find(
      (i) => i.name === 'dbl-ident',
    )!.id;
    const tokens = await admin.client.get(`/api/v1/identities/${id}/tokens`);
    expect(tokens.body.items).toHaveLength(1);
  });

  it('access targets: the list first, the form in a dialog whose picker searches 60 pools and 55 gateways', async () => {
    onFailureShoot('access-targets');
    await page.getByRole('link', { name: 'Access targets' }).click();
    await heading('Access targets').waitFor();
    await page.locator('[data-target="db-55"]').waitFor();
    // The targets table starts on the first screen, not under a form.
    const table = page.getByRole('table');
    expect((await table.boundingBox())!.y).toBeLessThan(400);
    await page.getByText(`${TARGETS} targets`, { exact: true }).waitFor();
    await page.getByLabel('Search targets').fill('10.0.1.5');
    // 10.0.1.5 and 10.0.1.50…55.
    await page.getByText(`7 of ${TARGETS} targets`).waitFor();
    await check('access-targets-list');

    await page.getByRole('button', { name: 'New access target' }).click();
    const form = page.getByRole('dialog', { name: 'New access target' });
    // Many pools: nothing chosen for the user.
    expect(await form.getByRole('radio', { checked: true }).count()).toBe(0);
    const options = form.getByTestId('picker-options');
    expect((await options.boundingBox())!.height).toBeLessThanOrEqual(300);
    // The dialog fits the window with its buttons in view.
    const submit = form.getByRole('button', { name: 'Create access target' });
    await submit.scrollIntoViewIfNeeded();
    expect((await form.boundingBox())!.height).toBeLessThanOrEqual(800);
    const search = form.getByRole('searchbox', { name: /Search pools and gateways/ });
    await search.fill('gw-55');
    expect(await form.getByRole('radio').count()).toBe(1);
    await search.fill('pool-60');
    await form.getByRole('radio', { name: /pool-60/ }).check();
    await form.getByLabel('Target name').fill('via-pool-60');
    await form.getByLabel('Host').fill('10.9.9.9');
    await check('access-target-dialog');
    await submit.dblclick();
    await form.waitFor({ state: 'detached' });
    await page.getByLabel('Search targets').fill('via-pool-60');
    await page.locator('[data-target="via-pool-60"]').getByText('pool pool-60').waitFor();
    await page.waitForTimeout(500);
    expect(await page.getByText(/already exists/).count()).toBe(0);
  });

  it('Kubernetes auth: the shared picker searches, starts with nothing chosen, and stays one screen tall', async () => {
    onFailureShoot('kubernetes-auth');
    await page.getByRole('link', { name: 'Identities' }).click();
    await page.getByRole('link', { name: 'bot-01' }).click();
    await heading('bot-01').waitFor();
    const picker = page.getByRole('group', { name: 'Reach the Kubernetes API through' });
    await picker.waitFor();
    expect(await picker.getByRole('radio', { checked: true }).count()).toBe(0);
    expect((await picker.boundingBox())!.height).toBeLessThan(420);
    expect(await page.getByRole('button', { name: 'Save Kubernetes auth' }).isDisabled()).toBe(
      true,
    );
    await picker.getByRole('searchbox').fill('pool-59');
    await picker.getByRole('radio', { name: /pool-59/ }).check();
    expect(await page.getByRole('button', { name: 'Save Kubernetes auth' }).isDisabled()).toBe(
      false,
    );
    await check('kubernetes-auth-picker');
  });

  it('deleting a pool used by 55 targets: the refusal fits the window, lists 8 and says how many more', async () => {
    onFailureShoot('pool-delete');
    await page.goto(`${tp.url}/gateways?view=pools`);
    await page.getByLabel('Search pools').fill('pool-01');
    // The list knows it is in use: Delete is disabled, saying why (QA4 F-POOL-1).
    const del = page.locator('[data-pool="pool-01"]').getByRole('button', { name: 'Delete' });
    expect(await del.isDisabled()).toBe(true);
    expect(await del.getAttribute('title')).toMatch(`In use by ${TARGETS} resources`);
    // A list that has not caught up yet (targets attached elsewhere a moment ago): the
    // platform's refusal then says it all.
    await page.route('**/api/v1/gateway-pools?*', async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as {
        items: { name: string; connectedResourcesCount: number }[];
      };
      for (const p of body.items) if (p.name === 'pool-01') p.connectedResourcesCount = 0;
      await route.fulfill({ response: res, json: body });
    });
    await page.reload();
    await page.getByLabel('Search pools').fill('pool-01');
    await page.locator('[data-pool="pool-01"]').getByRole('button', { name: 'Delete' }).click();
    await page.unroute('**/api/v1/gateway-pools?*');
    const dialog = page.getByRole('alertdialog');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    const refusal = dialog.getByRole('alert');
    await refusal.getByText(`is used by ${TARGETS} resources`).waitFor();
    await refusal.getByText(`…and ${TARGETS - 8} more`).waitFor();
    expect(await refusal.getByRole('listitem').count()).toBe(9);
    const box = (await dialog.boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height).toBeLessThanOrEqual(800);
    expect(await dialog.getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true);
    await check('pool-delete-refused');
    // Refused as in use: the red button does not invite the same refusal again.
    expect(await dialog.getByRole('button', { name: 'Delete' }).isDisabled()).toBe(true);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  it("the gateways page knows each gateway's pools without one request per pool (N+1), also after a row action", async () => {
    onFailureShoot('gateways-no-n-plus-1');
    // gw-03 in pool-60 (the last page of pools, and last by name).
    const gws = (await admin.client.get('/api/v1/gateways?limit=200')).body as {
      items: { id: string; name: string }[];
    };
    const gw3 = gws.items.find((g) => g.name === 'gw-03')!;
    const joined = await admin.client.post(
      `/api/v1/gateway-pools/${poolIds.get('pool-60')}/memberships`,
      { gatewayId: gw3.id },
    );
    expect(joined.status).toBeLessThan(300);
    const perPool: string[] = [];
    const onRequest = (r: { url: () => string }) => {
      if (/\/api\/v1\/gateway-pools\/[0-9a-f-]{36}$/.test(new URL(r.url()).pathname))
        perPool.push(r.url());
    };
    page.on('request', onRequest);
    try {
      await page.goto(`${tp.url}/gateways`);
      await page.getByText('● Live').waitFor();
      const row = page.locator('[data-gateway="gw-03"]');
      await row.getByRole('button', { name: 'pool-60' }).waitFor();
      // A row action: drain and undrain gw-03; the confirm's impact comes from the same data.
      await row.getByRole('button', { name: 'Drain' }).click();
      const ask = page.getByRole('alertdialog');
      await ask.getByText(/Pool “pool-60”/).waitFor();
      await ask.getByRole('button', { name: 'Drain' }).click();
      // Never connected, it stays "Pending"; the button says it is drained.
      await row.getByRole('button', { name: 'Undrain' }).click();
      await row.getByRole('button', { name: 'Drain' }).waitFor();
      await page.waitForTimeout(1500);
      expect(perPool).toEqual([]);
    } finally {
      page.off('request', onRequest);
    }
  });

  it('the organization id is shown and copyable; a license for another org names it', async () => {
    onFailureShoot('org-id');
    await page.getByRole('link', { name: 'Organization' }).click();
    await heading('Organization').waitFor();
    expect((await page.getByTestId('org-id').textContent())?.trim()).toBe(admin.orgId);
    await page.getByRole('button', { name: 'Copy ID' }).click();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(admin.orgId);
    const other = await issueTestLicense({
      plan: 'enterprise',
      org: '7d4b8f0e-6a8e-4a57-9f57-2f1f5f4d9c11',
    });
    await page.getByLabel('License key').fill(other);
    await page.getByRole('button', { name: 'Install license' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: `This organization's id is ${admin.orgId}` })
      .waitFor();
    await check('org-id');
  });

  it("a role lowered while the person's page is open: the first refusal brings the page up to date", async () => {
    onFailureShoot('role-change');
    const member = await addUser(tp, admin, 'admin');
    const mctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const m = await mctx.newPage();
    m.setDefaultTimeout(T);
    try {
      await m.goto(`${tp.url}/access-targets`);
      await m.getByLabel('Email').fill(member.email);
      await m.getByLabel('Password').fill(member.password);
      await m.getByRole('button', { name: 'Sign in' }).click();
      await heading('Access targets', m).waitFor();
      await m.getByText(`${member.email} · Admin`).waitFor();
      await m.getByRole('button', { name: 'New access target' }).click();
      const form = m.getByRole('dialog', { name: 'New access target' });
      await form.getByLabel('Target name').fill('after-demotion');
      await form.getByLabel('Host').fill('10.9.9.8');
      await form.getByRole('searchbox').fill('pool-02');
      await form.getByRole('radio', { name: /pool-02/ }).check();
      const demoted = await admin.client.patch(`/api/v1/users/${member.id}`, { role: 'viewer' });
      expect(demoted.status, demoted.text).toBe(200);
      await form.getByRole('button', { name: 'Create access target' }).click();
      await form.getByRole('alert').filter({ hasText: 'AccessTarget:create' }).waitFor();
      // The sidebar and the controls follow without a reload.
      await m.getByText(`${member.email} · Viewer`).waitFor();
      await m.keyboard.press('Escape');
      await form.waitFor({ state: 'detached' });
      expect(await m.getByRole('button', { name: 'New access target' }).isDisabled()).toBe(true);
    } finally {
      await mctx.close();
    }
  }, 40_000);

  it('a people manager without Gateway:read: clean no-access pages, no event stream, only grantable roles offered', async () => {
    onFailureShoot('people-manager');
    const role = await admin.client.post('/api/v1/roles', {
      slug: 'people-mgr',
      name: 'People manager',
      permissions: [
        { subject: 'Member', action: 'read' },
        { subject: 'Member', action: 'edit' },
        { subject: 'Role', action: 'read' },
      ],
    });
    expect(role.status, role.text).toBe(201);
    const viewer = await addUser(tp, admin, 'viewer');
    const mgr = await addUser(tp, admin, 'people-mgr');
    const mctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const m = await mctx.newPage();
    m.setDefaultTimeout(T);
    const streams: string[] = [];
    m.on('request', (r) => {
      if (new URL(r.url()).pathname === '/api/v1/events') streams.push(r.url());
    });
    try {
      // A bookmark to a page the role may not read: one neutral notice, no raw 403.
      await m.goto(`${tp.url}/enrollment-tokens`);
      await m.getByLabel('Email').fill(mgr.email);
      await m.getByLabel('Password').fill(mgr.password);
      await m.getByRole('button', { name: 'Sign in' }).click();
      await m.getByText("You don't have access to enrollment tokens").waitFor();
      await m.getByText(/lacks EnrollmentToken:read/).waitFor();
      expect(await m.getByRole('alert').count()).toBe(0);
      expect(await m.getByLabel('Token name').count()).toBe(0);
      // No stream it cannot read, and the footer does not promise polling.
      await m.getByText('Live health needs Gateway:read').waitFor();
      await m.goto(`${tp.url}/identities`);
      await m.getByText("You don't have access to machine identities").waitFor();
      await m.goto(`${tp.url}/settings`);
      await m.getByText(/The plan is unknown here/).waitFor();
      const members = m
        .locator('section, div')
        .filter({ has: m.getByRole('heading', { name: 'Members' }) });
      await members.first().getByLabel(`Role of ${viewer.email}`).waitFor();
      expect(await m.getByRole('alert').count()).toBe(0);
      // Rows whose role it cannot manage are disabled with the reason; roles it cannot grant
      // are disabled options.
      const adminRole = m.getByLabel(`Role of ${admin.email}`);
      expect(await adminRole.isDisabled()).toBe(true);
      expect(await adminRole.getAttribute('title')).toMatch(/permissions you don't hold/);
      const options = await m
        .getByLabel(`Role of ${mgr.email}`)
        .locator('option')
        .evaluateAll((os) =>
          os.map((o) => [o.textContent, (o as unknown as { disabled: boolean }).disabled] as const),
        );
      expect(options).toContainEqual(['People manager', false]);
      expect(options.find(([t]) => t?.startsWith('Admin'))?.[1]).toBe(true);
      await check('people-manager-settings', m);
      expect(streams).toEqual([]);
    } finally {
      await mctx.close();
    }
  }, 40_000);

  it('changes your own password: a wrong current one is refused at its field; other sessions end', async () => {
    onFailureShoot('password');
    // Another browser signed in as the same person.
    const octx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const other = await octx.newPage();
    other.setDefaultTimeout(T);
    try {
      await signIn(other, PASSWORD);
      await page.getByRole('link', { name: 'Your account' }).click();
      await heading('Your account').waitFor();
      expect(await page.title()).toBe('Your account · gatepool');
      const form = page.getByRole('form', { name: 'Change password' });
      await form.getByLabel('Current password').fill('not-the-password');
      await form.getByLabel('New password', { exact: true }).fill('short');
      await form.getByText('The password is shorter than 12 characters.').waitFor();
      await form.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
      await form.getByLabel('New password again').fill(`${NEW_PASSWORD}x`);
      await form.getByText('This is not the same as the new password.').waitFor();
      expect(await form.getByRole('button', { name: 'Change password' }).isDisabled()).toBe(true);
      await form.getByLabel('New password again').fill(NEW_PASSWORD);
      await form.getByRole('button', { name: 'Change password' }).click();
      const wrong = form
        .getByRole('alert')
        .filter({ hasText: 'The current password is incorrect.' });
      await wrong.waitFor();
      const current = form.getByLabel('Current password');
      expect(await current.getAttribute('aria-invalid')).toBe('true');
      expect((await current.getAttribute('aria-describedby'))?.split(' ')).toContain(
        await wrong.getAttribute('id'),
      );
      await check('password-wrong');
      await current.fill(PASSWORD);
      await form.getByRole('button', { name: 'Change password' }).click();
      await form
        .getByRole('status')
        // The other browser's and the bootstrap's (the API client above).
        .filter({ hasText: 'Password changed. 2 other sessions were signed out; this one stays.' })
        .waitFor();
      expect(await current.inputValue()).toBe('');
      // This page still works; the other browser is told its session ended.
      await page.getByRole('link', { name: 'Gateways' }).click();
      await page.locator('[data-gateway="gw-01"]').waitFor();
      await other.evaluate(`window.dispatchEvent(new Event('visibilitychange'))`);
      await other
        .getByText(
          'Your password was changed in another session, which ended this one: log in again with the new password.',
        )
        .waitFor({ timeout: 5000 });
      await other.getByLabel('Email').fill(admin.email);
      await other.getByLabel('Password').fill(NEW_PASSWORD);
      await other.getByRole('button', { name: 'Sign in' }).click();
      await heading('Gateways', other).waitFor();
    } finally {
      await octx.close();
    }
  }, 40_000);

  it('no console errors and no serious accessibility violations', () => {
    expect(errors).toEqual([]);
    for (const [name, v] of Object.entries(a11y)) expect(v, name).toEqual([]);
  });
});
