/**
 * The dashboard in real headless Chromium: log in with the admin token, generate 429s, watch them
 * appear; a hostile consumer name renders as text (no dialog, no injected element).
 */
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObserver, type Observer } from '../../src/observability/observer.js';
import { miniGateway, TOKEN } from './support.js';

let browser: Browser;
let observer: Observer;
let gw: Awaited<ReturnType<typeof miniGateway>>;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  observer = createObserver({ logs: false, flushIntervalMs: 100 });
  gw = await miniGateway(observer, 2);
});
afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await observer?.close();
});

const send = (consumer: string, n: number) =>
  Promise.all(Array.from({ length: n }, () => fetch(`${gw.url}/api/orders`, { headers: { 'x-consumer': consumer } }).then((r) => r.status)));

describe('dashboard in headless Chromium', () => {
  it('refuses the page without the token', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`${gw.url}/dashboard`);
    expect(res?.status()).toBe(401);
    expect(await page.locator('#rps-chart').count()).toBe(0);
    await page.close();
  });

  it('shows 429s appearing live, top noisy neighbours, routes and a drill-down; hostile names stay text', async () => {
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(`${gw.url}/dashboard?token=${TOKEN}`);
    expect(res?.status()).toBe(200);
    expect(page.url()).toBe(`${gw.url}/dashboard`); // token gone from the address bar
    await page.waitForFunction(() => document.body.hasAttribute('data-updated'));
    expect(await page.textContent('#limited')).toBe('0');
    const redPixels = () =>
      page.evaluate(() => {
        const c = document.getElementById('lps-chart') as HTMLCanvasElement;
        const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] === 0xc0 && px[i + 1] === 0x39 && px[i + 2] === 0x2b) n++;
        return n;
      });
    expect(await redPixels()).toBe(0); // no 429s yet: no bars

    const hostile = '<img src=x onerror=alert(1)>';
    expect(await send('noisy', 12)).toContain(429); // 2 allowed, 10 refused
    expect(await send(hostile, 5)).toContain(429); // 2 allowed, 3 refused

    await page.waitForFunction(() => document.getElementById('limited')!.textContent === '13', undefined, { timeout: 10_000 });
    expect(await page.textContent('#total')).toBe('17');
    // Top noisy neighbours, in order, the hostile name as literal text.
    const top = await page.locator('#top-consumers tr').allTextContents();
    expect(top).toEqual(['noisy10', `${hostile}3`]);
    expect(await page.locator('#top-consumers img, main img').count()).toBe(0);
    // Per-route table.
    const routes = await page.locator('#routes tr').allTextContents();
    expect(routes).toEqual(['api42913', 'api2004']);
    // The 429s/s chart saw them: the live series summed over the page's own fetch.
    const liveLimited = await page.evaluate(async () => {
      const r = await fetch('analytics/live?seconds=60');
      const j = await r.json();
      return j.seconds.reduce((a: number, s: { limited: number }) => a + s.limited, 0);
    });
    expect(liveLimited).toBe(13);
    // ...and drew them: the 429s/s canvas holds bars in its red.
    await page.waitForFunction(() => {
      const c = document.getElementById('lps-chart') as HTMLCanvasElement;
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < px.length; i += 4) if (px[i] === 0xc0 && px[i + 1] === 0x39 && px[i + 2] === 0x2b) return true;
      return false;
    });
    // Drill-down by clicking the hostile consumer.
    await page.locator('#top-consumers button', { hasText: hostile }).click();
    await page.waitForFunction((h) => document.getElementById('drill-name')!.textContent === h, hostile);
    await page.waitForFunction(() => document.getElementById('drill-limited')!.textContent === '3');
    expect(await page.textContent('#drill-total')).toBe('5');
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
